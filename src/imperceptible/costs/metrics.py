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
    extra: str | None = None        # the pip extra (or system package) its cost needs, when not a core dependency
    threshold: float | None = None  # visibility threshold in stored units: below it, the judge predicts no one sees it
    threshold_source: str | None = None  # the sentence of the judge's documentation the threshold comes from, and where
    plot: bool = False              # drawn as box plots and CDFs in the attack reports


#: where each human-vision judge's visibility threshold comes from: the sentence quoted from its documentation, and
#: how the threshold in the table's stored units follows from it (values strictly below it: predicted not seen)
THRESHOLD_SOURCES = {
    "cvvdp_distance": (
        '"if method A produces a video with the quality score of 8 JOD and method B gives the quality score of 9 JOD, it '
        'means that 75% of the population will choose method B over A" (ColorVideoVDP README, "Predicted quality '
        'scores", cvvdp 0.5.7, https://github.com/gfxdisp/ColorVideoVDP, where 10 JOD is "The highest quality (no '
        'difference)"). Threshold 1 JOD below the reference: 75% choosing the reference, the classic two-alternative '
        'threshold (halfway between chance and certainty); stored 10 - JOD < 1.'),
    "flip": (
        "none: FLIP's paper and documentation (Andersson et al., HPG 2020; https://github.com/NVlabs/flip) define no "
        "visibility threshold for the mean error, so no share is reported for it."),
    "ssimulacra2_distance": (
        '"90 = visually lossless (impossible to distinguish from the original in a flicker test at 1:1)" (SSIMULACRA2\'s '
        'score interpretation, libjxl tools/ssimulacra2 README, https://github.com/cloudinary/ssimulacra2, printed by '
        'the ssimulacra2 0.3.0 package\'s --verbose). Stored 100 - score < 10.'),
    "butteraugli": (
        '"target max butteraugli distance, lower = higher quality. ... 1.0 = visually lossless." (libjxl, '
        'lib/include/jxl/encode.h, JxlEncoderSetFrameDistance, https://github.com/libjxl/libjxl); also "A diffvalue '
        'smaller than kButteraugliGood indicates that images can be observed as the same image" with kButteraugliGood '
        '= 1.0 (google/butteraugli, butteraugli.h). Max-norm distance < 1.'),
}

_TABLE = [
    Metric("l1", "L1", "distance", "l1", digits=3),
    Metric("l2", "L2", "distance", "l2", digits=4, plot=True),
    Metric("linf", "Linf", "distance", "linf", digits=4),
    Metric("ssim", "SSIM", "distance", None, digits=6),
    Metric("ssim_distance", "1-SSIM x1000", "distance", "ssim", show=1000.0, judge=True, exact=True, plot=True),
    Metric("ms_ssim_distance", "1-MS-SSIM x1000", "distance", "ms-ssim", show=1000.0, judge=True, exact=True, plot=True),
    Metric("ciede2000", "CIEDE2000 C2", "distance", "ciede2000", digits=2, judge=True, plot=True),
    Metric("lpips_x1000", "LPIPS x1000", "distance", "lpips", {"net": "alex"}, factor=1000.0, judge=True, learned=True,
           plot=True),
    Metric("lpips_vgg_x1000", "LPIPS-vgg x1000", "distance", "lpips", {"net": "vgg"}, factor=1000.0, judge=True,
           learned=True),
    Metric("dists_x1000", "DISTS x1000", "distance", "dists", factor=1000.0, judge=True, learned=True, plot=True),
    Metric("ssim_y_distance", "1-SSIM_Y x1000", "judge", "ssim-y", show=1000.0, judge=True, exact=True, plot=True),
    Metric("fsim_distance", "1-FSIM x1000", "judge", "fsim", show=1000.0, judge=True, exact=True, plot=True),
    Metric("gmsd", "GMSD x1000", "judge", "gmsd", show=1000.0, digits=2, judge=True, exact=True),
    Metric("vsi_distance", "1-VSI x1000", "judge", "vsi", show=1000.0, judge=True, exact=True),
    Metric("haarpsi_distance", "1-HaarPSI x1000", "judge", "haarpsi", show=1000.0, digits=2, judge=True, exact=True),
    # models of human vision (costs/vision.py; extra `vision`, butteraugli from Debian's libjxl-devtools)
    Metric("cvvdp_distance", "ColorVideoVDP 10-JOD x1000", "judge", "cvvdp", show=1000.0, digits=2, judge=True,
           extra="vision", threshold=1.0, threshold_source=THRESHOLD_SOURCES["cvvdp_distance"], plot=True),
    Metric("flip", "FLIP x1000", "judge", "flip", show=1000.0, digits=2, judge=True, extra="vision",
           threshold_source=THRESHOLD_SOURCES["flip"]),
    Metric("ssimulacra2_distance", "100-SSIMULACRA2", "judge", "ssimulacra2", digits=2, judge=True, extra="vision",
           threshold=10.0, threshold_source=THRESHOLD_SOURCES["ssimulacra2_distance"]),
    Metric("butteraugli", "butteraugli (max-norm)", "judge", "butteraugli", digits=3, judge=True,
           extra="libjxl-devtools", threshold=1.0, threshold_source=THRESHOLD_SOURCES["butteraugli"], plot=True),
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


def thresholds() -> dict[str, float]:
    """Each judge's visibility threshold in stored units, for the judges that have one (see :data:`THRESHOLD_SOURCES`).

    Examples:
        >>> from imperceptible.costs.metrics import thresholds
        >>> thresholds()["ssimulacra2_distance"], "flip" in thresholds()
        (10.0, False)
    """
    return {m.key: m.threshold for m in _TABLE if m.threshold is not None}


def for_cost(cost: str, options: dict | None = None) -> str | None:
    """The metric key a cost (with its options) is measured by, if any (``lpips`` -> ``lpips_x1000``)."""
    for m in _TABLE:
        if m.cost == cost and all(m.options.get(k) == v for k, v in (options or {}).items()):
            return m.key
    return None


__all__ = ["KEYS", "METRICS", "Metric", "SALIENCY_KEYS", "THRESHOLD_SOURCES", "by_group", "for_cost", "judges",
           "thresholds"]
