"""One table renderer for the report (HTML), the README and docs (Markdown) and the terminal (text): a row per
method, columns ``(key, label, how)`` whose format comes from the metric table (:func:`metric_columns`), a cell of a
metric the method optimises marked ``†``.

A column's ``how`` is ``"pct"`` (a share, shown as a percentage), ``"x1000"`` (shown times 1000), ``"g"`` (3
significant digits) or an integer (decimals).

Examples:
    >>> from imperceptible.runs.tables import render
    >>> rows = {"ours": {"success_rate": 1.0, "l2": 0.25, "optimises": ["l2"]}, "pgd": {"success_rate": 0.5}}
    >>> print(render(rows, [("success_rate", "success", "pct"), ("l2", "L2", 3)], kind="markdown"))
    | method | success | L2 |
    | --- | ---: | ---: |
    | ours | 100.0% | 0.250† |
    | pgd | 50.0% | n/a |
"""

from __future__ import annotations

import html
import math

from ..costs.metrics import METRICS

KINDS = ("html", "markdown", "text")


def metric_columns(keys) -> list[tuple]:
    """Table columns ``(key, label, format)`` of metrics, from the metric table (values shown x1000 where it says)."""
    return [(k, METRICS[k].label, "x1000" if METRICS[k].show == 1000.0 else METRICS[k].digits) for k in keys]


def format_value(v, how) -> str | None:
    """The text of a cell, ``None`` for a missing or non-finite value."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    if how == "pct":
        return f"{100 * v:.1f}%"
    if how == "g":
        return f"{v:.3g}"
    if how == "x1000":
        return f"{1000 * v:.3f}"
    return f"{v:.{how}f}"


def render(rows: dict[str, dict], cols, *, kind: str = "html", first: str = "method") -> str:
    """The table of ``rows`` (``{name: {key: value, ..., "optimises": [keys]}}``) over ``cols``, as ``kind``."""
    labels = [c[1] for c in cols]
    cells = [[(format_value(r.get(k), how), k in set(r.get("optimises") or ())) for k, _, how in cols]
             for r in rows.values()]
    if kind == "html":
        head = "".join(f"<th>{html.escape(lab)}</th>" for lab in labels)
        body = "".join(f"<tr><th class='m'>{html.escape(name)}</th>" + "".join(_html_cell(t, mark) for t, mark in line)
                       + "</tr>" for name, line in zip(rows, cells))
        return f"<table><tr><th>{html.escape(first)}</th>{head}</tr>{body}</table>"
    text = [[name] + [("n/a" if t is None else t + ("†" if mark else "")) for t, mark in line]
            for name, line in zip(rows, cells)]
    if kind == "markdown":
        return markdown([first, *labels], text)
    widths = [max(len(x) for x in col) for col in zip([first, *labels], *text)]
    line = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join(line.format(*r) for r in [[first, *labels], *text])


def _html_cell(t: str | None, mark: bool) -> str:
    return "<td><span class='na'>n/a</span></td>" if t is None else f"<td>{t}{'†' if mark else ''}</td>"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of text cells, the first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


__all__ = ["KINDS", "format_value", "markdown", "metric_columns", "render"]
