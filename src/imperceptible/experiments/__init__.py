"""The experiments, one file each, above the run-directory machinery: ``attack`` (one attack over a
dataset), ``bench_attacks`` (every method, the paper's Tables 1, 2, 6), ``bench_onestep`` (Figures 3, 9),
``bench_ablation`` (Tables 3, 4), ``fairness_study`` (section 4). Each has a config dataclass (:mod:`imperceptible.config`
builds the command-line options, the config record and the run fingerprint from it)."""
