"""The report's inference rules on small synthetic experiments (helpers in support/reports.py): lengths and
precisions read from run records (mixed ones refused, a matched reference used), fewer than 3 seeds never
deciding, every verdict naming its deciding condition, the sensitivity grid, C11 on unseen languages and the
messages for input that cannot give a number."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.report.build import build_report
from bench.report.claims import verdicts
from bench.report.compare import FEW_SEEDS, compare
from bench.report.data import load_report_data
from bench.report.plots import all_plots
from bench.report.verdict import decide, sensitivity
from bench.results import ResultStore
from support.reports import RESAMPLES, by_id, default_models, write_experiment


def write_records(name: str, lengths: dict[str, int], precision: dict[str, str] | None = None) -> None:
    """A run record beside every task file: model -> evaluation length (models not named: 512; BM25: none)."""
    folder = ResultStore(name).folder
    for run in folder.iterdir():
        if not run.is_dir():
            continue
        model = run.name.split("@")[0]
        for csv in run.glob("*.csv"):
            dataset, split, setting, langs = csv.stem.split("__")
            query_lang, doc_lang = langs.split("-")
            record = {"dataset": dataset, "split": split, "setting": setting, "query_lang": query_lang,
                      "doc_lang": doc_lang, "model_max_seq_length": None if model == "bm25" else
                      lengths.get(model, 512)}
            if precision and model in precision:
                record["precision"] = precision[model]
            csv.with_name(csv.stem + ".record.json").write_text(json.dumps(record))


def trained_at_128(models) -> dict[str, int]:
    return {m.name: 128 for m in models if m.trainer != "none"}


def test_lengths_come_from_the_records_and_mixed_lengths_are_refused():
    models = default_models()
    write_experiment("synthetic", models)
    write_records("synthetic", trained_at_128(models))
    data = load_report_data("synthetic")
    hybrid = "hybrid|0.5|me5-small|mlqa-r|"
    assert set(data.scores.loc[data.scores["group"] == hybrid, "eval_length"]) == {128.0}
    assert set(data.scores.loc[data.scores["group"] == "me5-small", "precision"]) == {"fp32"}  # no key: fp32
    refused = compare(data, hybrid, "me5-small", "scifact", "mono", "ndcg@10", n_resamples=RESAMPLES)
    assert not refused.tested and "different lengths" in refused.refused and "128" in refused.refused
    same = compare(data, hybrid, "mtl||me5-small|mlqa-r|", "scifact", "mono", "ndcg@10", n_resamples=RESAMPLES)
    assert same.tested
    beir = by_id(verdicts(data, n_resamples=RESAMPLES))["BEIR"]
    assert beir.verdict == "not testable here" and "me5-small-L128 is missing" in beir.reason


def test_a_matched_reference_scored_at_the_training_length_is_used():
    models = default_models()
    write_experiment("synthetic", models)
    # The cut run: its own run id (me5-small-L128), the same model name, scored on SciFact only.
    store = ResultStore("synthetic")
    cut = store.folder / "me5-small-L128"
    cut.mkdir()
    for path in (store.folder / "me5-small").glob("scifact*"):
        if path.suffix == ".csv":
            pd.read_csv(path).assign(run_id="me5-small-L128").to_csv(cut / path.name, index=False)
        else:
            pd.read_parquet(path).assign(run_id="me5-small-L128").to_parquet(cut / path.name)
    write_records("synthetic", {**trained_at_128(models), "me5-small-L128": 128})
    data = load_report_data("synthetic")
    assert "me5-small (untrained, cut to 128)" in set(data.groups["label"])
    beir = by_id(verdicts(data, n_resamples=RESAMPLES))["BEIR"]
    assert beir.comparisons and all(c.b == "me5-small-L128" and c.tested for c in beir.comparisons)
    assert "Matched reference: me5-small (untrained, cut to 128)" in beir.reason


def test_mixed_precisions_are_refused():
    models = default_models()
    write_experiment("synthetic", models)
    write_records("synthetic", {}, precision={"mtl-me5-small-mlqa-r-s1-10steps": "bf16"})
    data = load_report_data("synthetic")
    c = compare(data, "hybrid|0.5|me5-small|mlqa-r|", "mtl||me5-small|mlqa-r|", "scifact", "mono", "ndcg@10",
                n_resamples=RESAMPLES)
    assert not c.tested and "different precisions" in c.refused and "bf16/fp32" in c.refused


def test_fewer_than_three_seeds_are_shown_but_never_decide():
    models = [m for m in default_models(hybrid=0.15) if m.seed in (None, 1)]  # one checkpoint a strategy
    write_experiment("synthetic", models)
    results = by_id(verdicts(load_report_data("synthetic"), n_resamples=RESAMPLES))
    rq = results["RQ"]
    assert all(c.tested and c.p < 0.05 and not c.counts for c in rq.comparisons)  # clear, yet not counted
    assert all(c.condition() == FEW_SEEDS and np.isnan(c.p_holm) for c in rq.comparisons)
    assert rq.verdict == "inconclusive" and "no comparison may count" in rq.deciding
    assert results["C8"].verdict == "inconclusive"


def test_every_empirical_verdict_names_its_deciding_condition():
    write_experiment("synthetic", default_models(hybrid=0.15))
    results = verdicts(load_report_data("synthetic"), n_resamples=RESAMPLES)
    for v in results:
        if v.rule and v.comparisons:
            # C9 (not testable as stated) names it for its evidence on our base.
            text = v.replication if v.verdict == "not testable as stated" else v.reason
            assert "deciding condition: " in text and v.deciding, v.id


def test_sensitivity_marks_a_verdict_that_flips_at_another_threshold():
    # hybrid 0.007 better everywhere with little noise: decided at 0.005, below the threshold at 0.01.
    models = default_models(hybrid=0.007, mtl=0.0, mono=0.0, xy=0.0, hybrid_bias=1.0)
    for m in models:
        m.noise = 0.001
    write_experiment("synthetic", models)
    results = by_id(verdicts(load_report_data("synthetic"), n_resamples=RESAMPLES))
    rq = results["RQ"]
    assert rq.verdict == "hybrid better"
    assert decide(rq.comparisons, "answer", scale=2.0, other="mtl")[0] == "no detectable difference"
    table, flips = sensitivity([rq])
    assert any(f.startswith("RQ: hybrid better → no detectable difference at effect 0.01") for f in flips)
    assert "⚑ no detectable difference" in table[2]


def test_c11_compares_hybrid_with_the_baselines_on_unseen_languages():
    write_experiment("synthetic", default_models(hybrid=0.15))  # manifests: trained on en and de
    c11 = by_id(verdicts(load_report_data("synthetic"), n_resamples=RESAMPLES))["C11"]
    assert len(c11.comparisons) == 6  # X-X-mono and X-Y, three settings
    assert {c.scope for c in c11.comparisons} == {"unseen es"}
    assert {c.b.split("|")[0] for c in c11.comparisons} == {"xx-mono", "xy"}
    mono = next(c for c in c11.comparisons if c.setting == "mono")
    assert mono.n_units == 24  # es queries against es candidates only
    assert c11.verdict == "supported"


def test_a_one_point_alpha_curve_is_a_message_not_a_plot(tmp_path):
    # Without xy and xx-mono, which would be its ends (test_report.py: the alpha curve takes its ends ...).
    write_experiment("synthetic", [m for m in default_models() if m.trainer not in ("xy", "xx-mono")])
    data = load_report_data("synthetic")
    paths, notes = all_plots(data, tmp_path, n_resamples=100)
    assert not any("alpha_curve" in p.name for p in paths)
    assert any("only α = 0.5 has results, so there is no curve" in n for n in notes)
    readme = (build_report("synthetic", tmp_path / "r", n_resamples=100, log=lambda m: None) / "README.md")
    assert "So there is no curve" in readme.read_text() or "so there is no curve" in readme.read_text()


def test_report_wide_holm_is_at_least_the_family_holm():
    write_experiment("synthetic", default_models(hybrid=0.01))
    results = verdicts(load_report_data("synthetic"), n_resamples=RESAMPLES)
    pairs = [(c.p_holm, c.p_report) for v in results for c in v.comparisons if c.counts]
    assert pairs and all(report >= holm - 1e-12 for holm, report in pairs)
    assert not any(np.isnan(report) for _, report in pairs)


@pytest.fixture(autouse=True)
def _no_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_MODELS", str(tmp_path / "models"))


def test_an_mtl_that_saw_three_batches_a_step_is_named_so():
    write_experiment("synthetic", default_models())  # mtl manifests: 10 mono + 10 cross + 10 translation batches
    rq = by_id(verdicts(load_report_data("synthetic"), n_resamples=RESAMPLES))["RQ"]
    assert any("saw 3x hybrid's training pairs per optimiser step" in line and "3 times the training pairs" in line
               for line in rq.evidence)


def test_an_mtl_that_split_one_batch_between_its_tasks_is_not_flagged():
    from bench.report.claims_empirical import mtl_budget
    from tests.support.reports import manifest

    models = default_models()
    write_experiment("synthetic", models)
    data = load_report_data("synthetic")
    for model in [m for m in models if m.trainer == "mtl"]:
        record = manifest(model)  # 10 steps at batch 8: two half batches a step, as the same-budget mtl draws
        record["batches"] = {"counts": {"mono:mono": 10, "cross:cross": 10}, "pairs_per_step": {"mono": 4, "cross": 4}}
        data.manifests[next(k for k in data.manifests if k.startswith("mtl") and f"-s{model.seed}-" in k)] = record
    group = next(g for g in data.trained_groups()["group"] if g.startswith("mtl"))
    assert mtl_budget(data, group) == ""  # one 3x manifest left unpatched would make it non-empty


def test_difference_heatmap_cells_are_differences_of_seed_means():
    written = write_experiment("synthetic", default_models(hybrid=0.1))
    from bench.report.figures import pair_differences

    matrix = pair_differences(load_report_data("synthetic"), "hybrid|0.5|me5-small|mlqa-r|",
                              "xy||me5-small|mlqa-r|", "xquad-r")

    def mean(trainer: str, q: str, d: str) -> float:
        prefix = "hybrid-a0.5" if trainer == "hybrid" else trainer
        return np.mean([written[(f"{prefix}-me5-small-mlqa-r-s{s}-10steps", "xquad-r", "cross", q, d, "map")].mean()
                        for s in (1, 2, 3)])

    assert matrix.loc["en", "de"] == pytest.approx(mean("hybrid", "en", "de") - mean("xy", "en", "de"))
    assert np.isnan(matrix.loc["en", "en"]) and matrix.shape == (3, 3)


def test_loss_curves_are_per_objective_never_the_sum():
    models = default_models()
    write_experiment("synthetic", models)
    folder = ResultStore("synthetic").folder
    path = next(folder.glob("mtl-me5-small-mlqa-r-s1-*/training_manifest.json"))
    manifest = json.loads(path.read_text())
    manifest["loss_curve"] = [{"step": 1, "loss": 6.0, "mono": 2.0, "cross": 2.5, "translation": 1.0, "lid": 0.5}]
    path.write_text(json.dumps(manifest))
    from bench.report.figures import loss_frame

    frame = loss_frame(load_report_data("synthetic"))
    mtl = frame[frame["model"] == "mtl-me5-small-mlqa-r-s1-10steps"]
    assert dict(zip(mtl["objective"], mtl["loss"])) == {"mono": 2.0, "cross": 2.5, "translation": 1.0, "lid": 0.5}
    assert set(frame.loc[frame["trainer"] == "hybrid", "objective"]) == {"loss"}  # no parts logged: the loss


def test_a_strategy_whose_seeds_were_scored_at_different_lengths_is_not_pooled():
    models = default_models()
    write_experiment("synthetic", models)
    write_records("synthetic", {**trained_at_128(models), "hybrid-a0.5-me5-small-mlqa-r-s3-10steps": 512})
    data = load_report_data("synthetic")
    c = compare(data, "hybrid|0.5|me5-small|mlqa-r|", "mtl||me5-small|mlqa-r|", "scifact", "mono", "ndcg@10",
                n_resamples=RESAMPLES)
    assert not c.tested and "128/512 tokens" in c.refused
    from bench.report.lengths import setups

    assert setups(data).loc["hybrid|0.5|me5-small|mlqa-r|", "scifact"] == "128/512 tokens (mixed), fp32"
