"""Reports: paper tables, plots, statistics and claim verdicts from an experiment's tidy results."""
