"""Benchmark protocols (``bench minimal --protocol``): the file decides the images, attacks and statistics, its hash is
in the run's fingerprint, the tune stage chooses by the rule, the test stage runs only what was chosen; and the
decision's statistics against hand computations and their reference implementations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from imperceptible.cli.main import main
from imperceptible.errors import ParameterError
from imperceptible.evaluate.decision import bootstrap, decide, holm, log_ratio_test, success_share, trapezoid_optimality
from imperceptible.evaluate.optimality import ensemble, optimality
from imperceptible.experiments.protocol import budget_settings, choose, grid, load_protocol

from .conftest import load_script, skip_or_fail
from .test_minimal import _attackbench

ROOT = Path(__file__).resolve().parents[1]

SMALL = """
[protocol]
name = "small"
[splits.digits]
dataset = "mnist-test20"
tune = ["mnist_00_7", "mnist_01_2"]
tune_used = 2
test = ["mnist_02_1", "mnist_03_0", "mnist_04_4"]
[runs.cnn-30]
split = "digits"
model = "mnist-cnn"
budget = 30
n_test = 2
judges = ["ssim_distance", "ciede2000", "gmsd"]
[attacks.human-perc-ot]
attack = "human-perc-ot"
role = "ours"
source = "test"
budget = {key = "budget", factor = 1}
tune = {key = "gamma", values = [0.05, 0.1]}
[attacks.perc-al]
attack = "perc-al"
role = "peer"
source = "test"
budget = {key = "max_iterations", factor = 2}
tune = {key = "alpha_c_init", values = [0.1, 0.3]}
polish = true
[attacks."human-perc-ot[no-lattice]"]
attack = "human-perc-ot"
role = "ablation"
settings = {prune_rounds = 0}
source = "test"
budget = {key = "budget", factor = 1}
[attacks.pgd-l2]
attack = "pgd-l2"
role = "reference"
settings = {eps = 3.0, steps = 5}
source = "test"
[tuning]
rule = "highest mean optimality"
[statistics]
alpha = 0.01
min_success = 0.9
n_boot = 50
random_state = 0
[decision]
rule = "as minimal.toml"
"""


def test_the_committed_protocol_is_complete():
    """``benchmarks/protocols/minimal.toml``: 100 tune and 900 test ids per split, disjoint; every run's judges are in the
    metric table; every attack builds from the registry; the test stage of every run has a choice for every tuned
    attack once the tune stage is done (before, it is refused)."""
    from imperceptible.costs import vision
    from imperceptible.costs.metrics import METRICS

    why = vision.missing("cvvdp")  # the protocol's cvvdp variant builds its cost from the [vision] extra
    if why:
        skip_or_fail(why)
    p = load_protocol(ROOT / "benchmarks" / "protocols" / "minimal.toml")
    for sp in p.raw["splits"].values():
        assert len(sp["tune"]) == 100 and len(sp["test"]) == 900 and not set(sp["tune"]) & set(sp["test"])
    for name in p.raw["runs"]:
        run = p.run(name)
        assert set(run.judges) <= set(METRICS) and set(run.anytime_judges) <= set(run.judges)
        tune = p.attacks(run, "tune")
        assert all(a.max_passes == run.budget for a in tune.values())
        assert {m.split("|")[0] for m in tune} == {s.name for s in p.specs(run) if s.role in ("ours", "variant", "peer")
                                                 and (s.tune or s.modes)}
    run = p.run("effnet-200")  # its tune stage is done: one attack built alone is the test stage's
    test = p.attacks(run, "test")
    for s in p.specs(run):
        if s.name in ("human-perc-ot", "ddn", "pgd-l2", "human-perc-ot[lam=0]"):
            one = p.build_chosen(run, s)
            assert one.params() == test[s.name].params() and one.max_passes == run.budget
    assert p.build_chosen(run, next(s for s in p.specs(run) if s.name == "ddn")).params()["gamma"] == 0.05


def test_the_second_protocol_tests_fresh_digits_with_every_grid_point_buildable():
    """``benchmarks/protocols/minimal-2.toml``: the same 100 MNIST tune ids as minimal.toml and, as its test split,
    that file's test ids after the 520 its runs attack (none shared); every grid point of every run builds, with the
    grids the file's comment derives (each peer's three values and the added ones, ours' geometry); run names apart
    from minimal.toml's (their results files would collide)."""
    from imperceptible.costs.metrics import METRICS

    one = load_protocol(ROOT / "benchmarks" / "protocols" / "minimal.toml")
    two = load_protocol(ROOT / "benchmarks" / "protocols" / "minimal-2.toml")
    a, b = one.raw["splits"]["mnist"], two.raw["splits"]["mnist"]
    assert b["tune"] == a["tune"] and b["test"] == a["test"][520:900] and len(b["test"]) == 380
    assert not set(b["test"]) & set(a["test"][:520]) and not set(b["test"]) & set(a["tune"])
    assert len(b["seen_before"]) == 13 and set(b["seen_before"]) <= set(b["test"])  # disclosed, with a sensitivity check
    assert not set(two.raw["runs"]) & set(one.raw["runs"]) and set(two.raw["splits"]) == {"mnist"}
    assert max(r["n_test"] for r in two.raw["runs"].values()) == len(b["test"])
    for name in two.raw["runs"]:
        run = two.run(name)
        assert set(run.judges) <= set(METRICS) and set(run.anytime_judges) <= set(run.judges)
        tune = two.attacks(run, "tune")
        assert all(t.max_passes == run.budget for t in tune.values())
        assert sorted(m for m in tune if m.startswith("human-perc-ot|")) == [
            f"human-perc-ot|geometry={g}" for g in (0.2, 0.5, 1.0)]
        assert all(t.params()["gamma"] == 0.02 for m, t in tune.items() if m.startswith("human-perc-ot|"))
        assert [t.params()["binary_search_steps"] for m, t in tune.items() if m.startswith("cw[searches=3]|")] == [3] * 3
    for spec in two.specs(two.run("p2-mnist-cnn-200")):  # each grid holds minimal.toml's three values
        old = one.raw["attacks"].get(spec.name, {}).get("tune")
        if spec.role == "peer" and old:
            assert spec.tune["key"] == old["key"] and spec.tune["values"][:3] == old["values"]
            assert 4 <= len(spec.tune["values"]) <= 5


def test_a_text_line_starting_like_the_chosen_tables_is_refused_in_one_line(tmp_path):
    """The digest ends at the first line starting '[chosen'; such a line inside a text (a rule wrapped there) would cut
    the text in two: refused naming the line, not a TOML parser's message about the half."""
    text = SMALL.replace('rule = "highest mean optimality"', 'rule = """highest mean optimality, written into\n[chosen]'
                         ' in a commit"""')
    with pytest.raises(ParameterError, match=r"line \d+: expected no line starting with '\[chosen'"):
        load_protocol(_write(text, tmp_path / "p.toml"))


def test_an_ablation_keeps_the_setting_it_names_against_its_base_attacks_choice(tmp_path):
    """An ablation takes ours' fixed settings and tuned choice, less what it names itself: with ours' grid over
    ``geometry``, ``geometry = 0`` stays 0 and ours' fixed ``gamma`` is inherited (minimal-2.toml's case)."""
    text = SMALL.replace('tune = {key = "gamma", values = [0.05, 0.1]}',
                         'settings = {gamma = 0.02}\ntune = {key = "geometry", values = [0.2, 1.0]}')
    text = text.replace("settings = {prune_rounds = 0}", "settings = {geometry = 0.0}")
    text += """
[chosen.cnn-30.human-perc-ot]
geometry = 1.0
[chosen.cnn-30.perc-al]
alpha_c_init = 0.3
"""
    p = load_protocol(_write(text, tmp_path / "p.toml"))
    run = p.run("cnn-30")
    test = p.attacks(run, "test")
    assert test["human-perc-ot"].params()["geometry"] == 1.0 and test["human-perc-ot"].params()["gamma"] == 0.02
    ablation = test["human-perc-ot[no-lattice]"].params()
    assert ablation["geometry"] == 0.0 and ablation["gamma"] == 0.02


def test_grids_budgets_and_the_tuning_rule():
    spec = load_protocol(_write(SMALL)).specs(load_protocol(_write(SMALL)).run("cnn-30"))[1]
    assert [lab for lab, _ in grid(spec)] == ["alpha_c_init=0.1", "alpha_c_init=0.3"]
    assert budget_settings({"key": "steps", "factor": 1}, 200) == {"steps": 200} and budget_settings(None, 200) == {}
    # the highest score wins; a tie goes to the earlier grid point (the authors' default comes first)
    assert choose({"perc-al|alpha_c_init=0.1": 0.5, "perc-al|alpha_c_init=0.3": 0.6}, spec)[1] == {"alpha_c_init": 0.3}
    assert choose({"perc-al|alpha_c_init=0.1": 0.6, "perc-al|alpha_c_init=0.3": 0.6}, spec)[1] == {"alpha_c_init": 0.1}


_files: list[Path] = []


def _write(text: str, path: Path | None = None) -> Path:
    import tempfile

    path = path or Path(tempfile.mkdtemp()) / "protocol.toml"
    path.write_text(text)
    return path


def test_an_attack_restricted_to_named_runs_or_budgets_is_left_out_of_the_others():
    """``only_runs`` and ``only_budgets`` both restrict where an attack runs (two runs of the same budget told apart by
    name); a name that is not one of the file's runs is refused in one line naming the field and the runs."""
    two_runs = SMALL.replace("[attacks.human-perc-ot]", """[runs.cnn-30b]
split = "digits"
model = "mnist-cnn-b"
budget = 30
n_test = 2
judges = ["ssim_distance"]
[attacks.human-perc-ot]""")
    restricted = two_runs.replace('polish = true\n', 'polish = true\nonly_runs = ["cnn-30b"]\n', 1)
    proto = load_protocol(_write(restricted))
    names = {r: [s.name for s in proto.specs(proto.run(r))] for r in ("cnn-30", "cnn-30b")}
    assert "perc-al" not in names["cnn-30"] and "perc-al" in names["cnn-30b"]
    assert names["cnn-30"] == [n for n in names["cnn-30b"] if n != "perc-al"]
    assert "perc-al+polish" not in proto.polished(proto.run("cnn-30"))
    both = restricted.replace('only_runs = ["cnn-30b"]', 'only_runs = ["cnn-30b"]\nonly_budgets = [100]')
    proto = load_protocol(_write(both))
    assert "perc-al" not in [s.name for s in proto.specs(proto.run("cnn-30b"))]  # its budget is not 100
    bad = load_protocol(_write(restricted.replace('only_runs = ["cnn-30b"]', 'only_runs = ["cnn-3O"]')))
    with pytest.raises(ParameterError, match=r"attacks\.perc-al\.only_runs.*cnn-30, cnn-30b.*cnn-3O"):
        bad.specs(bad.run("cnn-30"))


def test_tune_then_test_stage_and_a_changed_protocol_is_refused(tmp_path, capsys):
    """The tune stage runs every grid point on the tune ids and writes its choice; the test stage is refused until the
    choice is in the file, then runs the chosen settings (and the polished twin) on the test ids; the run's fingerprint
    holds the file's sha256, so a resumed run whose protocol changed is refused in one line, exit 2."""
    proto = _write(SMALL, tmp_path / "p.toml")
    out = tmp_path / "tune"
    assert main(["bench", "minimal", "--protocol", str(proto), "--run", "cnn-30", "--stage", "tune", "--out", str(out),
                 "--quiet"]) == 0
    tuning = json.loads((out / "tuning.json").read_text())
    assert set(tuning["chosen"]) == {"human-perc-ot", "perc-al"}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["protocol"]["sha256"] == load_protocol(proto).sha256 and cfg["ids"] == ["mnist_00_7", "mnist_01_2"]
    # the run's budget is the protocol's (30), in its config and its fingerprint, whatever --budget's default is
    fp = json.loads((out / "fingerprint.json").read_text())["config"]
    assert cfg["budget"] == fp["budget"] == cfg["budget_enforced"] == 30 and "full" not in fp and "judges" not in fp
    for flag in (["--full"], ["--judges", "ssim"], ["--polish"], ["--no-peers"]):  # what the protocol decides
        capsys.readouterr()
        assert main(["bench", "minimal", "--protocol", str(proto), "--run", "cnn-30", "--stage", "tune", "--out",
                     str(out), "--quiet", *flag]) == 2
        name = "--peers" if flag == ["--no-peers"] else flag[0]
        assert f"{name}: expected none (the protocol decides it)" in capsys.readouterr().err
    test_out = tmp_path / "test"
    args = ["bench", "minimal", "--protocol", str(proto), "--run", "cnn-30", "--stage", "test", "--out", str(test_out),
            "--quiet"]
    capsys.readouterr()
    assert main(args) == 2 and "[chosen.cnn-30.human-perc-ot]" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="write_chosen.py first"):  # a tune stage is finished after its choices only
        load_script("benchmarks/protocols/finish.py").finish(out, tmp_path / "tuned")
    chosen = "\n".join(f'[chosen.cnn-30."{a}"]\n' + "\n".join(f"{k} = {json.dumps(v)}" for k, v in c["settings"].items())
                       for a, c in tuning["chosen"].items())
    _write(SMALL + chosen + "\n", proto)
    assert load_protocol(proto).sha256 == cfg["protocol"]["sha256"]  # the chosen tables are outside the digest
    assert main(args) == 0
    s = json.loads((test_out / "summary.json").read_text())
    assert set(s["methods"]) == {"human-perc-ot", "perc-al", "perc-al+polish", "human-perc-ot[no-lattice]", "pgd-l2"}
    assert s["peers"] == ["perc-al"] and s["polished"] == ["perc-al+polish"] and "decision" in s["minimal"]
    per = json.loads((test_out / "per_image.json").read_text())
    assert per["ids"] == ["mnist_02_1", "mnist_03_0"] and len(per["attacked"]) == 2
    assert set(per["fooled"]) == set(s["methods"]) and all(len(v) == 2 for v in per["fooled"].values())
    assert all(not f or a for v in per["fooled"].values() for f, a in zip(v, per["attacked"]))  # fooled: attacked too
    # finish.py commits it: summary, config, per-image values rebuilt from the rows with their masks, checked
    fin = load_script("benchmarks/protocols/finish.py")
    assert [f.name for f in fin.finish(out, tmp_path / "tuned")][-2:] == ["protocol_tune.tuning.json", "protocol_tune.json"]
    results = tmp_path / "results"
    test_run = tmp_path / "test-cnn-30"
    test_out.rename(test_run)
    written = fin.finish(test_run, results)
    assert [f.name for f in written] == ["protocol_test_cnn-30.config.json", "protocol_test_cnn-30.per_image.json",
                                         "protocol_test_cnn-30.json"] and written[-1] == fin.where("test-cnn-30", results)
    assert json.loads(written[-1].read_text()) == s and json.loads(written[1].read_text())["fooled"] == per["fooled"]
    bad = json.loads((test_run / "per_image.json").read_text())
    m0, k0 = next(iter(bad["values"])), next(iter(bad["values"][next(iter(bad["values"]))]))
    bad["values"][m0][k0][0] = 123.0
    (test_run / "per_image.json").write_text(json.dumps(bad))
    with pytest.raises(SystemExit, match="other per-image values"):
        fin.finish(test_run, results)
    test_run.rename(test_out)
    # the queue renders a finished test stage with benchmarks/tables.py: its decision and pass-ratio tables
    tables = load_script("benchmarks/tables.py")
    text = tables.decision(s)
    assert text.startswith("Protocol `small`") and "stage `test`: 2 images, 30 passes" in text
    judged = [r for r in text.splitlines() if r.startswith("| ") and "decision" not in r and "---" not in r]
    assert [r.split(" | ")[0] for r in judged] == ["| CIEDE2000 C2", "| GMSD x1000"]  # not 1-SSIM: ours optimises it
    assert all("`perc-al`" in r for r in judged)
    for r in judged:  # the last column names every peer the judge falls short of: none exactly when it is held
        assert r.rstrip(" |").endswith("none") == ("**held**" in r)
    every = tables.decisions(s)  # the claim's table first, then ours against the polished twins, by the same rule
    assert every.startswith(text) and "Against the polished twins" in every and "`perc-al+polish` " in every
    ratios = [r for r in tables.passes(s).splitlines() if r.startswith("| GMSD")]
    assert len(ratios) == 1 and ratios[0].count(" | ") == 1  # one peer column: perc-al
    # redecide.py: the decisions recomputed from the committed per-image values equal the run's own over every image;
    # without a listed image they are over the rest, and say that they are not the protocol's decision
    red = load_script("benchmarks/protocols/redecide.py")
    table = json.loads(written[1].read_text())
    again = red.redecide(s, table)
    assert {k: again["minimal"][k] for k in red.DECISIONS if k in s["minimal"]} == \
        {k: s["minimal"][k] for k in red.DECISIONS if k in s["minimal"]}
    fewer = red.redecide(s, table, ["mnist_02_1"], "a test")
    assert fewer["n_images"] == 1 and fewer["redecided"]["dropped"] == ["mnist_02_1"]
    assert "methods" not in fewer and set(fewer["minimal"]) <= {"statistics", *red.DECISIONS}  # nothing stale kept
    # and equal to the benchmark's own analysis of the kept image's rows
    from imperceptible.experiments.minimal_analysis import analyse
    from imperceptible.runs.store import ResultStore

    rows = {m: ResultStore(test_out / "results.sqlite").rows(m, ["mnist_03_0"]) for m in s["methods"]}
    optimises = {m: tuple(k for k, e in s["minimal"]["judges"].items() if e["methods"][m]["optimises"]) for m in rows}
    own = analyse(rows, [j["key"] for j in s["judges"]], optimises, [], ours=s["ours"], peers=s["peers"],
                  polished=s["polished"], variants=s["variants"], stats=s["minimal"]["statistics"])
    assert json.dumps({k: own[k] for k in red.DECISIONS if k in own}, sort_keys=True) == \
        json.dumps({k: fewer["minimal"][k] for k in red.DECISIONS if k in fewer["minimal"]}, sort_keys=True)
    # publish.py does it all in one command: finish, the tables between their markers, the decision without the listed
    # images (and with the masked gate where a judge read a fooled image as 0)
    doc = tmp_path / "doc.md"
    doc.write_text("".join(f"<!-- tables:sec{x} -->\nold\n<!-- /tables:sec{x} -->\n"
                           for x in ("", "-visibility", "-passes", "-masked", "-unseen")))
    (tmp_path / "seen.txt").write_text("# seen before\nmnist_02_1\n")
    (test_out / "per_image.json").write_text(json.dumps(per))  # as the run wrote it (altered above)
    pub = load_script("benchmarks/protocols/publish.py").publish(test_out, doc, "sec", drop_ids=tmp_path / "seen.txt",
                                                               results=tmp_path / "pub")
    text = doc.read_text()
    assert {"sec", "sec-visibility", "sec-passes", "sec-unseen"} <= set(pub["sections"]) and pub["figures"] == []
    assert text.count("\nold\n") == (0 if "sec-masked" in pub["sections"] else 1) and tables.decisions(s) in text
    unseen = text.split("<!-- tables:sec-unseen -->")[1]
    assert "Recomputed by `redecide.py`" in unseen and "1 of 2 images" in unseen
    assert "Recomputed by `redecide.py`" in tables.decision(fewer) and "1 of 2 images" in tables.decision(fewer)
    with pytest.raises(SystemExit, match="not among the run's images"):
        red.redecide(s, table, ["no-such-id"])
    _write(SMALL.replace("n_boot = 50", "n_boot = 60") + chosen + "\n", proto)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "sha256" in "\n".join(err) and "made with other settings" in err[0]


def test_holm_equals_statsmodels_and_a_hand_computation():
    p = [0.01, 0.04, 0.03, 0.002]
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1].tolist())
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.008])  # 4 x 0.002; 3 x 0.01; max(2 x 0.03, .03); 0.06


def test_trapezoid_optimality_is_attackbenchs_formula():
    rng = np.random.default_rng(3)
    for n in (4, 17, 200):
        a, b = rng.exponential(1.0, n), rng.exponential(1.3, n)
        b[: max(1, n // 10)] = np.inf
        a[:1] = b[:1] = 0.0
        best = ensemble({"a": a, "b": b})
        assert trapezoid_optimality(b, best) == pytest.approx(_attackbench(b, best))
        assert trapezoid_optimality(a, best) == pytest.approx(_attackbench(a, best))


def test_the_log_ratio_test_is_scipys_wilcoxon_and_the_bootstrap_is_a_percentile_interval():
    rng = np.random.default_rng(4)
    ours, peer = rng.exponential(1.0, 30) + 0.1, rng.exponential(1.4, 30) + 0.1
    peer[2], ours[:2], peer[:2] = np.inf, 0.0, 0.0
    t = log_ratio_test(ours, peer)
    keep = np.isfinite(peer) & (ours > 0)
    ref = stats.wilcoxon(np.log(ours[keep] / peer[keep]), alternative="less")
    assert t["n"] == 27 and t["p"] == pytest.approx(ref.pvalue) and t["median_ratio"] == pytest.approx(
        np.exp(np.median(np.log(ours[keep] / peer[keep]))))
    b = bootstrap({"ours": ours, "peer": peer}, "ours", ["peer"], n_boot=400, random_state=0)
    # by hand: the same resamples (numpy's generator with the same seed), the same statistic, the 2.5/97.5 percentiles
    rng2 = np.random.default_rng(0)
    diffs = []
    for _ in range(400):
        idx = rng2.integers(0, 30, 30)
        best = np.minimum(ours[idx], peer[idx])
        diffs.append(optimality(ours[idx], best) - optimality(peer[idx], best))
    assert b["difference"]["peer"] == pytest.approx(list(np.percentile(diffs, [2.5, 97.5])))


def test_a_judge_reading_zero_on_a_fooled_image_counts_for_that_side_not_dropped():
    """Fooled images where one side reads exactly 0: the pair stays, ranked above every finite log ratio (its limit);
    a clean misclassification (not attacked) is no pair; both 0 is a tie. Checked against scipy's Wilcoxon on the
    signed ranks built by hand, and against the old rule (positive pairs only), which lost ours' strongest wins."""
    rng = np.random.default_rng(7)
    ours, peer = rng.exponential(1.0, 25) + 0.1, rng.exponential(1.2, 25) + 0.1
    attacked = np.ones(25, bool)
    ours[:6] = 0.0       # ours below the judge's resolution on 6 fooled images
    peer[6] = 0.0        # the peer on one
    ours[7] = peer[7] = 0.0  # both: a tie
    attacked[8] = False
    ours[8] = peer[8] = 0.0  # misclassified before the attack: no pair
    t = log_ratio_test(ours, peer, attacked)
    assert t["n"] == 24 and t["n_zero_sided"] == 7
    lr = np.log(ours[9:] / peer[9:])
    big = np.abs(lr).max() + 1.0
    by_hand = np.concatenate([np.full(6, -big), [big], [0.0], lr])
    ref = stats.wilcoxon(by_hand, alternative="less")
    assert t["p"] == pytest.approx(ref.pvalue) and t["statistic"] == pytest.approx(ref.statistic)
    old = stats.wilcoxon(lr, alternative="less")  # the rule before the amendment: only pairs both above 0
    assert t["p"] < old.pvalue
    # without the mask the misclassified image (0 for both) is inferred from the values: same pairs but the tie
    assert log_ratio_test(ours, peer)["n"] == 23


def test_the_median_ratio_interval_holds_its_estimate_when_a_judge_reads_zero():
    """The peer reads 0 on 9 of 17 fooled images (below the judge's resolution): the median ratio ours / peer is
    infinite, and its bootstrap interval reaches infinity (it had dropped the infinite resamples and reported a finite
    interval that left out its own estimate); with no zeros the interval is finite and holds the estimate."""
    rng = np.random.default_rng(2)
    ours = rng.exponential(1.0, 17) + 0.1
    peer = rng.exponential(1.0, 17) + 0.1
    attacked = np.ones(17, bool)
    zero = peer.copy()
    zero[:9] = 0.0
    t = log_ratio_test(ours, zero, attacked)
    b = bootstrap({"ours": ours, "peer": zero}, "ours", ["peer"], n_boot=500, random_state=0, attacked=attacked)
    lo, hi = b["median_ratio"]["peer"]
    assert t["median_ratio"] == np.inf and hi == np.inf and lo <= t["median_ratio"]
    t = log_ratio_test(ours, peer, attacked)
    b = bootstrap({"ours": ours, "peer": peer}, "ours", ["peer"], n_boot=500, random_state=0, attacked=attacked)
    lo, hi = b["median_ratio"]["peer"]
    assert np.isfinite([lo, hi]).all() and lo <= t["median_ratio"] <= hi


def test_the_decision_rule_on_constructed_cases():
    """Ours ten percent below a peer on every image: held (the interval above 0, p tiny); a peer that fools 80% of the
    images is compared by optimality alone; a peer equal to ours: not held, and the short-of entry says by how much."""
    rng = np.random.default_rng(5)
    ours = rng.exponential(1.0, 60) + 0.05
    better = ours * 1.1
    weak = ours * 1.2
    weak[:12] = np.inf  # 80% success
    d = decide({"j": {"ours": ours, "a": better, "w": weak}, "own": {"ours": ours, "a": better, "w": weak}}, "ours",
               ["a", "w"], optimises={"ours": ("own",)}, n_boot=200)
    assert list(d["judges"]) == ["j"] and d["held"] == ["j"]
    assert d["judges"]["j"]["peers"]["w"]["tested"] is False and d["judges"]["j"]["peers"]["a"]["p_holm"] < 1e-6
    same = decide({"j": {"ours": ours, "a": ours.copy()}}, "ours", ["a"], optimises={}, n_boot=100)
    assert same["not_held"] == ["j"] and "a" in same["judges"]["j"]["short_of"]


def test_write_chosen_appends_below_the_marker_and_keeps_every_runs_digest(tmp_path):
    """Appending one run's choices leaves the protocol's sha256 as its tune runs recorded it (so another run's test
    stage, already started, resumes); a table other than [chosen] below them is refused, since it would escape the
    digest."""

    wc = load_script("benchmarks/protocols/write_chosen.py")
    proto = _write(SMALL, tmp_path / "p.toml")
    sha = load_protocol(proto).sha256
    tune = tmp_path / "tune"
    tune.mkdir()
    (tune / "config.json").write_text(json.dumps({"protocol_run": "cnn-30", "stage": "tune",
                                                  "protocol": {"sha256": sha}}))
    (tune / "tuning.json").write_text(json.dumps({"chosen": {"perc-al": {"label": "alpha_l=0.5",
                                                                        "settings": {"alpha_l": 0.5}}},
                                                  "scores": {"perc-al|alpha_l=0.5": 0.9}}))
    wc.main(str(proto), [str(tune)])
    text = proto.read_text()
    assert text.startswith(SMALL) and wc.CHOSEN_MARKER in text and load_protocol(proto).sha256 == sha
    assert load_protocol(proto).raw["chosen"]["cnn-30"]["perc-al"] == {"alpha_l": 0.5}
    with pytest.raises(SystemExit, match="already chosen"):
        wc.main(str(proto), [str(tune)])
    other = tune.parent / "stale"  # a tune run under another protocol is refused, the file left as it was
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"protocol_run": "other", "stage": "tune",
                                                   "protocol": {"sha256": "0" * 64}}))
    with pytest.raises(SystemExit, match="tuned under another protocol"):
        wc.main(str(proto), [str(other)])
    assert proto.read_text() == text
    _write(text + "\n[late]\nrule = 1\n", proto)
    with pytest.raises(ParameterError, match="only \\[chosen\\] tables after the first of them"):
        load_protocol(proto)
    # a key under the marker would join the table above it (here a new attack) outside the digest: refused
    head, _, rest = text.partition(wc.CHOSEN_MARKER)
    _write(head + wc.CHOSEN_MARKER + '\nchosen.role = "peer"\n' + rest, proto)
    with pytest.raises(ParameterError, match="got another key or table there"):
        load_protocol(proto)


def test_the_visibility_table_copies_each_share_and_interval_from_a_stored_summary():
    """benchmarks/tables.py visibility on the committed tune-stage summary: one row per method that has a visibility
    block, one column per thresholded judge, each cell the stored share and interval in percent, the sources below."""
    s = json.loads((ROOT / "benchmarks/results/protocol_tune_effnet-200.json").read_text())
    text = load_script("benchmarks/tables.py").visibility(s)
    rows = [r for r in text.splitlines() if r.startswith("| `")]
    assert len(rows) == sum(1 for m in s["methods"].values() if m.get("visibility"))
    name, block = next((n, m["visibility"]) for n, m in s["methods"].items() if m.get("visibility"))
    e = block["butteraugli"]
    k = round(e["share"] * e["used"])
    exact = stats.binomtest(k, e["used"]).proportion_ci(confidence_level=0.95, method="exact")  # Clopper-Pearson
    assert rows[0].startswith(f"| `{name}` |") and (f"{100 * e['share']:.0f}% [{100 * e['low']:.0f}, "
                                                     f"{100 * e['high']:.0f}; exact {100 * exact.low:.0f}-"
                                                     f"{100 * exact.high:.0f}] of {e['used']}") in rows[0]
    assert e["source"] in text and "butteraugli" in text.splitlines()[2]
    n = s["methods"][name]["n_clean_correct"]
    assert f"{round(e['share'] * e['used'])} of {n} attacked" in rows[0]  # comparable across attacks: failures count


def test_the_success_gate_counts_a_fooled_image_a_judge_reads_as_zero():
    """A peer that fooled every attacked image, one of them below the judge's resolution (exactly 0): with the mask of
    attacked images its success is 1 and it is tested; without the mask that image would read as misclassified."""
    attacked = np.array([True, True, True, True, False])  # image 4: misclassified before any attack
    v_failed = np.array([0.0, np.inf, 0.3, 0.1, 0.0])
    assert success_share(v_failed, attacked) == pytest.approx(0.75) and success_share(v_failed) == pytest.approx(2 / 3)
    ours = np.array([0.0, 0.1, 0.1, 0.05, 0.0])
    d = decide({"j": {"ours": ours, "p": v_failed}}, "ours", ["p"], optimises={}, min_success=0.7, n_boot=50,
               attacked=attacked)
    assert d["judges"]["j"]["peers"]["p"]["peer_success"] == pytest.approx(0.75)
    assert d["judges"]["j"]["peers"]["p"]["tested"]  # 0.75 >= 0.7; the unmasked share, 2/3, would have waived the test


def test_the_tune_standings_rank_each_attacks_chosen_point_from_the_stored_tune_summary():
    """benchmarks/tables.py tune-standings on the committed effnet-200 tune summary: one row per judge, ours' optimality
    and rank among the chosen points copied from the summary, every attack above ours named (none where it is first)."""
    s = json.loads((ROOT / "benchmarks/results/protocol_tune_effnet-200.json").read_text())
    text = load_script("benchmarks/tables.py").tune_standings(s)
    rows = [r for r in text.splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert len(rows) == len(s["minimal"]["judges"])
    ours = "human-perc-ot|" + s["tuning"]["chosen"]["human-perc-ot"]["label"]
    chosen = ["|".join([a, c["label"]]) if c["label"] else a for a, c in s["tuning"]["chosen"].items()]
    for e, r in zip(s["minimal"]["judges"].values(), rows):
        o = e["methods"][ours]["optimality"]
        above = [m for m in chosen if e["methods"][m]["optimality"] > o]
        assert f"| {o:.3f} | {len(above) + 1} of {len(chosen)} |" in r
        assert r.rstrip(" |").endswith("none") == (not above)


@pytest.mark.parametrize("job", ["test-effnet-200", "tune-mnist-cnn-b-1000", "fairness-protocol", "test-p2-mnist-cnn-200"])
def test_the_queue_and_finish_agree_where_a_jobs_summary_is_committed(job):
    """sitting.sh decides that a job is done by the file finish.py writes: both name the same path."""
    import subprocess

    got = subprocess.run(["bash", str(ROOT / "benchmarks/protocols/sitting.sh"), "where", job], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert ROOT / got == load_script("benchmarks/protocols/finish.py").where(job)
