"""How often a perturbation is predicted not to be seen: the share of images whose judge value lies below the judge's
visibility threshold, with a percentile-bootstrap interval.

The human-vision judges (:mod:`imperceptible.costs.vision`) come with a documented point below which their authors say
a difference is not seen (1 JOD below the reference for ColorVideoVDP, SSIMULACRA2's "visually lossless" 90,
butteraugli's 1.0); :data:`~imperceptible.costs.metrics.THRESHOLD_SOURCES` quotes each sentence and
:func:`~imperceptible.costs.metrics.thresholds` gives the thresholds in the table's stored units. A value strictly
below its threshold is "predicted not visible". NaN and infinite values (an image the attack did not fool, a judge
that could not score it) are "not applicable": left out, and counted.

The interval is the percentile bootstrap (Efron and Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13):
``n_boot`` resamples of the images with replacement, the share in each, and the 2.5th and 97.5th percentiles of
those shares (numpy's linear interpolation, as ``scipy.stats.bootstrap(method="percentile")`` takes them). Beside it,
the exact binomial interval (Clopper and Pearson 1934; scipy's ``binomtest(...).proportion_ci(method="exact")``), which
does not collapse to one point when every image lies on one side of the threshold (17 of 17: the bootstrap gives
[1, 1], the exact interval [0.80, 1]).
With ``N_BOOT = 10000`` resamples the Monte-Carlo standard error of each end is about 0.001 for a share near 0.5
of 300 images (the error of a 2.5th percentile of 10,000 draws).

Examples:
    >>> import numpy as np
    >>> from imperceptible.evaluate.visibility import visibility
    >>> v = visibility(np.array([0.2, 0.5, 1.5, np.inf, 0.9]), 1.0, random_state=0)
    >>> v.share, v.used, v.total
    (0.75, 4, 5)
    >>> 0.0 <= v.low <= v.share <= v.high <= 1.0
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from ..costs.metrics import METRICS, THRESHOLD_SOURCES, thresholds
from ..errors import MSG_VISIBILITY_THRESHOLD, ParameterError
from ..validation import check_number, check_positive

#: bootstrap resamples (see the module docstring)
N_BOOT = 10_000
#: the interval's coverage
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Visibility:
    """The share of images predicted not visible, its percentile-bootstrap interval, and how many images it rests on."""

    share: float          # share of the used images whose value is below the threshold (NaN when none is used)
    low: float            # the interval's lower end (NaN when none is used)
    high: float           # the interval's upper end
    used: int             # images with a finite value
    total: int            # images given
    threshold: float
    confidence: float
    n_boot: int
    exact_low: float = float("nan")   # the exact (Clopper-Pearson) interval at the same confidence
    exact_high: float = float("nan")

    def as_dict(self) -> dict:
        return asdict(self)


def visibility(values, threshold: float, *, n_boot: int = N_BOOT, confidence: float = CONFIDENCE,
               random_state: int | np.random.Generator | None = 0, name: str = "threshold") -> Visibility:
    """The share of ``values`` strictly below ``threshold`` among the finite ones, with a percentile-bootstrap
    ``confidence`` interval from ``n_boot`` resamples drawn by ``np.random.default_rng(random_state)``.

    ``name`` names the threshold in the error a non-finite one raises. With no finite value the share and interval
    are NaN (nothing is invented); with one, or with all values on one side, the bootstrap interval is that single
    share (the exact interval, ``exact_low`` and ``exact_high``, is not).
    """
    thr = float(threshold)
    if not np.isfinite(thr):
        raise ParameterError.of(MSG_VISIBILITY_THRESHOLD, name=name, got=threshold)
    n_boot = int(check_positive("n_boot", n_boot))
    check_number("confidence", confidence, low=0, high=1, low_open=True, high_open=True)
    v = np.asarray(values, dtype=float).reshape(-1)
    finite = v[np.isfinite(v)]
    below = (finite < thr).astype(float)
    n = below.size
    if n == 0:
        return Visibility(float("nan"), float("nan"), float("nan"), 0, v.size, thr, confidence, n_boot)
    rng = np.random.default_rng(random_state)
    shares = below[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.percentile(shares, [100 * alpha, 100 * (1 - alpha)])
    return Visibility(float(below.mean()), float(low), float(high), n, v.size, thr, confidence, n_boot,
                      *exact_interval(int(below.sum()), n, confidence))


def exact_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact binomial (Clopper-Pearson) interval of ``k`` successes in ``n`` (scipy's ``binomtest``)."""
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def visibility_by_judge(values: Mapping[str, object], *, n_boot: int = N_BOOT, confidence: float = CONFIDENCE,
                        random_state: int | np.random.Generator | None = 0) -> dict[str, dict]:
    """:func:`visibility` for every metric key in ``values`` whose judge has a threshold in the metric table, each
    with its threshold's quoted source; keys without one (FLIP, the structural and deep judges) are left out.

    Examples:
        >>> from imperceptible.evaluate.visibility import visibility_by_judge
        >>> out = visibility_by_judge({"butteraugli": [0.5, 2.0], "flip": [0.01, 0.02]})
        >>> list(out), out["butteraugli"]["share"], out["butteraugli"]["threshold"]
        (['butteraugli'], 0.5, 1.0)
    """
    limits = thresholds()
    out = {}
    for key, vals in values.items():
        if key not in limits:
            continue
        res = visibility(vals, limits[key], n_boot=n_boot, confidence=confidence, random_state=random_state,
                         name=f"{key} threshold")
        out[key] = dict(res.as_dict(), label=METRICS[key].label, source=THRESHOLD_SOURCES[key])
    return out


__all__ = ["CONFIDENCE", "N_BOOT", "Visibility", "exact_interval", "visibility", "visibility_by_judge"]
