"""The experiments, above the run-directory machinery: ``attack`` (one attack over a dataset),
``bench_attacks`` (every method, the paper's Tables 1, 2, 6), ``bench_minimal`` (the perceptual minimal-attack
benchmark), ``bench_onestep`` (Figures 3, 9), ``bench_ablation`` (Tables 3, 4) and ``fairness`` (section 4, a
package of its stages). Each has a config dataclass (:mod:`imperceptible.config` builds the command-line
options, the config record and the run fingerprint from it)."""
