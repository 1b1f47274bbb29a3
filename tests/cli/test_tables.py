"""Result tables for `run` and `show`: on a terminal the text table wraps its run columns to the width; piped,
it stays one table that grep and awk can read."""

import os
import sys

import pandas as pd

from bench.cli.tables import format_table


def wide_table() -> pd.DataFrame:
    runs = [f"hybrid-a0.5-me5-small-mlqa-r-s{seed}-300steps-bf16@abcdef0{seed}+bf16" for seed in (1, 2, 3)]
    index = pd.MultiIndex.from_tuples([("scifact", "ndcg@10"), ("scifact", "recall@100")], names=["dataset", "metric"])
    return pd.DataFrame([[0.61, 0.60, 0.62], [0.89, 0.88, 0.90]], index=index, columns=runs)


def test_piped_text_is_one_table(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    lines = format_table(wide_table(), "text", 4).splitlines()
    assert len(lines) == 4 and all(name in lines[0] for name in wide_table().columns)


def test_terminal_text_wraps_to_its_width(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr("shutil.get_terminal_size", lambda *a, **k: os.terminal_size((100, 40)))
    text = format_table(wide_table(), "text", 4)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert all(name in text for name in wide_table().columns) and text.count("0.6100") == 1
