"""One self-contained HTML page per run: tables, plots and image grids embedded (base64).

Everything that reaches the page is escaped unless it is :class:`Html` (markup this project wrote, whose
own user-given parts were escaped with :func:`esc` when it was composed): a dataset path or model name
can never inject markup."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ..costs.metrics import by_group, judges
from ..evaluate.evaluator import DEFENSES
from ..fileio import atomic_write_text
from .tables import format_value, metric_columns, render


def judge_keys() -> list[str]:
    """The judges of the minimal-attack benchmark, in report order."""
    return [m.key for m in judges()]


SUCCESS = [("success_rate", "success", "pct")]
TABLES = {
    "Table 1 analogue: success and distances (means over successfully attacked images; † = what the method "
    "optimises or bounds)": [*SUCCESS, ("success_rate_float", "success (float)", "pct")]
    + metric_columns(m.key for m in by_group("distance")),
    f"Judges no attack optimises ({', '.join(m.label for m in by_group('judge'))})": [
        *SUCCESS, *metric_columns(m.key for m in by_group("judge"))],
    "Table 6 analogue: cost (same run, same machine; passes counted through the model)": [
        ("time_s", "time (s)", 2), ("time_per_image_s", "s / image", 3), ("mean_steps", "mean steps", 1),
        ("passes_per_image", "passes / image", 1), ("forwards_per_image", "forwards / image", 1),
        ("backwards_per_image", "backwards / image", 1), ("time_ratio_to_pgd_l2", "time / PGD-L2", 2)],
    "Table 2 analogue: saliency-map distances (OpenCV spectral residual)": [
        *SUCCESS, *metric_columns(m.key for m in by_group("saliency"))],
    "Figure 7 analogue: success rate after defenses": [("success_rate", "no defense", "pct")]
    + [(f"defense_{d}", d.replace("jpeg_q", "JPEG q").replace("bits_", "bits "), "pct") for d in DEFENSES],
}


class Html(str):
    """A string of trusted markup (composed here, with every user-given part passed through :func:`esc`)."""


def esc(v) -> str:
    """Escape a value for the page."""
    return html.escape(str(v), quote=True)


def as_html(v) -> str:
    return v if isinstance(v, Html) else esc(v)


def fmt(v, how) -> str:
    """A cell's HTML (``n/a`` greyed where there is no value)."""
    t = format_value(v, how)
    return "<span class='na'>n/a</span>" if t is None else t


def table_html(summary: dict, cols) -> str:
    """One row per method; a cell of a metric the method optimises (its summary's ``optimises``) gets a †."""
    return render(summary, cols, kind="html")


def img_tag(path: Path, alt: str = "") -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'/>"


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th.m{text-align:left}tr:nth-child(even){background:#f6f6f6}.na{color:#999}img{max-width:100%;margin:.5em 0}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em 1em;font-size:13px}code{background:#eee;padding:0 3px}"""


def write_report(path: Path, *, title: str, intro: str, summary: dict, plots: list[Path], grids: list[Path],
                 notes: list[str], extra_html: str = "", tables: dict | None = None) -> Path:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1><p>{as_html(intro)}</p>"]
    for n in notes:
        parts.append(f"<p class='note'>{as_html(n)}</p>")
    for name, cols in (tables or TABLES).items():
        rows = dict(summary["methods"])
        if name.startswith("Figure 7") and summary.get("clean_defense"):
            rows["no attack (defense alone)"] = {f"defense_{d}": v for d, v in summary["clean_defense"].items()}
        parts.append(f"<h2>{html.escape(name)}</h2>{table_html(rows, cols)}")
    if summary.get("unavailable"):
        parts.append("<h3>Not computed</h3><ul>" + "".join(
            f"<li><code>{html.escape(k)}</code>: {html.escape(v)}</li>" for k, v in summary["unavailable"].items())
            + "</ul>")
    parts.append(as_html(extra_html))
    if plots:
        parts.append("<h2>Figures</h2>" + "".join(img_tag(p, p.stem) for p in plots))
    if grids:
        parts.append("<h2>Image grids</h2>" + "".join(img_tag(p, p.stem) for p in grids))
    parts.append("</body></html>")
    atomic_write_text(path, "\n".join(parts))
    return path
