"""Commit a finished protocol run's results into ``benchmarks/results/``: its summary, config and (a tune stage's)
tuning choices as the run wrote them, and every per-image judge value rebuilt from the run's own rows with the masks
that tell a fooled image from one misclassified before any attack (checked against the run's own ``per_image.json``,
values and passes, where it wrote one), with the count of fooled images each judge read as exactly 0 (where that is
not 0, the pinned code's 90% success gate, which took a 0 for "misclassified before any attack", differs from the
masked one and the decision must be recomputed). Once the summary is committed, ``sitting.sh`` counts the job done and
never packs it again: remove an attack run's carry folder in the same commit; a fairness study's carry folder holds
its records, the only copy of its per-world values, and stays. A tune stage is finished only after its choices are in
the protocol's ``[chosen]`` tables (``write_chosen.py``; the queue's choose job reads its run directory).

    python benchmarks/protocols/finish.py runs/protocol/test-effnet-200   # benchmarks/results/protocol_test_effnet-200.*
    python benchmarks/protocols/finish.py --where test-effnet-200         # where its summary is committed
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import tomllib

from imperceptible.experiments.minimal_analysis import per_image_table
from imperceptible.runs.store import ResultStore

RESULTS = Path(__file__).resolve().parents[1] / "results"


def stem(name: str) -> str:
    """A job's results stem: ``protocol_`` and the job's name with its first ``-`` an ``_`` (test-effnet-200 ->
    protocol_test_effnet-200), so that the stage and the run stay apart in the file name."""
    return "protocol_" + name.replace("-", "_", 1)


def where(name: str, results: Path = RESULTS) -> Path:
    """The committed summary of the job ``name`` (its existence is what makes the job done for ``sitting.sh``)."""
    return results / f"{stem(name)}.json"


def _same(a: list, b: list) -> bool:
    """The run's own per-image values ``a`` against those rebuilt from its rows ``b`` (a judge's NaN, which the pinned
    runs' code wrote as "inf", is "nan" in the rebuilt table)."""
    return len(a) == len(b) and all(x == y or (x, y) == ("inf", "nan") or (
        isinstance(x, float) and isinstance(y, float) and abs(x - y) <= 1e-12 * max(1.0, abs(x))) for x, y in zip(a, b))


def finish(run: Path, results: Path = RESULTS) -> list[Path]:
    """Write the run's results files (see the module docstring); refuse an unfinished run or one whose rebuilt
    per-image values differ from those it wrote. Returns the files written."""
    if not (run / "summary.json").is_file():
        sys.exit(f"finish: {run} has no summary.json (expected a finished run)")
    summary = json.loads((run / "summary.json").read_text())
    config = json.loads((run / "config.json").read_text())
    results.mkdir(parents=True, exist_ok=True)
    base = results / stem(run.name)
    if config.get("job") == "fairness study":  # its summary and config; its records stay in its carry folder
        shutil.copyfile(run / "config.json", base.with_suffix(".config.json"))
        shutil.copyfile(run / "summary.json", where(run.name, results))
        return [base.with_suffix(".config.json"), where(run.name, results)]
    if not (run / "results.sqlite").is_file():
        sys.exit(f"finish: {run} has no results.sqlite and is no fairness study (expected a protocol run directory)")
    if (run / "tuning.json").is_file() and config.get("protocol", {}).get("path"):
        chosen = tomllib.loads(Path(config["protocol"]["path"]).read_text()).get("chosen", {})
        if config.get("protocol_run") not in chosen:
            sys.exit(f"finish: the tune stage's choices for {config.get('protocol_run')} are not in "
                     f"{config['protocol']['path']}'s [chosen] tables yet (write_chosen.py first)")
    keys = [j["key"] for j in summary.get("judges", [])]
    ids = config.get("ids")
    if not ids or not keys:
        sys.exit(f"finish: {run}/config.json has no ids or its summary no judges (expected a protocol run)")
    table = per_image_table(ResultStore(run / "results.sqlite"), list(summary["methods"]), ids, keys)
    own = run / "per_image.json"
    if own.is_file():
        written = json.loads(own.read_text())
        if written.get("ids") != table["ids"] or set(written.get("values", {})) != set(table["values"]):
            sys.exit(f"finish: {own} holds other images or methods than the run's summary")
        for m, vals in written["values"].items():
            same = [_same(v, table["values"][m].get(k, [])) for k, v in vals.items()]
            if not all(same) or not _same(written.get("passes", {}).get(m, []), table["passes"][m]):
                sys.exit(f"finish: {m}: the rows rebuild other per-image values or passes than the run's per_image.json")
    table["zero_on_fooled"] = {m: {k: sum(1 for v, f in zip(vals, table["fooled"][m]) if f and v == 0.0)
                                   for k, vals in table["values"][m].items()} for m in table["values"]}
    nans = {m: {k: vals.count("nan") for k, vals in v.items() if "nan" in vals} for m, v in table["values"].items()}
    for m, n in nans.items():
        if n:  # the pinned code's analysis read them as numbers (NaN), its per_image.json as "inf"
            print(f"finish: {m} has judge values that are not numbers ({n}): say how the decision treats them",
                  file=sys.stderr)
    for m, z in table["zero_on_fooled"].items():
        if any(z.values()):
            print(f"finish: {m} has fooled images a judge read as exactly 0 ({ {k: n for k, n in z.items() if n} }): "
                  "the pinned 90% gate differs from the masked one; recompute the decision", file=sys.stderr)
    out = [base.with_suffix(".config.json"), base.with_suffix(".per_image.json")]
    shutil.copyfile(run / "config.json", out[0])
    out[1].write_text(json.dumps(table) + "\n")
    if (run / "tuning.json").is_file():
        out.append(base.with_suffix(".tuning.json"))
        shutil.copyfile(run / "tuning.json", out[-1])
    out.append(where(run.name, results))  # last: the file that marks the job done
    shutil.copyfile(run / "summary.json", out[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="a finished run directory (runs/protocol/NAME), or with --where a job's name")
    p.add_argument("--where", action="store_true", help="print where the job's summary is committed, and stop")
    a = p.parse_args(argv)
    if a.where:
        path = where(Path(a.run).name)
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
        return 0
    for f in finish(Path(a.run)):
        print(f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
