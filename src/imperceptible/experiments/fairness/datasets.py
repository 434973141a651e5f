"""What each arm's Algorithm 3 draws from, built from the replicate's Algorithm 2 dataset ``D`` of Human_Perc_OT
(or of its family) with the same weights, rows and draws, so that arms differ only in their rows' images:

* ``erm``: the replicate's training subset itself (uniform draws of weight-1 rows);
* ``FAMILY``: its ``D``;
* ``FAMILY/no-attack``: ``D`` with every adversarial row replaced by its original (the control: the schedule
  without the attack);
* ``oracle``: Human_Perc_OT's ``D`` with every adversarial row replaced by its original with the cue repainted for
  a random label: the most that removing the cue's reliance can buy in these epochs;
* ``matched-noise``: Human_Perc_OT's ``D`` with every adversarial row replaced by its original plus Gaussian noise
  of the same L2 as that row's perturbation (8-bit): adversarial against mere augmentation.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ...data.geo_fashion import repaint
from ...dro import WeightedDataset
from ...pixels import quantize_8bit
from ...seeds import derive

ERM, CONTROL, ORACLE, NOISE = "erm", "/no-attack", "oracle", "matched-noise"


def replaced(d: WeightedDataset, images: torch.Tensor) -> WeightedDataset:
    """``d`` with its adversarial rows' images replaced (same weights and rows; flagged as not adversarial)."""
    out = copy.copy(d)
    x = d.x.clone()
    x[d.adversarial] = images
    out.x, out.adversarial = x, torch.zeros_like(d.adversarial)
    return out


def oracle(d: WeightedDataset, subset_ds, seed: int) -> WeightedDataset:
    """Adversarial rows -> their originals with the primary cue repainted for a random label."""
    rows = d.origin[d.adversarial]
    rng = np.random.RandomState(derive(seed, "oracle", bits=32))
    labels = torch.as_tensor(rng.randint(0, 10, len(rows)))
    return replaced(d, repaint(subset_ds, -1, labels, rows=rows))


def matched_noise(d: WeightedDataset, seed: int) -> WeightedDataset:
    """Adversarial rows -> their originals plus Gaussian noise of the row's own perturbation L2, 8-bit."""
    adv = d.adversarial
    orig = d.x[d.origin[adv]]
    l2 = (d.x[adv] - orig).flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    g = torch.Generator().manual_seed(derive(seed, "matched-noise"))
    noise = torch.randn(orig.shape, generator=g)
    noise = noise / noise.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1) * l2
    return replaced(d, quantize_8bit(orig + noise))


__all__ = ["CONTROL", "ERM", "NOISE", "ORACLE", "matched_noise", "oracle", "replaced"]
