"""A finished protocol run's decision recomputed from its committed per-image values, by the package's own
``decide`` (main's code, not the run's): over every image, or without the images a file lists. Two uses, each
declared in docs/results.md before the effnet-200 test stage's result was read:

- the success gate with the attacked mask: the pinned code's gate read a judge's exact 0 as "misclassified before any
  attack"; where ``finish.py`` counts fooled images read as 0, the decision is recomputed over every image and both
  are reported;
- the sensitivity analysis on images never used before: ``--drop-ids benchmarks/protocols/heldout_seen_ids.txt``
  leaves out the test images that earlier runs (version 0.2's first 200 ImageNet-compatible images) had attacked.

Neither replaces the protocol's decision (its run's own ``summary.json``); the output says so (``redecided``), and
``benchmarks/tables.py decisions`` renders it with that origin.

    python benchmarks/protocols/redecide.py benchmarks/results/protocol_test_effnet-200.json \\
        --drop-ids benchmarks/protocols/heldout_seen_ids.txt --json benchmarks/results/protocol_test_effnet-200.unseen.json
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np

from imperceptible.evaluate.decision import decide
from imperceptible.runs.rundir import code_identity

DECISIONS = ("decision", "decision_polished", "decision_variants")
#: the summary's blocks computed over the run's own images, left out of a recomputed summary
STALE = ("minimal", "methods", "clean_defense", "tuning")


def read_ids(path: str | Path) -> list[str]:
    """One id per line; blank lines and ``#`` comments ignored."""
    lines = (ln.split("#", 1)[0].strip() for ln in Path(path).read_text().splitlines())
    return [ln for ln in lines if ln]


def per_judge_values(table: dict, keep: np.ndarray) -> dict:
    """``{judge: {method: values}}`` over the kept images (``"inf"`` and ``"nan"`` read as numbers)."""
    out: dict[str, dict] = {}
    for m, vals in table["values"].items():
        for k, v in vals.items():
            out.setdefault(k, {})[m] = np.asarray([float(x) for x in v], float)[keep]
    return out


def redecide(summary: dict, table: dict, drop: list[str] = (), reason: str = "") -> dict:
    """The summary with its decisions recomputed over ``table``'s images less ``drop`` (ids ``table`` does not hold are
    refused: a list meant for another run is a mistake, not a no-op)."""
    ids = list(table["ids"])
    unknown = sorted(set(drop) - set(ids))
    if unknown:
        raise SystemExit(f"redecide: {len(unknown)} ids to drop are not among the run's images (first: {unknown[0]})")
    if table.get("attacked") is None:
        raise SystemExit("redecide: the per-image table has no 'attacked' mask (written by finish.py at 789b46a or "
                         "later); without it a judge's exact 0 cannot be told from an image misclassified already")
    keep = np.asarray([i not in set(drop) for i in ids], bool)
    m = summary["minimal"]
    # the judges the run analysed, less any on which no method has a value on an image it fooled among those kept
    # (analyse skips such a judge: nothing to rank)
    fooled = {meth: np.asarray(f, bool)[keep] for meth, f in table["fooled"].items()}
    every = per_judge_values(table, keep)
    judges = [k for k in m["judges"] if any((np.isfinite(v) & fooled[meth]).any() for meth, v in every[k].items())]
    optimises: dict[str, tuple] = {}
    for k, e in m["judges"].items():
        for meth, v in e["methods"].items():
            optimises.setdefault(meth, ())
            if v.get("optimises"):
                optimises[meth] += (k,)
    st = m["statistics"]
    kw = dict(optimises=optimises, alpha=st["alpha"], min_success=st["min_success"], n_boot=st["n_boot"],
              random_state=st.get("random_state", 0), attacked=np.asarray(table["attacked"], bool)[keep])
    values = {k: every[k] for k in judges}
    ours = summary["ours"]
    # only what is recomputed is kept: the run's medians, optimality tables, anytime curves, pass ratios and per-method
    # summaries are over its own images and would be read as if over these
    out = {k: copy.deepcopy(v) for k, v in summary.items() if k not in STALE}
    new = out["minimal"] = {"statistics": copy.deepcopy(st)}
    if "decision" in m:
        new["decision"] = decide(values, ours, list(summary["peers"]), **kw)
    if "decision_polished" in m:
        new["decision_polished"] = decide(values, ours, list(summary["polished"]), **kw)
    if m.get("decision_variants"):
        new["decision_variants"] = {v: decide(values, v, list(summary["peers"]), **kw) for v in m["decision_variants"]}
    code = code_identity()  # the package whose decide ran
    rev = code["revision"] and code["revision"][:7] + (" (modified)" if code["modified"] else "")
    out["n_images"] = int(keep.sum())
    out["redecided"] = {"reason": reason or ("every image, the success gate with the attacked mask" if not drop else
                                             f"without {len(drop)} listed images"), "judges": judges,
                        "dropped": sorted(drop), "n_images": int(keep.sum()), "of": len(ids), "code": rev,
                        "by": "benchmarks/protocols/redecide.py (imperceptible.evaluate.decision.decide)",
                        "not": "the protocol's decision, which is its run's own summary.json"}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("summary", help="a finished run's committed summary (benchmarks/results/protocol_RUN.json)")
    p.add_argument("--per-image", help="its per-image values (default: the summary's name with .per_image.json)")
    p.add_argument("--drop-ids", help="a file of ids to leave out, one per line")
    p.add_argument("--reason", default="", help="why (recorded in the output's 'redecided')")
    p.add_argument("--json", required=True, help="where to write the recomputed summary")
    a = p.parse_args(argv)
    path = Path(a.summary)
    table_path = Path(a.per_image) if a.per_image else path.with_name(path.stem + ".per_image.json")
    drop = read_ids(a.drop_ids) if a.drop_ids else []
    out = redecide(json.loads(path.read_text()), json.loads(table_path.read_text()), drop, a.reason)
    Path(a.json).write_text(json.dumps(out, indent=1))
    held = {k: len(out["minimal"][k]["held"]) for k in ("decision", "decision_polished") if k in out["minimal"]}
    print(f"redecide: {out['n_images']} of {out['redecided']['of']} images; held per decision {held}; wrote {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
