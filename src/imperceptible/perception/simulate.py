"""Simulated participants, for planning a study and for the README's worked example - never for claims
about people (every file and report says SIMULATED).

A simulated observer detects a modification with a Weibull psychometric function of one automatic judge's
distance ``d`` (``judge``, e.g. ``lpips_x1000``): ``p(d) = 1 - exp(-(d / threshold)^slope)``. In the 2AFC design
it picks the modified image with probability ``1/2 + p(d)/2``, in the single design it says "modified" with
probability ``false_alarm + (1 - false_alarm) p(d)`` (originals: ``false_alarm``); a lapse rate ``lapse`` mixes in
random answers, and a share ``inattentive`` of the observers answers at random throughout (the catch trials
should exclude them). Catch trials count as ``d = infinity``.

The judge must be one the study recorded (a typo would make every answer a coin flip: refused, naming the
judges), ``threshold`` and ``slope`` finite and positive, and the three shares in [0, 1]. The answers go into an
empty folder or a folder of simulated answers (:mod:`.folders`), whose earlier files are replaced.
"""

from __future__ import annotations

import datetime as _dt
import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import check_int_option, check_number_option, flag, option
from ..errors import MSG_UNKNOWN_SUGGEST, UnknownNameError
from ..fileio import atomic_write_json
from ..runs.rundir import output_folder
from ..validation import check_number
from .answers import FORMAT, checksum
from .folders import SIMULATED, SIMULATED_PATTERN, is_simulated_answers
from .make import load_study


def check_rate(name: str, value, *, closed: bool = True) -> float:
    """A share: a finite number in [0, 1] (``closed=False``: strictly between 0 and 1), naming its flag."""
    return float(check_number(flag(name), value, low=0, high=1, low_open=not closed, high_open=not closed,
                              expected=None if closed else "a number between 0 and 1 (exclusive)"))


def detection_probability(d: float, threshold: float, slope: float) -> float:
    if not np.isfinite(d):
        return 1.0
    return float(1 - np.exp(-((max(d, 0.0) / threshold) ** slope)))


@dataclass(frozen=True)
class SimulateConfig:
    """``imperceptible study simulate``'s settings: the simulated observers' psychometric model."""

    participants: int = option(20, "simulated participants", type=int)
    judge: str = option("lpips_x1000", "the judge whose distance drives detection")
    threshold: float | None = option(None, "distance detected 63%% of the time (default: the median)", type=float)
    slope: float = option(2.0, "Weibull slope", type=float)
    lapse: float = option(0.02, "share of attentive answers given at random (lapses)", type=float)
    false_alarm: float = option(0.2, "single design: share of 'modified' answers to unmodified images", type=float)
    inattentive: float = option(0.1, "share of participants answering at random", type=float)
    seed: int = option(0, "seed of the simulated answers", type=int)

    def __post_init__(self) -> None:
        check_int_option("participants", self.participants)
        check_int_option("seed", self.seed, minimum=0)
        check_number_option("threshold", self.threshold, allow_none=True)
        check_number_option("slope", self.slope)
        for name in ("lapse", "false_alarm", "inattentive"):
            check_rate(name, getattr(self, name))


def check_judge(study: dict, judge: str) -> None:
    """Refuse a judge the study's test trials did not record (naming the close ones and all of them)."""
    recorded = sorted({k for t in study["trials"] if t["kind"] == "test" for k in t["judges"]})
    if judge not in recorded:
        close = difflib.get_close_matches(judge, recorded, n=3, cutoff=0.5)
        hint = f" (did you mean: {', '.join(close)}?)" if close else ""
        raise UnknownNameError.of(MSG_UNKNOWN_SUGGEST, kind="--judge (a judge this study recorded)", name=judge,
                                  hint=hint, choices=", ".join(recorded))


_S = SimulateConfig


def simulate_answers(study_dir: str | Path, out: str | Path, *, participants: int = _S.participants,
                     judge: str = _S.judge, threshold: float | None = _S.threshold, slope: float = _S.slope,
                     lapse: float = _S.lapse, false_alarm: float = _S.false_alarm, inattentive: float = _S.inattentive,
                     seed: int = _S.seed) -> list[Path]:
    """Write one answers file per simulated participant into ``out``; returns their paths."""
    SimulateConfig(participants=participants, judge=judge, threshold=threshold, slope=slope, lapse=lapse,
                   false_alarm=false_alarm, inattentive=inattentive, seed=seed)  # its checks
    study = load_study(study_dir)
    check_judge(study, judge)
    design = study["config"]["design"]
    tests = [t for t in study["trials"] if t["kind"] == "test"]
    values = np.array([t["judges"].get(judge, np.nan) for t in tests], float)
    if threshold is None:
        finite = values[np.isfinite(values)]
        threshold = float(np.median(finite)) if finite.size else 1.0
    rng = np.random.RandomState(seed)
    out = Path(out)
    files = []
    for i in range(participants):
        careless = rng.rand() < inattentive
        order = rng.permutation(len(study["trials"]))
        answers = []
        for pos, j in enumerate(order):
            t = study["trials"][j]
            d = np.inf if t["kind"] == "catch" else t["judges"].get(judge, np.nan)
            p = detection_probability(d, threshold, slope) if np.isfinite(d) or d == np.inf else 0.0
            if careless or rng.rand() < lapse:
                hit = rng.rand() < 0.5
                choice = ("a" if hit else "b") if design == "2afc" else ("yes" if hit else "no")
            elif design == "2afc":
                right = rng.rand() < 0.5 + 0.5 * p
                other = "b" if t["modified"] == "a" else "a"
                choice = t["modified"] if right else other
            else:
                q = false_alarm if t["kind"] == "original" else false_alarm + (1 - false_alarm) * p
                choice = "yes" if rng.rand() < q else "no"
            answers.append({"trial": t["id"], "choice": choice, "rt_ms": int(rng.lognormal(7.2, 0.4)), "position": pos})
        now = _dt.datetime(2026, 1, 1, tzinfo=_dt.timezone.utc).isoformat()
        data = {"format": FORMAT, "study": study["hash"], "participant": f"simulated-{i + 1:02d}", "started": now,
                "finished": now, "user_agent": f"simulation ({judge}, threshold {threshold:.4g}, slope {slope:g})",
                "viewport": [0, 0], "answers": answers, "checksum": checksum(study["hash"], answers)}
        files.append((out / f"answers-simulated-{i + 1:02d}.json", data))
    with output_folder(out, SIMULATED):
        for path, data in files:
            atomic_write_json(path, data)
        paths = [path for path, _ in files]
        for old in set(out.glob(SIMULATED_PATTERN)) - set(paths):  # an earlier simulation's extra participants
            if is_simulated_answers(old):
                old.unlink()
    return paths


__all__ = ["SimulateConfig", "check_judge", "check_rate", "detection_probability", "simulate_answers"]
