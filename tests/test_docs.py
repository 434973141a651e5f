"""The public API's docstring examples run (the fast ones; those that need ImageNet weights are marked
``+SKIP``), so the documentation cannot drift from the code."""

import doctest
import importlib

import pytest

MODULES = [
    "imperceptible.attacks.base", "imperceptible.attacks.human_perc_ot", "imperceptible.attacks.pgd_l2",
    "imperceptible.attacks.perc_al", "imperceptible.attacks.ppgd_lpa", "imperceptible.attacks.onestep",
    "imperceptible.attacks.adv_lib_peers", "imperceptible.costs.ssim", "imperceptible.costs.ssim_y",
    "imperceptible.costs.iqa", "imperceptible.costs.ciede2000", "imperceptible.costs.registry",
    "imperceptible.costs.lpips", "imperceptible.data.registry", "imperceptible.models.registry",
    "imperceptible.models.wrapper", "imperceptible.dro.algorithms", "imperceptible.dro.kmeans_cache",
    "imperceptible.fairness.tests", "imperceptible.runs.rundir",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    assert result.attempted > 0, f"{name} has no examples"
