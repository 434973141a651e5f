"""The public API's docstring examples run, every module's, found by walking the package (``pytest
--doctest-modules src/imperceptible`` collects the same; those that need ImageNet weights are marked ``+SKIP``),
so the documentation cannot drift from the code."""

import doctest
import importlib

import pytest


def _modules_with_examples() -> list[str]:
    """Every module of the package whose docstrings hold an example (found, not listed by hand)."""
    import pkgutil

    import imperceptible

    finder = doctest.DocTestFinder()
    out = []
    for info in pkgutil.walk_packages(imperceptible.__path__, "imperceptible."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        if any(t.examples for t in finder.find(module)):
            out.append(info.name)
    return out


MODULES = _modules_with_examples()


def test_examples_are_found_in_enough_modules():
    assert len(MODULES) >= 20 and "imperceptible.attacks.human_perc_ot" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    assert result.attempted > 0, f"{name} has no examples"
