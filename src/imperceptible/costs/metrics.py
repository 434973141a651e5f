"""The one table of every per-image measurement: its summary key, the cost that computes it, its unit and its
label. The distance meter, the summaries, the reports, the command line and the README's tables are derived
from it, so a metric is named, scaled and labelled in one place.

Keys are the stable ``summary.json`` keys. A key's value is ``factor`` times its cost's value (``lpips_x1000``
stores LPIPS x 1000); tables show ``show`` times the stored value (``ssim_distance`` is stored as 1 - SSIM and
shown x 1000), with ``digits`` decimals. ``judge`` marks the perceptual judges of the minimal-attack benchmark
(the ones a method is ranked by); which method optimises which metric is the attacks' own statement
(:meth:`imperceptible.attacks.Attack.optimises`).

Judges whose value is one minus a similarity near 1 (``exact=True``) are computed in float64: in float32 their
``1 - x`` at the sizes of these attacks (1e-5 to 1e-4) keeps only two or three significant digits.

Examples:
    >>> from imperceptible.costs.metrics import METRICS, by_group, judges
    >>> METRICS["lpips_x1000"].cost, METRICS["lpips_x1000"].factor, METRICS["ssim_distance"].show
    ('lpips', 1000.0, 1000.0)
    >>> [m.key for m in by_group("saliency")][:2]
    ['saliency_l1', 'saliency_l2']
    >>> "ssim_y_distance" in [m.key for m in judges()]
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Metric:
    """One per-image measurement (see the module docstring)."""

    key: str
    label: str
    group: str                      # "distance" (Table 1), "judge" (no attack optimises it), "saliency"
    cost: str | None = None         # the cost registry name that computes it (None: computed elsewhere)
    options: dict = field(default_factory=dict)
    factor: float = 1.0             # stored value = factor x cost value
    show: float = 1.0               # tables show show x stored value
    digits: int = 3
    judge: bool = False             # ranked by in the minimal-attack benchmark
    learned: bool = False           # needs learned weights (LPIPS, DISTS)
    exact: bool = False             # computed in float64

    @property
    def unit(self) -> str:
        """The display suffix: ``x1000`` when a value is multiplied for display or stored multiplied."""
        return "x1000" if 1000.0 in (self.factor, self.show) else ""


_TABLE = [
    Metric("l1", "L1", "distance", "l1", digits=3),
    Metric("l2", "L2", "distance", "l2", digits=4),
    Metric("linf", "Linf", "distance", "linf", digits=4),
    Metric("ssim", "SSIM", "distance", None, digits=6),
    Metric("ssim_distance", "1-SSIM x1000", "distance", "ssim", show=1000.0, judge=True, exact=True),
    Metric("ms_ssim_distance", "1-MS-SSIM x1000", "distance", "ms-ssim", show=1000.0, judge=True, exact=True),
    Metric("ciede2000", "CIEDE2000 C2", "distance", "ciede2000", digits=2, judge=True),
    Metric("lpips_x1000", "LPIPS x1000", "distance", "lpips", {"net": "alex"}, factor=1000.0, judge=True, learned=True),
    Metric("lpips_vgg_x1000", "LPIPS-vgg x1000", "distance", "lpips", {"net": "vgg"}, factor=1000.0, judge=True,
           learned=True),
    Metric("dists_x1000", "DISTS x1000", "distance", "dists", factor=1000.0, judge=True, learned=True),
    Metric("ssim_y_distance", "1-SSIM_Y x1000", "judge", "ssim-y", show=1000.0, judge=True, exact=True),
    Metric("fsim_distance", "1-FSIM x1000", "judge", "fsim", show=1000.0, judge=True, exact=True),
    Metric("gmsd", "GMSD x1000", "judge", "gmsd", show=1000.0, digits=2, judge=True, exact=True),
    Metric("vsi_distance", "1-VSI x1000", "judge", "vsi", show=1000.0, judge=True, exact=True),
    Metric("haarpsi_distance", "1-HaarPSI x1000", "judge", "haarpsi", show=1000.0, digits=2, judge=True, exact=True),
    Metric("saliency_l1", "saliency L1", "saliency", digits=1),
    Metric("saliency_l2", "saliency L2", "saliency", digits=3),
    Metric("saliency_linf", "saliency Linf", "saliency", digits=4),
    Metric("saliency_ssim_distance", "saliency 1-SSIM x1000", "saliency", show=1000.0),
]
METRICS: dict[str, Metric] = {m.key: m for m in _TABLE}
#: every distance key, in report order (the distance table's and the saliency maps')
KEYS = tuple(m.key for m in _TABLE if m.group != "saliency")
SALIENCY_KEYS = tuple(m.key for m in _TABLE if m.group == "saliency")


def by_group(group: str) -> list[Metric]:
    return [m for m in _TABLE if m.group == group]


def judges() -> list[Metric]:
    """The perceptual judges of the minimal-attack benchmark, in report order."""
    return [m for m in _TABLE if m.judge]


def for_cost(cost: str, options: dict | None = None) -> str | None:
    """The metric key a cost (with its options) is measured by, if any (``lpips`` -> ``lpips_x1000``)."""
    for m in _TABLE:
        if m.cost == cost and all(m.options.get(k) == v for k, v in (options or {}).items()):
            return m.key
    return None


__all__ = ["KEYS", "METRICS", "Metric", "SALIENCY_KEYS", "by_group", "for_cost", "judges"]
