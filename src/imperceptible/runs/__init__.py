"""The run-directory machinery the experiments share: the directory contract and its lock and fingerprint,
the per-sample store, running one attack over a dataset into it, summaries, figures, image grids and the
HTML report."""
