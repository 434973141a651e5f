"""Quality per pass: how many passes ours needs to reach the perceptibility a peer reaches at the whole budget.

An attack's *anytime curve* on a judge is the median, over the attacked images, of the judge's value of the best
adversarial the attack had queried within ``c`` passes, at the checkpoints ``c`` of a run (an image not fooled yet
counts as infinitely perceptible, so the curve only falls; :mod:`imperceptible.attacks.anytime`). For a peer's median
at the budget ``B`` (the target), :func:`passes_to_reach` reads off the passes at which ours' curve first reaches
it, interpolating linearly in ``log passes`` against ``log median`` between the two checkpoints around the crossing
(both curves fall roughly as powers of the passes). The *pass ratio* ``B / passes`` says how many times fewer passes
ours needs for the same median perceptibility (issue 34, item 4). The checkpoints are coarse (for a 200-pass run 25,
50, 100, 200), so the crossing is an estimate; where ours is already at or below the target at its first checkpoint
the passes are an upper bound (``"at most"``), and where ours never reaches it within ``B`` a lower bound (``"more
than"``, a ratio below 1). A peer's target is read at its run's budget only: FMN anneals its steps, C&W splits its
iterations into searches and ours decays its step over the budget, so a 1000-pass run's median at 200 passes is not
what the attack reaches with a budget of 200 (for that, a 200-pass run).

Examples:
    >>> r = passes_to_reach([25, 50, 100, 200], [4.0, 2.0, 1.0, 0.5], target=1.0)
    >>> r["passes"], r["bound"]
    (100.0, 'exact')
    >>> round(passes_to_reach([25, 50, 100, 200], [4.0, 2.0, 1.0, 0.5], target=1.5)["passes"], 1)
    66.7
    >>> passes_to_reach([25, 50], [None, 3.0], target=1.0)["bound"]
    'more than'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..errors import MSG_PARAM, ParameterError

#: the three kinds of answer of :func:`passes_to_reach`
EXACT, AT_MOST, MORE_THAN = "exact", "at most", "more than"
#: what each kind of answer makes of the ratio budget / passes
RATIO_BOUND = {EXACT: "exact", AT_MOST: "at least", MORE_THAN: "less than"}


def passes_to_reach(checkpoints: Sequence[int], medians: Sequence[float | None], target: float | None) -> dict:
    """The passes at which the curve ``medians`` (one per checkpoint; ``None`` where more than half the images were
    not fooled yet) first reaches ``target`` (module docstring): ``{"passes", "bound"}``, ``bound`` one of
    ``"exact"`` (interpolated between two checkpoints or at one), ``"at most"`` (reached at the first checkpoint, or
    after one the curve was not yet defined at) and ``"more than"`` (not reached: ``passes`` is the last checkpoint);
    ``None`` passes where the target itself is undefined."""
    cs = [int(c) for c in checkpoints]
    if (len(cs) != len(medians) or not cs or cs != sorted(set(cs)) or cs[0] <= 0
            or any(c != float(v) for c, v in zip(cs, checkpoints))):
        raise ParameterError.of(MSG_PARAM, name="checkpoints", expected="increasing positive pass counts, one per median",
                                got=f"{list(checkpoints)} with {len(medians)} medians")
    if target is None or not math.isfinite(target):
        return {"passes": None, "bound": None}
    m = [math.inf if v is None else float(v) for v in medians]
    hit = next((i for i, v in enumerate(m) if v <= target), None)
    if hit is None:
        return {"passes": float(cs[-1]), "bound": MORE_THAN}
    if hit == 0:
        return {"passes": float(cs[0]), "bound": AT_MOST}
    before, at = m[hit - 1], m[hit]
    if not math.isfinite(before) or at <= 0 or target <= 0:  # no log-log line through the crossing
        return {"passes": float(cs[hit]), "bound": AT_MOST}
    if at == target:
        return {"passes": float(cs[hit]), "bound": EXACT}
    t = (math.log(before) - math.log(target)) / (math.log(before) - math.log(at))
    return {"passes": math.exp(math.log(cs[hit - 1]) + t * (math.log(cs[hit]) - math.log(cs[hit - 1]))),
            "bound": EXACT}


def pass_ratios(anytime: Mapping[str, Mapping[str, Mapping[str, float | None]]], ours: str, peers: Sequence[str],
                keys: Sequence[str], budget: int) -> dict:
    """Per judge ``key`` and peer: the peer's median at ``budget`` (the target), the passes ours needs to reach it
    (:func:`passes_to_reach` on ours' curve), ``ratio = budget / passes`` and ``ratio_bound``: ``"exact"``, ``"at
    least"`` (the passes were an upper bound) or ``"less than"`` (ours did not reach it). ``anytime`` is a summary's
    ``{method: {str(checkpoint): {key: median}}}``, holding ``budget`` as its last checkpoint."""
    if ours not in anytime:
        return {}
    cs = sorted(int(c) for c in anytime[ours])
    if not cs or cs[-1] != budget:
        raise ParameterError.of(MSG_PARAM, name="anytime", expected=f"checkpoints ending at the budget {budget}",
                                got=cs)
    out: dict[str, dict] = {}
    for k in keys:
        curve = [anytime[ours][str(c)].get(k) for c in cs]
        row = {}
        for p in peers:
            if p not in anytime or str(budget) not in anytime[p]:
                continue
            target = anytime[p][str(budget)].get(k)
            r = passes_to_reach(cs, curve, target)
            ratio = budget / r["passes"] if r["passes"] else None
            row[p] = {"target": target, **r, "ratio": ratio, "ratio_bound": RATIO_BOUND.get(r["bound"])}
        out[k] = row
    return out


__all__ = ["AT_MOST", "EXACT", "MORE_THAN", "RATIO_BOUND", "pass_ratios", "passes_to_reach"]
