"""``imperceptible study make``: a perceptibility study from a run directory.

Trials come from the images every chosen method attacked successfully (so each image is shown once per
method and the analysis can rank methods image by image); the same number per method, drawn at random
(``seed``). Two designs:

* ``2afc`` (the LPIPS/BAPPS protocol): the original and an attacked image side by side, sides random;
  "which one was modified?"; chance is 1/2;
* ``single``: one image, "was this image modified?"; as many unmodified originals as attacked images, so
  hit and false-alarm rates (and d') can be computed.

Catch trials (``catch_trials``, default 4) show a visibly perturbed image - by default the original plus
uniform noise of +-24/255 per pixel, or a method of the run given as ``catch`` (e.g. a large-budget PGD) - to
find participants who do not attend. (The literal ``human-perc-ot[paper]`` is not a safe default: its images
are not reliably visible, and on MNIST it mostly fails.) A catch method must not also be tested, and its catch
images are only those it attacked successfully that change the image by at least :data:`CATCH_MIN_RMS` (half the
RMS change of the noise catch, ``(24/255)/sqrt(3)/2``, about 6.9 grey levels: our rule, so a failed or faint
method is refused, not shown as "visible"). Each tested method is named once. The study folder holds
``index.html`` (the page to send) and ``study.json`` (the definition with the answer key and each trial's
automatic-judge values - finite ones; keep it); it is written under the one rule for output folders
(:mod:`.folders`): ``--overwrite`` replaces a study folder's own files only.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..config import check_int_option, option, record
from ..errors import (
    MSG_ONLY_CATCH,
    MSG_OUT_IN_RUN,
    MSG_STUDY_ALTERED,
    MSG_STUDY_CATCH_INVISIBLE,
    MSG_STUDY_CATCH_TESTED,
    MSG_STUDY_DUPLICATE_METHOD,
    MSG_STUDY_NOT_A_RUN,
    MSG_STUDY_TOO_FEW,
    MSG_STUDY_UNKNOWN_METHODS,
    MSG_STUDY_UNREADABLE,
    StudyError,
)
from ..fileio import atomic_write_json, atomic_write_text
from ..runs.rundir import RunDir, check_outside, output_folder
from ..runs.summary import DISTANCE_KEYS
from ..seeds import derive
from .folders import STUDY, STUDY_FORMAT
from .page import render_page

PAPER_CATCH = "human-perc-ot[paper]"
NOISE = 24 / 255
#: the smallest RMS change (in [0, 1] units) of a catch method's image: half the noise catch's, NOISE / sqrt(3) / 2
CATCH_MIN_RMS = NOISE / math.sqrt(3) / 2


@dataclass(frozen=True)
class StudyConfig:
    """``imperceptible study make``'s settings."""

    methods: tuple[str, ...] = option((), "methods to test, repeatable (default: every method of the run but the "
                                      "catch one)", flag="--method", action="append")
    trials: int = option(20, "trials per method (fewer if fewer images were attacked by every method)", type=int)
    design: str = option("2afc", "2afc (which of two was modified) or single (was this one modified)",
                         choices=("2afc", "single"))
    catch_trials: int = option(4, "catch trials (a visibly perturbed image) to find inattentive participants",
                               type=int)
    catch: str = option("noise", "catch images: noise (+-24/255 uniform noise on the original) or a method of the run "
                        "whose images are visibly perturbed")
    viewing_ms: int = option(0, "how long the images stay visible, in ms (0: until the answer)", type=int)
    seed: int = option(0, "seed of the draws and sides", type=int)
    title: str = option("Can you see the difference?", "the page's title")

    def __post_init__(self) -> None:
        check_int_option("trials", self.trials)
        check_int_option("catch_trials", self.catch_trials, minimum=0)
        check_int_option("viewing_ms", self.viewing_ms, minimum=0)
        check_int_option("seed", self.seed, minimum=0)


def _png_data_uri(x: torch.Tensor) -> str:
    a = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def study_hash(definition: dict) -> str:
    """sha256 of the study definition's trials and settings (what an answers file must name)."""
    core = {k: definition[k] for k in ("config", "run", "trials")}
    return hashlib.sha256(json.dumps(core, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _instructions(cfg: StudyConfig, n: int) -> str:
    view = (f"Each pair is shown for {cfg.viewing_ms / 1000:g} seconds; answer even after it disappears."
            if cfg.viewing_ms else "Take as long as you need, but do not zoom in.")
    if cfg.design == "2afc":
        task = ("You will see two images side by side (A and B). One of them is the original photo; the other was "
                "modified by a computer. Choose the one you think was <b>modified</b>. If you cannot tell, guess.")
        keys = "Keys: <b>1</b> or <b>&larr;</b> for A, <b>2</b> or <b>&rarr;</b> for B; or tap the buttons."
    else:
        task = ("You will see one image at a time. Some were modified by a computer, some were not. Say whether you "
                "think the image was <b>modified</b>. About half of them were.")
        keys = "Keys: <b>Y</b> for yes, <b>N</b> for no; or tap the buttons."
    return (f"<p>{task}</p><p>There are {n} trials (a few minutes). {view} Use a screen at normal brightness, at a "
            f"normal viewing distance.</p><p>{keys}</p><p>At the end you download a small answers file (it holds your "
            "choices and response times, and the code you type below if you type one).</p>")


def _study_images(run_path: Path, cfg: StudyConfig) -> tuple[RunDir, dict, list[str], dict, list[str]]:
    """The run's directory, config, the methods to test, their rows and the images every one of them fooled
    (refusing a run that is not one, unknown or repeated methods, or nothing to show)."""
    cfg_json = run_path / "config.json"
    if not cfg_json.is_file() or not (run_path / "results.sqlite").is_file() or not (run_path / "images").is_dir():
        raise StudyError.of(MSG_STUDY_NOT_A_RUN, path=run_path, got="no config.json, results.sqlite and images/")
    rd = RunDir(run_path)
    try:
        run_cfg = json.loads(cfg_json.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StudyError.of(MSG_STUDY_NOT_A_RUN, path=run_path, got=f"an unreadable config.json ({e})") from None
    if not isinstance(run_cfg, dict) or run_cfg.get("job") not in ("attack", "bench attacks"):
        job = run_cfg.get("job") if isinstance(run_cfg, dict) else None
        raise StudyError.of(MSG_STUDY_NOT_A_RUN, path=run_path, got=f"a '{job}' run")
    twice = [(m, k) for m, k in Counter(cfg.methods).items() if k > 1]
    if twice:
        raise StudyError.of(MSG_STUDY_DUPLICATE_METHOD, method=twice[0][0], times=twice[0][1])
    available = rd.store.methods()
    catch = cfg.catch
    if catch != "noise" and catch not in available:
        raise StudyError.of(MSG_STUDY_UNKNOWN_METHODS, choices=", ".join(available), got=catch)
    if catch in cfg.methods:
        raise StudyError.of(MSG_STUDY_CATCH_TESTED, catch=catch)
    methods = list(cfg.methods) or [m for m in available if m not in (catch, PAPER_CATCH)]
    if not methods:
        raise StudyError.of(MSG_ONLY_CATCH, catch=catch, available=", ".join(available))
    bad = [m for m in methods if m not in available]
    if bad:
        raise StudyError.of(MSG_STUDY_UNKNOWN_METHODS, choices=", ".join(available), got=", ".join(bad))
    rows = {m: {r["id"]: r for r in rd.store.rows(m)} for m in set(methods) | ({catch} - {"noise"})}
    fooled = [{i for i, r in rows[m].items() if r["success"] and r["clean_correct"] and rd.has_image(m, i)}
              for m in methods]
    if catch != "noise":
        fooled.append({i for i in rows[catch] if rd.has_image(catch, i)})
    common = sorted(set.intersection(*fooled)) if fooled else []
    common = [i for i in common if rd.has_image("original", i)]
    if not common:
        raise StudyError.of(MSG_STUDY_TOO_FEW, path=run_path, methods=", ".join(methods))
    return rd, run_cfg, methods, rows, common


def catch_candidates(cfg: StudyConfig, rd: RunDir, rows: dict, common: list[str]) -> list[str]:
    """The images catch trials may show: any of ``common`` for the noise catch; for a catch method, those it
    attacked successfully whose change is visible (RMS at least :data:`CATCH_MIN_RMS`), refused if none is."""
    if cfg.catch == "noise" or not cfg.catch_trials:
        return common
    hit = [i for i in common if rows[cfg.catch][i]["success"] and rows[cfg.catch][i]["clean_correct"]]
    rms = {i: float((rd.load_image(cfg.catch, i) - rd.load_image("original", i)).pow(2).mean().sqrt()) for i in hit}
    visible = [i for i in hit if rms[i] >= CATCH_MIN_RMS]
    if not visible:
        why = (f"it attacked {len(hit)} successfully, changing them by at most {max(rms.values()):.4f} RMS" if hit
               else "it attacked none of them successfully")
        raise StudyError.of(MSG_STUDY_CATCH_INVISIBLE, catch=cfg.catch, rms=CATCH_MIN_RMS, levels=255 * CATCH_MIN_RMS,
                            n=len(common), why=why)
    return visible


def _trials(cfg: StudyConfig, rd: RunDir, methods: list[str], rows: dict, common: list[str], catchable: list[str],
            rng: np.random.RandomState) -> tuple[list[dict], dict[str, str], int, int]:
    """The trials (test, catch and, in the single design, original), the images they show under opaque keys,
    the trials per method and the catch trials."""
    n = min(cfg.trials, len(common))
    ids = sorted(rng.choice(common, n, replace=False).tolist())
    images: dict[str, str] = {}
    keys: dict[tuple[str, str], str] = {}
    key_names = rng.permutation(100000)

    def key_for(kind: str, sid: str, make) -> str:
        if (kind, sid) not in keys:
            k = f"i{key_names[len(keys)]:05d}"
            keys[(kind, sid)] = k
            images[k] = _png_data_uri(make())
        return keys[(kind, sid)]

    # (kind, method: None for an original, image)
    plan: list[tuple[str, Any, str]] = [("test", m, sid) for m in methods for sid in ids]
    catch_ids = rng.choice(catchable, cfg.catch_trials, replace=len(catchable) < cfg.catch_trials).tolist() \
        if cfg.catch_trials else []
    plan += [("catch", cfg.catch, sid) for sid in catch_ids]
    if cfg.design == "single":
        plan += [("original", None, sid) for sid in rng.choice(ids, len(methods) * n, replace=True).tolist()]
    trials = []
    for j, (kind, method, sid) in enumerate(plan):
        orig = key_for("original", sid, lambda s=sid: rd.load_image("original", s))
        if kind == "original":
            shown = orig
        elif method == "noise":
            def noisy(s=sid, j=j):
                x = rd.load_image("original", s)
                g = torch.Generator().manual_seed(derive(cfg.seed, "catch noise", j))
                return ((x + NOISE * (2 * torch.rand(x.shape, generator=g) - 1)).clamp(0, 1) * 255).round() / 255
            shown = key_for(f"noise{j}", sid, noisy)
        else:
            shown = key_for(method, sid, lambda m=method, s=sid: rd.load_image(m, s))
        metrics = rows[method][sid]["metrics"] if method in rows else {}
        t: dict[str, Any] = {"id": f"t{j:03d}", "kind": kind, "method": method, "image": sid,  # finite judges only: strict JSON
             "judges": {k: metrics[k] for k in DISTANCE_KEYS if metrics.get(k) is not None and math.isfinite(metrics[k])}}
        if cfg.design == "2afc":
            side = "a" if rng.rand() < 0.5 else "b"
            t.update(modified=side, a=shown if side == "a" else orig, b=orig if side == "a" else shown)
        else:
            t.update(modified=kind != "original", img=shown)
        trials.append(t)
    return trials, images, n, len(catch_ids)


def make_study(config: StudyConfig | None = None, *, run: str | Path, out: str | Path, overwrite: bool = False,
               **settings) -> dict:
    """Write the study folder ``out`` from the run directory ``run``; returns a short description. Every check
    comes before ``out`` is touched; an existing study folder is replaced only with ``overwrite`` (its own files
    only: see :mod:`.folders`)."""
    cfg = config or StudyConfig(**settings)
    run_path, out = Path(run), Path(out)
    rd, run_cfg, methods, rows, common = _study_images(run_path, cfg)
    check_outside(out, [run_path], MSG_OUT_IN_RUN)
    catchable = catch_candidates(cfg, rd, rows, common)
    trials, images, n, n_catch = _trials(cfg, rd, methods, rows, common, catchable, np.random.RandomState(cfg.seed))
    definition = {"format": STUDY_FORMAT, "config": record(cfg), "run": str(run_path.resolve()),
                  "run_config": {k: run_cfg.get(k) for k in ("job", "dataset", "model")}, "methods": methods,
                  "catch": cfg.catch, "trials_per_method": n, "trials": trials}
    definition["hash"] = study_hash(definition)
    page_trials = [{"id": t["id"], **({"a": t["a"], "b": t["b"]} if cfg.design == "2afc" else {"img": t["img"]})}
                   for t in trials]
    page = render_page(title=cfg.title, instructions_html=_instructions(cfg, len(trials)), payload={
        "hash": definition["hash"], "design": cfg.design, "viewing_ms": cfg.viewing_ms, "trials": page_trials,
        "images": images})
    with output_folder(out, STUDY, overwrite=overwrite):
        atomic_write_json(out / "study.json", definition)
        atomic_write_text(out / "index.html", page)
    return {"page": str(out / "index.html"), "definition": str(out / "study.json"), "n_trials": len(trials),
            "per_method": n, "n_catch": n_catch, "methods": methods, "catch": cfg.catch, "hash": definition["hash"]}


def load_study(path: str | Path) -> dict:
    """The study definition of a study folder (checked against its own hash)."""
    p = Path(path)
    f = p / "study.json" if p.is_dir() else p
    try:
        d = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise StudyError.of(MSG_STUDY_UNREADABLE, path=f, error=e) from None
    if not isinstance(d, dict) or d.get("format") != STUDY_FORMAT or study_hash(d) != d.get("hash"):
        raise StudyError.of(MSG_STUDY_ALTERED, path=f)
    return d


__all__ = ["CATCH_MIN_RMS", "StudyConfig", "StudyError", "catch_candidates", "load_study", "make_study", "study_hash"]
