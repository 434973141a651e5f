"""A finished protocol test stage committed and written into the docs in one command, in the order CONTRIBUTING.md
gives: ``finish.py`` (summary, config, per-image values with their masks), then the tables, each between its markers
in ``--doc``: the decisions (``SECTION``), the visibility shares (``SECTION-visibility``) and the pass ratios
(``SECTION-passes``); the decisions recomputed without the images ``--drop-ids`` lists (``SECTION-unseen``,
``redecide.py``); where a judge read a fooled image as exactly 0, the decisions recomputed with the masked success gate
(``SECTION-masked``); and with ``--figures`` the run's anytime and robust-accuracy figures. It prints what to open
before writing a word about them. Nothing here reads a value to choose what is shown.

    python benchmarks/protocols/publish.py runs/protocol/test-effnet-200 --doc docs/results.md --section heldout \\
        --drop-ids benchmarks/protocols/heldout_seen_ids.txt --figures docs/figures --prefix heldout_effnet-200_
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # finish.py and redecide.py beside it, tables.py and the figures above

import finish as fin  # noqa: E402
import minimal_figures  # noqa: E402
import redecide as red  # noqa: E402
import tables  # noqa: E402


def publish(run: Path, doc: Path, section: str, *, drop_ids: Path | None = None, figures: Path | None = None,
            prefix: str = "", results: Path = fin.RESULTS) -> dict:
    """Finish ``run`` into ``results`` and write its tables into ``doc``; returns the files and sections written."""
    files = fin.finish(run, results)
    summary_path = files[-1]
    table_path = next(f for f in files if f.name.endswith(".per_image.json"))
    s, table = json.loads(summary_path.read_text()), json.loads(table_path.read_text())
    if "tuning" in s:
        raise SystemExit(f"publish: {run} is a tune stage (finish.py has committed it; its tables are tune-standings)")
    sections = {section: tables.decisions(s), f"{section}-visibility": tables.visibility(s),
                f"{section}-passes": tables.passes(s)}
    stem = summary_path.with_suffix("")
    extra = []
    if any(n for z in table["zero_on_fooled"].values() for n in z.values()):
        masked = red.redecide(s, table, [], "every image, with the success gate that counts a fooled image a judge "
                              "reads as 0 (the pinned code's gate did not)")
        extra.append((stem.with_name(stem.name + ".masked.json"), f"{section}-masked", masked))
    if drop_ids is not None:
        unseen = red.redecide(s, table, red.read_ids(drop_ids), f"without the {drop_ids.name} images")
        extra.append((stem.with_name(stem.name + ".unseen.json"), f"{section}-unseen", unseen))
    for path, name, summary in extra:
        path.write_text(json.dumps(summary, indent=1) + "\n")
        files.append(path)
        sections[name] = tables.decisions(summary)
    for name, text in sections.items():
        tables.write_into(doc, name, text)
    drawn = minimal_figures.figures(run, figures, prefix) if figures is not None else []
    return {"files": files, "sections": list(sections), "figures": drawn}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="a finished test stage (runs/protocol/NAME)")
    p.add_argument("--doc", type=Path, required=True, help="the Markdown file with the sections' markers")
    p.add_argument("--section", required=True, help="the decisions' marker; the others add -visibility, -passes, ...")
    p.add_argument("--drop-ids", type=Path, help="ids to leave out of a second decision (SECTION-unseen)")
    p.add_argument("--figures", type=Path, help="the folder the run's figures go to")
    p.add_argument("--prefix", default="", help="put before each figure's file name")
    a = p.parse_args(argv)
    out = publish(a.run, a.doc, a.section, drop_ids=a.drop_ids, figures=a.figures, prefix=a.prefix)
    for f in out["files"]:
        print(f"wrote {f}")
    print(f"wrote into {a.doc}: " + ", ".join(out["sections"]))
    for f in out["figures"]:
        print(f"drew {f} (open it)")
    print(f"open {a.run / 'report.html'} and the figures before writing about them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
