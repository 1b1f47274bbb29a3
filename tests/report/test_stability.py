"""The verdicts recomputed on part of the results: the first three seeds of every strategy, each training
direction alone; a verdict that differs on a part is marked and named."""

from dataclasses import replace

import pytest

from bench.report.claims import verdicts
from bench.report.data import load_report_data
from bench.report.stability import parts, stability, subset
from support.reports import Model, RESAMPLES, default_models, write_experiment


@pytest.fixture(autouse=True)
def _no_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_MODELS", str(tmp_path / "models"))


def four_seeds() -> list[Model]:
    models = default_models(hybrid=0.15, mtl=0.05)
    models += [Model("hybrid-a0.5-me5-small-mlqa-r-s4-10steps", "hybrid", 4, 0.5, 0.15, bias=0.5,
                     batches={"retrieval:mono": 5, "retrieval:cross": 5}),
               Model("mtl-me5-small-mlqa-r-s4-10steps", "mtl", 4, offset=0.05,
                     batches={"mono:mono": 10, "cross:cross": 10, "translation:cross": 10})]
    return models


def test_three_seeds_a_strategy_leave_nothing_to_recompute():
    write_experiment("synthetic", default_models())
    data = load_report_data("synthetic")
    assert parts(data) == []
    lines = stability(data, [], lambda part: pytest.fail("nothing to recompute"))
    assert "here at most 3 seeds a strategy and 1 direction (mlqa-r): nothing to recompute yet" in lines[0]


def test_the_first_three_seeds_are_a_part_and_a_clear_answer_holds_on_it():
    write_experiment("synthetic", four_seeds())
    data = load_report_data("synthetic")
    [part] = parts(data)
    assert part.name == "seeds 1, 2, 3"
    first = subset(data, part)
    hybrid = first.groups[first.groups["trainer"] == "hybrid"].iloc[0]
    assert hybrid["seeds"] == [1, 2, 3] and set(first.per_query["seed"].dropna()) == {1.0, 2.0, 3.0}
    assert set(data.per_query["seed"].dropna()) == {1.0, 2.0, 3.0, 4.0}  # the full data is untouched
    results = verdicts(data, n_resamples=RESAMPLES)
    lines = stability(data, results, lambda d: verdicts(d, n_resamples=RESAMPLES))
    assert "| RQ | hybrid better | hybrid better |" in lines
    assert lines[-1] == "Every verdict is the same on every part."


def test_each_training_direction_is_a_part_and_a_flip_is_named():
    models = default_models(hybrid=0.15, mtl=0.05)
    models += [Model(f"{m.name.replace('mlqa-r', 'xquad-r')}", m.trainer, m.seed, m.alpha, m.offset, m.bias,
                     train_data="xquad-r", batches=m.batches, datasets=("scifact",))
               for m in models if m.trainer in ("hybrid", "mtl")]
    write_experiment("synthetic", models)
    data = load_report_data("synthetic")
    assert [p.name for p in parts(data)] == ["trained on mlqa-r only", "trained on xquad-r only"]
    xquad = subset(data, parts(data)[1])
    assert set(xquad.trained_groups()["train_data"]) == {"xquad-r"}
    assert {"bm25", "me5-small"} <= set(xquad.groups["group"])  # the references stay

    results = verdicts(data, n_resamples=RESAMPLES)
    flipped = lambda part: [replace(v, verdict="inconclusive") if v.id == "C8" else v for v in results]  # noqa: E731
    lines = stability(data, results, flipped)
    c8 = next(line for line in lines if line.startswith("| C8 |"))
    assert c8 == "| C8 | supported | inconclusive ⚑ | inconclusive ⚑ |"
    assert "C8 on trained on mlqa-r only: inconclusive (all: supported)" in lines[-1]
