"""imperceptible: human-imperceptible adversarial attacks, their perceptual evaluation,
DRO adversarial training and group-fairness hypothesis tests.

Layers, imports only going downward (validation, costs, data, models, attacks, evaluate, dro, fairness, runs,
experiments, cli): the one architecture text is ``CONTRIBUTING.md``.
"""

__version__ = "0.4.0"


def __getattr__(name: str):
    """``imperceptible.polish``: the lattice stage as a post-process for any attack's output (imported on first use,
    so that ``import imperceptible`` stays light)."""
    if name == "polish":
        from .attacks.polish import polish

        return polish
    raise AttributeError(f"module 'imperceptible' has no attribute {name!r}")
