"""bench/perf/budget.py: the token-budget section of `bench perf`, on the tiny model."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from bench.perf.budget import print_budget, token_budget
from bench.perf.options import SECTIONS, PerfOptions
from bench.retrieval.dense.batching import TOKENS_PER_ROW
from bench.retrieval.dense.encode import DenseEncoder
from bench.models.registry import resolve_model

TEXTS = [" ".join(["word"] * n) + f" number {n}" for n in (3, 40, 7, 90, 15, 60, 2, 120)] * 4


def test_tokens_per_row_sets_the_budget_and_leaves_vectors_alone(tiny_model_dir):
    encoder = DenseEncoder(resolve_model(str(tiny_model_dir)), batch_size=4, cache=False)
    assert encoder.tokens_per_row == TOKENS_PER_ROW
    wide = encoder.embed(TEXTS, "document")
    wide_batches = encoder.stats.batches
    encoder.tokens_per_row = 8  # 32 padded tokens a batch: the long texts go one per batch
    narrow = encoder.embed(TEXTS, "document")
    assert encoder.stats.batches - wide_batches > wide_batches
    np.testing.assert_allclose(narrow, wide, atol=1e-5)


def test_budget_section_times_every_budget_in_every_precision(tiny_model_dir, monkeypatch):
    import bench.models.registry as registry

    real = registry.resolve_model
    monkeypatch.setattr(registry, "resolve_model", lambda name: real(str(tiny_model_dir)) if name == "tiny" else
                        real(name))
    options = PerfOptions(e2e_model="tiny", budgets=(8, 64), reps=2, batch_size=4, precisions=("fp32",),
                          sections=("budget",))
    lines: list[str] = []
    rows = token_budget(options, TEXTS, lines.append)
    assert [(r["precision"], r["tokens_per_row"]) for r in rows] == [("fp32", 8), ("fp32", 64)]
    assert all(len(r["seconds_per_rep"]) == 2 and r["seconds"] > 0 and r["passages"] == len(TEXTS) for r in rows)
    assert rows[0]["batches"] > rows[1]["batches"]  # the smaller budget cuts more batches
    assert min(r["relative_to_fastest"] for r in rows) == 1.0
    assert not any(r["default"] for r in rows)  # neither is TOKENS_PER_ROW
    print_budget(rows, lines.append)
    assert any("tokens/row" in line for line in lines)


def test_budget_is_opt_in_and_named_on_the_command_line(monkeypatch):
    import bench.perf as perf

    assert "budget" in SECTIONS and not PerfOptions().runs("budget")
    seen = []
    monkeypatch.setattr(perf, "run_perf", lambda options, log=print: seen.append(options) or ({}, {}))
    parser = argparse.ArgumentParser()
    perf.add_perf_parser(parser.add_subparsers())
    args = parser.parse_args(["perf", "--section", "budget", "--budgets", "96", "128", "96"])
    assert args.func(args) == 0
    assert seen[0].runs("budget") and seen[0].budgets == (96, 128) and not seen[0].runs("e2e")
    with pytest.raises(ValueError, match="at least 1 token"):
        PerfOptions(budgets=(0,))
