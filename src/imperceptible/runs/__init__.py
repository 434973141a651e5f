"""Experiment runners that write a run directory (config, per-sample store, images, plots, report)."""
