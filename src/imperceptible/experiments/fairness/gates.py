"""What the attacks did to the cue (Algorithm 2's mechanism), and the manipulation checks fixed before any
Algorithm 3 run. The gates, with their thresholds stated in advance:

1. the pre-trained model relies on the cue: its interventional reliance (:mod:`.evaluation`) is at least
   :data:`RELIANCE_MIN`;
2. Human_Perc_OT's adversarial rows change the decoded cue at least :data:`RATIO_MIN` times as often as
   PGD-L2's;
3. Human_Perc_OT puts at least :data:`RATIO_MIN` times PGD-L2's share of its perturbation energy on the cue.

If one fails, the design cannot test the paper's mechanism (the cue is not used, or the perceptual attack does not
reach it more than PGD does), and the study says so beside its answer.
"""

from __future__ import annotations

import typing
from typing import Any

import numpy as np
import torch

from ...costs import get as get_cost
from ...data.cues import energy_share, span_rank
from ...data.geo_fashion import design_cues
from ...dro import WeightedDataset

RELIANCE_MIN = 0.15
RATIO_MIN = 2.0


def mechanism(data: WeightedDataset, subset_ds) -> dict:
    """Of the rows Algorithm 2's attack made (not those from the k-means cache): how many, their size (L2 and
    1 - SSIM to the original), how often they change the decoded cue, and the share of their energy on it."""
    cached = typing.cast(torch.Tensor, data.cached)  # filled in by WeightedDataset.__post_init__
    adv = data.adversarial & ~cached
    if not adv.any():
        return {"attacked_rows": 0}
    xa, orig = data.x[adv], data.x[data.origin[adv]]
    delta = xa - orig
    ssim = get_cost("ssim", kernel_size=11 if min(xa.shape[-2:]) >= 11 else 7)
    with torch.no_grad():
        d_orig = torch.cat([ssim(xa[i : i + 512], orig[i : i + 512]) for i in range(0, len(xa), 512)])
    out: dict[str, Any] = {"attacked_rows": int(adv.sum()), "l2_to_original": float(delta.flatten(1).norm(dim=1).mean()),
           "ssim_distance_to_original": float(d_orig.mean()), "cached_rows": int((data.adversarial & cached).sum())}
    if subset_ds.info.get("cues"):
        rows = data.origin[adv]
        base = subset_ds.info["base"][rows].float() / 255
        cue = design_cues(subset_ds)[-1]
        shown = torch.as_tensor(subset_ds.info["cues"][-1]["labels"])[rows]
        moved = delta.flatten(1).abs().amax(1) > 0
        dirs = cue.directions(base)
        rank = float(span_rank(dirs).double().mean())
        out.update(cue=cue.name, cue_changed_rate=float((cue.decode(xa, base) != shown).float().mean()),
                   cue_energy_share=float(energy_share(delta[moved], dirs[moved]).mean()) if moved.any() else None,
                   cue_energy_chance=rank / delta[0].numel(), cue_rank=rank)
    return out


def _ratio(a, b) -> float | None:
    if a is None or b is None:
        return None
    return float("inf") if b == 0 and a > 0 else (float(a / b) if b else None)


def gates(pretrained: list[dict], mechanisms: dict[str, list[dict]], ours: str, other: str) -> dict:
    """The three gates from the pre-trained models' evaluations and each family's mechanism records (one per
    replicate)."""
    def mean(rows, key):
        vals = [r.get(key) for r in rows if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    rel = [next(iter(reversed(p["reliance"].values()))) for p in pretrained if p.get("reliance")]
    reliance = float(np.mean(rel)) if rel else None
    changed = {f: mean(mechanisms.get(f, []), "cue_changed_rate") for f in (ours, other)}
    energy = {f: mean(mechanisms.get(f, []), "cue_energy_share") for f in (ours, other)}
    checks: dict[str, dict[str, Any]] = {
        "pretrained_reliance": {"value": reliance, "threshold": RELIANCE_MIN, "rule": ">= threshold"},
        "cue_changed_ratio": {"value": _ratio(changed[ours], changed[other]), "threshold": RATIO_MIN,
                              "rule": f"{ours} / {other} >= threshold", "rates": changed},
        "cue_energy_ratio": {"value": _ratio(energy[ours], energy[other]), "threshold": RATIO_MIN,
                             "rule": f"{ours} / {other} >= threshold", "shares": energy},
    }
    for c in checks.values():
        c["passed"] = None if c["value"] is None else bool(c["value"] >= c["threshold"])
    verdicts = [c["passed"] for c in checks.values()]
    applicable = None not in verdicts
    # one gate that fails fails the design, even where another cannot be measured (0 / 0 cue changes)
    passed = False if False in verdicts else (True if applicable else None)
    return {"checks": checks, "applicable": applicable, "passed": passed}


VERDICTS = {True: "every gate passed: the design can test the mechanism",
            False: "a gate FAILED: this design cannot test the paper's mechanism (read the answer below with that)",
            None: "not applicable (a dataset without simulated cues)"}
"""The study's one sentence on its gates (report and terminal), keyed by ``gates(...)["passed"]``."""

__all__ = ["RATIO_MIN", "RELIANCE_MIN", "VERDICTS", "gates", "mechanism"]
