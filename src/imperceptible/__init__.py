"""imperceptible: human-imperceptible adversarial attacks, their perceptual evaluation,
DRO adversarial training and group-fairness hypothesis tests.

Layers, imports only going downward (validation, costs, data, models, attacks, evaluate, dro, fairness, runs,
experiments, cli): the one architecture text is ``CONTRIBUTING.md``.
"""

__version__ = "0.3.0"
