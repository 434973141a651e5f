"""The docs' tables are copied from stored results by benchmarks/tables.py: each table's numbers are the JSON's, and
the Markdown between a table's markers in the docs is what the script writes from the committed file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import load_script

ROOT = Path(__file__).resolve().parents[1]

#: the MNIST runs of the protocol whose tune stage, and whose test stage, has its tables in docs/results.md
MNIST_TUNED = ["mnist-cnn-100", "mnist-cnn-b-100", "mnist-cnn-robust-100", "mnist-cnn-200", "mnist-cnn-b-200",
               "mnist-cnn-robust-200", "mnist-cnn-1000", "mnist-cnn-b-1000", "mnist-cnn-robust-1000"]
#: protocol minimal-heldout-2's runs whose tune stage has its tables in docs/results.md
P2_TUNED = ["p2-mnist-cnn-200", "p2-mnist-cnn-b-200", "p2-mnist-cnn-robust-200", "p2-mnist-cnn-100",
            "p2-mnist-cnn-b-100", "p2-mnist-cnn-robust-100"]
#: ... and whose test stage has its tables there
P2_TESTED = ["p2-mnist-cnn-200", "p2-mnist-cnn-b-200", "p2-mnist-cnn-robust-200", "p2-mnist-cnn-100",
             "p2-mnist-cnn-b-100"]
MNIST_TESTED = ["mnist-cnn-100", "mnist-cnn-b-100", "mnist-cnn-robust-100", "mnist-cnn-200", "mnist-cnn-b-200",
                "mnist-cnn-robust-200", "mnist-cnn-1000", "mnist-cnn-b-1000", "mnist-cnn-robust-1000"]
#: a test stage's tables: (kind, the section's suffix)
TEST_TABLES = [("decisions", ""), ("visibility", "-visibility"), ("passes", "-passes")]
RESULTS = "benchmarks/results"
#: the tune splits benchmarks/explore_geometry.py was run on (outside the protocol), in the docs' order
EXPLORED = ["mnist-cnn-100", "mnist-cnn-b-100", "mnist-cnn-robust-100", "mnist-cnn-200", "mnist-cnn-b-200", "mnist-cnn-1000"]

#: (kind, committed results file or files, doc, section): the docs' generated tables whose source is committed
GENERATED = ([("memory", f"{RESULTS}/attack_memory.json", "docs/results.md", "memory"),
              ("tune-standings", f"{RESULTS}/protocol_tune_effnet-200.json", "docs/results.md", "tune-standings")]
             + [(kind, f"{RESULTS}/protocol_test_effnet-200.json", "docs/results.md", f"heldout{tail}")
                for kind, tail in TEST_TABLES]
             + [("decisions", f"{RESULTS}/protocol_test_effnet-200.unseen.json", "docs/results.md", "heldout-unseen")]
             + [("tune-standings", f"{RESULTS}/protocol_tune_{r}.json", "docs/results.md", f"tune-standings-{r}")
                for r in MNIST_TUNED + P2_TUNED]
             + [(kind, f"{RESULTS}/protocol_test_{r}.json", "docs/results.md", f"heldout-{r}{tail}")
                for r in MNIST_TESTED + P2_TESTED for kind, tail in TEST_TABLES]
             + [("explore-geometry", [f"{RESULTS}/explore_geometry_{r}.json" for r in EXPLORED], "docs/results.md",
                 "explore-geometry")]
             + [("overview", [f"{RESULTS}/protocol_test_{r}.json" for r in MNIST_TESTED], "docs/results.md",
                 "heldout-mnist-overview")]
             + [("ablation-tests", f"{RESULTS}/ablation_tests.json", "docs/results.md", "ablation-tests")]
             + [("claim", [f"{RESULTS}/protocol_test_{r}.json" for r in P2_TESTED if r.endswith("-200")], "docs/results.md",
                 "claim-p2-200"),
                ("ablation-tests", f"{RESULTS}/ablation_tests_p2-200.json", "docs/results.md", "ablation-tests-p2-200")]
             + [("fairness-protocol", f"{RESULTS}/protocol_fairness_protocol.json", "docs/fairness.md",
                 "fairness-protocol")])


def test_the_memory_table_copies_each_methods_bytes():
    s = json.loads((ROOT / "benchmarks/results/attack_memory.json").read_text())
    text = load_script("benchmarks/tables.py").memory(s)
    rows = [r for r in text.splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert len(rows) == len(s["methods"])
    for (name, m), r in zip(s["methods"].items(), rows):
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert cells[0].strip("`") == name and float(cells[3]) == pytest.approx(m["marginal_over_estimate"], abs=0.005)
        assert float(cells[2]) == pytest.approx(m["marginal_per_image"] / 2**20, abs=0.5)


@pytest.mark.parametrize(("kind", "source", "doc", "section"), GENERATED, ids=[g[3] for g in GENERATED])
def test_the_docs_hold_what_the_script_writes_from_the_committed_results(kind, source, doc, section):
    tables = load_script("benchmarks/tables.py")
    loaded = [json.loads((ROOT / f).read_text()) for f in ([source] if isinstance(source, str) else source)]
    text = tables.KINDS[kind](loaded if kind in tables.SEVERAL else loaded[0])
    body = (ROOT / doc).read_text().split(f"<!-- tables:{section} -->\n", 1)[1].split(f"\n<!-- /tables:{section} -->")[0]
    assert body == text



def test_the_overview_names_the_leader_where_ours_is_not_held():
    """A judge held against the peers but not the twins says so; not held, the overview names the peer of highest
    optimality, or says ours was highest where an interval or a test fell short; a peer under 90% is listed."""
    def judge(held, ours, opt):
        return {"held": held, "ours_optimality": ours, "optimality": {"ours": ours, **opt}}

    s = {"protocol_run": "r", "budget": 100, "peers": ["a", "b"], "methods": {"a": {"success_rate": 1.0},
                                                                              "b": {"success_rate": 0.5}},
         "minimal": {"statistics": {"min_success": 0.9},
                     "decision": {"held": ["gmsd"], "judges": {
                         "gmsd": judge(True, 0.9, {"a": 0.8, "b": 0.1}),
                         "flip": judge(False, 0.9, {"a": 0.85, "b": 0.2}),
                         "fsim_distance": judge(False, 0.7, {"a": 0.6, "b": 0.8})}},
                     "decision_polished": {"held": [], "judges": {
                         "gmsd": judge(False, 0.9, {}), "flip": judge(False, 0.9, {}),
                         "fsim_distance": judge(False, 0.7, {})}}}}
    row = load_script("benchmarks/tables.py").overview([s]).splitlines()[2]
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "`r`", "100", "1 of 3", "**held** (not vs twins)", "highest, not held", "`b` 0.800", "`b` 50%"]

def _claim_run(run, held, twins, sha="ab" * 32, **extra):
    judges = ["gmsd", "flip"]
    return {"protocol": {"name": "p", "sha256": sha}, "protocol_run": run, "stage": "test", "budget": 200,
            "minimal": {"decision": {"judges": {k: {"held": k in held} for k in judges}},
                        "decision_polished": {"judges": {k: {"held": k in twins} for k in judges}}}, **extra}


def test_the_claim_counts_a_judge_only_where_every_run_holds_it():
    """minimal-heldout-2's b1: least perceptible on a judge only if held in all runs; else "held in k of N", and the
    sentence says ours trades judges; the twins are counted separately."""
    tables = load_script("benchmarks/tables.py")
    text = tables.claim([_claim_run("a", {"gmsd", "flip"}, {"gmsd"}), _claim_run("b", {"gmsd"}, {"gmsd"}),
                         _claim_run("c", {"gmsd", "flip"}, set())], every_run=["a", "b", "c"])
    rows = [[c.strip() for c in r.strip("|").split("|")] for r in text.splitlines()[2:] if r.startswith("| ")][2:]
    assert rows == [["GMSD x1000", "**held**", "**held**", "**held**", "3 of 3", "2 of 3", "**least perceptible**"],
                    ["FLIP x1000", "**held**", "not held", "**held**", "2 of 3", "0 of 3", "held in 2 of 3"]]
    assert "Held in all 3 on GMSD x1000 (ours is least perceptible on these judges), not on FLIP x1000" in text
    assert "not called the least perceptible attack" in text


def test_the_claim_refuses_runs_of_another_protocol_or_recomputed_decisions():
    tables = load_script("benchmarks/tables.py")
    with pytest.raises(ValueError, match="protocol's own test decision.*got.*from run 'b'"):
        tables.claim([_claim_run("a", {"gmsd"}, set()), _claim_run("b", {"gmsd"}, set(), sha="cd" * 32)])
    with pytest.raises(ValueError, match="recomputed by redecide.py"):
        tables.claim([_claim_run("a", {"gmsd"}, set()), _claim_run("b", {"gmsd"}, set(), redecided={"n_images": 1})])
    with pytest.raises(ValueError, match="each run once"):
        tables.claim([_claim_run("a", {"gmsd"}, set()), _claim_run("a", {"gmsd"}, set())])


def test_the_claim_refuses_to_leave_out_a_run_of_the_protocol_at_its_budget(tmp_path):
    """The claim covers every run of the protocol at the budget: the runs are read from the protocol file the summaries
    name (minimal-2.toml: the three 200-pass runs), and a file changed since the runs is refused."""
    tables = load_script("benchmarks/tables.py")
    s = [json.loads((ROOT / f"{RESULTS}/protocol_test_{r}.json").read_text()) for r in P2_TESTED if r.endswith("-200")]
    assert tables.protocol_runs_at(s[0]) == ["p2-mnist-cnn-200", "p2-mnist-cnn-b-200", "p2-mnist-cnn-robust-200"]
    with pytest.raises(ValueError, match=r"missing \['p2-mnist-cnn-robust-200'\]"):
        tables.claim(s[:2])
    with pytest.raises(ValueError, match=r"missing \['c'\]"):
        tables.claim([_claim_run("a", {"gmsd"}, set()), _claim_run("b", {"gmsd"}, set())], every_run=["a", "b", "c"])
    changed = tmp_path / "p.toml"
    changed.write_text((ROOT / "benchmarks/protocols/minimal-2.toml").read_text().replace("budget = 200", "budget = 201", 1))
    with pytest.raises(ValueError, match="governs with sha256 .* now; run 'p2-mnist-cnn-200' recorded 8b51a17d7435"):
        tables.protocol_runs_at({**s[0], "protocol": {**s[0]["protocol"], "path": str(changed)}})


def test_the_geometry_explorations_conventions(tmp_path):
    """benchmarks/explore_geometry.py: a digit's distance is 0 where the clean digit was misclassified and inf where the
    attack failed (optimality's convention, the package's per_image on the rows the script reads from a run's store);
    the background share is the change's squared norm on the pixels that are 0 in the original, 0 for an unchanged
    digit; a grid point's image folder is found from its label."""
    import numpy as np
    import torch

    from imperceptible.runs.record import CORE
    from imperceptible.runs.store import ResultStore

    ex = load_script("benchmarks/explore_geometry.py")
    with ResultStore(tmp_path / "results.sqlite") as store:  # as a run writes it
        store.put_many("ddn", [{**dict.fromkeys(CORE, 0.0), "id": i, "label": lab, "success": ok, "clean_correct": clean,
                                "metrics": {"gmsd": g}}
                               for i, lab, ok, clean, g in [("a", 3, 1, 1, 0.2), ("b", 5, 0, 1, 0.1), ("c", 7, 1, 0, 0.3)]])
    labels, points, ids = ex.stored(tmp_path)
    assert labels == {"a": 3, "b": 5, "c": 7} and ids == ["a", "b", "c"]
    assert ex.per_image([points["ddn"][i] for i in ids], "gmsd").tolist() == [0.2, np.inf, 0.0]
    x = torch.zeros(2, 1, 2, 2)
    x[:, :, 0, 0] = 1.0  # one stroke pixel, three blank ones
    adv = x.clone()
    adv[0, 0, 0, 0] -= 0.3  # digit 0: the stroke only
    adv[0, 0, 1, 1] += 0.4  # and a blank pixel: share 0.16 / 0.25
    assert ex.background_share(adv, x).tolist() == pytest.approx([0.16 / 0.25, 0.0])
    assert ex.median_or_none(np.array([])) is None
    (tmp_path / "images" / "ddn_mode=view_gamma=0.05-80d02d40").mkdir(parents=True)
    assert ex.image_dir(tmp_path, "ddn|mode=view,gamma=0.05").name == "ddn_mode=view_gamma=0.05-80d02d40"
    assert ex.image_dir(tmp_path, "ddn|mode=view,gamma=0.1") is None


def _ablation_run(rng, shift: dict) -> tuple[dict, dict]:
    """A tiny run: ours, a peer and two ablations on 40 images; each ablation's values are ours' times ``shift``."""
    import numpy as np

    from imperceptible.evaluate.optimality import ensemble, optimality

    ours = rng.uniform(1.0, 2.0, 40)
    vals = {"ours": ours, "peer": ours * 1.5, **{f"ours[{a}]": ours * f * rng.uniform(0.995, 1.005, 40)
                                                 for a, f in shift.items()}}
    vals["ours"][0] = 0.0  # misclassified before any attack: 0 for every method
    for v in vals.values():
        v[0] = 0.0
    vals["peer"][1] = np.inf  # the peer failed once
    best = ensemble(vals)
    summary = {"protocol_run": "r", "ours": "ours", "variants": [], "methods": {m: {} for m in vals},
               "minimal": {"judges": {"gmsd": {"methods": {m: {"optimality": optimality(v, best)}
                                                           for m, v in vals.items()}},
                                      "ssim_distance": {"methods": {"ours": {"optimises": True}}}}}}
    table = {"ids": [f"i{n}" for n in range(40)], "attacked": [n != 0 for n in range(40)],
             "values": {m: {"gmsd": ["inf" if np.isinf(x) else float(x) for x in v]} for m, v in vals.items()}}
    return summary, table


def test_ablation_tests_call_an_ablation_better_worse_or_level_with_holm_over_every_cell():
    """benchmarks/ablation_tests.py: an ablation 10% lower on every image is better (interval above 0, ratio below 1,
    Holm p < 0.01), one 10% higher worse, one within 0.5% either way level; the judge ours optimises is left out;
    Holm runs over every run x judge x ablation."""
    import numpy as np

    ab = load_script("benchmarks/ablation_tests.py")
    summary, table = _ablation_run(np.random.default_rng(0), {"a": 0.9, "b": 1.1, "c": 1.0})
    assert ab.ablations_of(summary) == ["ours[a]", "ours[b]", "ours[c]"]
    assert ab.unoptimised(summary["minimal"], summary["ours"]) == ["gmsd"]
    rows = ab.run_tests(summary, table)["gmsd"]
    assert rows["ours[a]"]["difference"] > 0 and rows["ours[a]"]["median_ratio"] == pytest.approx(0.9, abs=0.01)
    assert rows["ours[a]"]["n"] == 39 and rows["ours[b]"]["difference_ci"][1] < 0
    from imperceptible.evaluate.decision import holm

    for c, ph in zip(rows.values(), holm([c["p"] for c in rows.values()])):
        c["p_holm"] = ph
    assert [ab.verdict(rows[a]) for a in ("ours[a]", "ours[b]", "ours[c]")] == ["better", "worse", "level"]
    summary["minimal"]["judges"]["gmsd"]["methods"]["ours"]["optimality"] += 0.1  # not the values' optimality
    with pytest.raises(SystemExit, match="is not the summary's"):
        ab.run_tests(summary, table)
