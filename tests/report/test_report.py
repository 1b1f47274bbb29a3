"""`python -m bench report`: tables equal hand-computed macro means, verdicts follow the data, files are written,
LaTeX is well formed, and missing data is reported rather than fatal. A small synthetic experiment (3 XQuAD-R
languages, 24 parallel questions, SciFact) is written into the per-test BENCH_RESULTS."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.report.build import build_report
from bench.report.missing import missing_cells, missing_section
from bench.report.claims import verdicts
from bench.report.data import load_report_data
from bench.report.tables import all_tables, lareqa_summary_table, to_latex
from bench.results import ResultStore
from support.reports import LANGS, Model, RESAMPLES, by_id, default_models, write_experiment















@pytest.fixture(autouse=True)
def _no_checkpoints(tmp_path, monkeypatch):
    # Manifests are read from the results; the checkpoint fallback must not find the project's models/.
    monkeypatch.setenv("BENCH_MODELS", str(tmp_path / "models"))




# ------------------------------------------------------------------------------------------------ tables


def test_table1_cells_are_hand_computed_macro_means_over_seeds():
    written = write_experiment("synthetic", default_models())
    data = load_report_data("synthetic")
    table = lareqa_summary_table(data, "table1_map", "Table 1", {s: "map" for s in ("mono", "cross", "multi")})
    rows = {row[0]: row for row in table.rows if row[2] == "ours"}
    col = table.columns.index("XQuAD-R cross mAP")

    def macro(model: str) -> float:
        # The mean over the 6 ordered pairs of the mean over questions.
        return np.mean([written[(model, "xquad-r", "cross", q, d, "map")].mean()
                        for q in LANGS for d in LANGS if q != d])

    seeds = [macro(f"hybrid-a0.5-me5-small-mlqa-r-s{s}-10steps") for s in (1, 2, 3)]
    assert rows["hybrid α=0.5"][col] == f"{np.mean(seeds):.4f} ± {np.std(seeds, ddof=1):.4f}"
    assert rows["hybrid α=0.5"][3] == "3"
    assert rows["bm25"][col] == f"{macro('bm25'):.4f}"
    # The paper's reported 'mean' rows sit beside ours, labelled with their base models.
    paper = [row for row in table.rows if row[2] == "paper"]
    assert {row[1] for row in paper} == {"XLM-R", "LaBSE"}
    assert any(row[0] == "hybrid" and row[1] == "XLM-R" and row[col] == "0.7053" for row in paper)


def test_latex_is_well_formed():
    write_experiment("synthetic", default_models())
    for table in all_tables(load_report_data("synthetic")):
        tex = to_latex(table)
        body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0]
        assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
        assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
        spec = re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex).group(1)
        header = tex.split(r"\toprule")[1].split(r"\midrule")[0]
        for line in [header, *body.strip().splitlines()]:
            assert line.count("&") == len(spec) - 1, (table.name, line)
            assert line.rstrip().endswith(r"\\")
        assert not re.search(r"(?<!\\)[_%#]", body), table.name  # escaped
        assert tex.count("{") == tex.count("}") and "±" not in tex and "α" not in tex


def test_a_partial_model_is_marked_and_listed():
    models = default_models()
    models[-1].drop_pairs = (("en", "de"), ("de", "es"))
    write_experiment("synthetic", models)
    data = load_report_data("synthetic")
    table = lareqa_summary_table(data, "t", "t", {"cross": "map"})
    xy = next(row for row in table.rows if row[0] == "xy")
    assert xy[table.columns.index("XQuAD-R cross mAP")].endswith("†")
    assert any("partial" in note for note in table.notes)
    missing = missing_section(data)
    assert "- xy: XQuAD-R cross map, 4 of 6 pairs" in missing


# ------------------------------------------------------------------------------------------------ claims


def test_hybrid_clearly_better_supports_the_claims_and_answers_the_question():
    write_experiment("synthetic", default_models(hybrid=0.15, mtl=0.05, mono=0.0, xy=0.0))
    results = by_id(verdicts(load_report_data("synthetic"), n_resamples=RESAMPLES))
    assert results["RQ"].verdict == "hybrid better"
    assert len(results["RQ"].comparisons) == 4  # XQuAD-R mono, cross, multi and SciFact
    assert all(c.p_holm < 0.05 and c.difference == pytest.approx(0.10, abs=0.02) for c in results["RQ"].comparisons)
    assert results["C8"].verdict == "supported"
    # C9 names XLM-R and LaBSE: not testable as stated, our me5-small evidence beside it.
    assert results["C9"].verdict == "not testable as stated"
    assert results["C9"].replication.startswith("evidence on me5-small (another base): supported")
    assert results["C10"].verdict == "supported"  # rank distance halved
    assert results["C11"].verdict == "supported"  # hybrid above the untrained base in every language


def test_equal_strategies_are_inconclusive():
    models = default_models(hybrid=0.0, mtl=0.0, mono=0.0, xy=0.0, hybrid_bias=1.0)
    for model in models:
        model.noise = 0.0  # identical per-query scores
    write_experiment("synthetic", models)
    results = by_id(verdicts(load_report_data("synthetic"), n_resamples=RESAMPLES))
    assert results["RQ"].verdict == "no detectable difference"
    assert all(c.p == 1.0 for c in results["RQ"].comparisons)
    for claim in ("C8", "C10"):
        assert results[claim].verdict == "inconclusive", claim
        assert results[claim].deciding == "not significant (3)" if claim == "C8" else "not significant (1)"


def test_hybrid_clearly_worse_refutes():
    write_experiment("synthetic", default_models(hybrid=-0.2, mtl=0.0, mono=0.0, xy=0.0, hybrid_bias=1.5))
    results = by_id(verdicts(load_report_data("synthetic"), n_resamples=RESAMPLES))
    assert results["RQ"].verdict == "mtl better"
    assert results["C8"].verdict == results["C10"].verdict == "refuted"
    assert results["C8"].deciding.startswith("decided")
    assert "evidence on me5-small (another base): refuted" in results["C9"].replication


def test_protocol_method_and_isolation_claims_follow_the_data():
    write_experiment("synthetic", default_models(), definition={
        "name": "synthetic", "base_models": ["me5-small"], "references": ["bm25", "me5-small"],
        "evaluation": {"lareqa": {"langs": list(LANGS)}, "beir": {"datasets": ["scifact"]}},
        "stages": [{"trainers": ["hybrid", "mtl"], "seeds": [1, 2, 3], "train_data": ["mlqa-r"]}]})
    results = by_id(verdicts(load_report_data("synthetic"), n_resamples=RESAMPLES))
    assert results["C1"].verdict == "supported"
    assert results["C2"].replication.startswith("inconclusive") and "MIRACL" in results["C2"].reason
    assert results["C3"].verdict == "inconclusive" and "evaluates only en, de, es" in results["C3"].reason
    assert results["C7"].verdict == "inconclusive" and "6 ordered cross pairs" in results["C7"].reason
    # C2, C4, C5, C6 speak of the paper: not testable as stated, with this replication's verdict beside them.
    for claim in ("C2", "C4", "C5", "C6"):
        assert results[claim].verdict == "not testable as stated" and results[claim].about_paper, claim
    for claim in ("C4", "C5", "C6"):
        assert results[claim].replication.startswith("supported"), claim
    assert "MIRACL and Mr.TyDi train splits" in results["C5"].reason


def test_one_kind_of_batch_leakage_and_scoring_on_the_training_set_refute():
    models = default_models()
    models[2].batches = {"retrieval:mono": 10}       # a hybrid run that never drew a cross batch
    models[3].leaked = 50                             # 10% of XQuAD-R's candidates seen in training
    models[-1].train_data = "xquad-r"                 # scored on its own training set
    write_experiment("synthetic", models)
    results = by_id(verdicts(load_report_data("synthetic"), n_resamples=RESAMPLES))
    assert results["C1"].verdict == "refuted"
    assert results["C5"].replication.startswith("refuted") and "10.00%" in results["C5"].reason
    assert results["C4"].replication.startswith("refuted") and "xy-me5-small" in results["C4"].reason


def test_text_overlap_alone_makes_the_sets_not_separate():
    models = default_models()
    models[3].leaked = 50
    write_experiment("synthetic", models)
    c4 = by_id(verdicts(load_report_data("synthetic"), n_resamples=RESAMPLES))["C4"]
    assert c4.replication.startswith("refuted") and "distinct by name but overlap in text" in c4.reason


def test_references_only_is_not_testable_rather_than_an_error():
    write_experiment("refs", default_models()[:2])
    results = by_id(verdicts(load_report_data("refs"), n_resamples=RESAMPLES))
    assert results["RQ"].verdict == "not testable here"
    for claim in ("C1", "C8", "C10", "C11"):
        assert results[claim].verdict == "not testable here", claim
    for claim in ("C4", "C5"):
        assert results[claim].replication.startswith("not testable here"), claim
    assert results["C9"].verdict == "not testable as stated"
    assert results["C6"].replication.startswith("supported")


# ------------------------------------------------------------------------------------------------ report


def test_report_command_writes_the_answer_first_tables_plots_and_claims(tmp_path, capsys):
    models = default_models()
    models.append(Model("hybrid-a0.25-me5-small-mlqa-r-s1-10steps", "hybrid", 1, 0.25, 0.1,
                        batches={"retrieval:mono": 3, "retrieval:cross": 7}))
    write_experiment("synthetic", models, definition={
        "name": "synthetic", "base_models": ["me5-small"], "references": ["bm25", "me5-small"],
        "training": {"steps": 10}, "evaluation": {"lareqa": {"langs": list(LANGS)}, "beir": {"datasets": ["scifact"]}},
        "stages": [{"trainers": ["hybrid", "mtl"], "seeds": [1, 2, 3, 4], "train_data": ["mlqa-r"]}],
        "notes": ["Trained on a lent  GPU,\n five processes."]})
    folder = ResultStore("synthetic").folder
    for run in folder.iterdir():  # run records name the hardware that encoded
        if run.is_dir():
            record = {"machine": {"processor": "AMD EPYC"}} if run.name == "bm25" else {"model_device_name": "H200"}
            (run / "scifact__test__mono__en-en.record.json").write_text(json.dumps(record))
    out = tmp_path / "report"
    assert main(["report", "synthetic", "--out", str(out), "--resamples", str(RESAMPLES)]) == 0
    readme = (out / "README.md").read_text()
    assert readme.index("## Answer") < readme.index("## Tables") < readme.index("## Plots") \
        < readme.index("## What differs from the paper") < readme.index("## Missing and partial")
    assert "**Hybrid better.**" in readme
    # Seed 4 is in the experiment file but has no results.
    assert "hybrid α=0.5, me5-small, trained on mlqa-r, seed 4: no results at all" in readme
    assert "mtl, me5-small, trained on mlqa-r, seed 4: no results at all" in readme
    trained = sum(m.trainer != "none" for m in models)
    assert f"| Hardware | see the paper | training: not recorded ({trained}) checkpoints; scoring: AMD EPYC (1), " \
        f"H200 ({len(models) - 1}) models |" in readme
    assert "- Trained on a lent GPU, five processes." in readme
    claims = (out / "claims.md").read_text()
    assert all(f"## C{i}:" in claims for i in range(1, 12))
    for name in ("forest_hybrid_differences", "bars_xquad-r_map", "bars_beir_ndcg10", "heatmap_xquad-r_cross_map",
                 "difference_heatmap_xquad-r_cross", "rank_distance_xquad-r", "alpha_curve_me5-small_mlqa-r",
                 "loss_curves"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000, name
        assert f"plots/{name}.png" in readme
    for name in ("table1_map", "table2_rank_distance", "table_beir", "per_language_xquad-r_cross_map"):
        assert (out / "tables" / f"{name}.md").is_file() and (out / "tables" / f"{name}.tex").is_file()
    frame = pd.read_csv(out / "comparisons.csv")
    assert set(frame["claim"]) >= {"RQ", "C8", "C9", "C10", "C11"}


def test_missing_cells_from_the_experiment_file():
    write_experiment("synthetic", default_models(), definition={
        "name": "synthetic", "references": ["bm25", "me5-small"], "base_models": ["me5-small"],
        "evaluation": {"lareqa": {}, "beir": {"datasets": ["scifact", "nfcorpus"]}},
        "stages": [{"trainers": ["hybrid", "x-x"], "seeds": [1], "train_data": ["mlqa-r"]}]})
    missing = missing_cells(load_report_data("synthetic"))
    assert "x-x, me5-small, trained on mlqa-r, seed 1: no results at all" in missing
    assert any(m.startswith("hybrid α=0.5, me5-small, trained on mlqa-r, seed 1: no results on NFCorpus")
               for m in missing)
    assert any(m.startswith("bm25 (reference): no results on NFCorpus") for m in missing)


def test_progress_by_stage_collapses_the_seeds_that_lack_the_same():
    write_experiment("synthetic", default_models(), definition={
        "name": "synthetic", "references": ["bm25"], "base_models": ["me5-small"],
        "evaluation": {"lareqa": {}, "beir": {"datasets": ["scifact"]}},
        "stages": [{"name": "one", "trainers": ["hybrid", "x-x"], "seeds": [1], "train_data": ["mlqa-r"]},
                   {"name": "two", "trainers": ["x-x"], "seeds": [2, 3], "train_data": ["mlqa-r"]}]})
    lines = missing_section(load_report_data("synthetic"))
    assert "| one | 2 | 1 | 0 | 1 |" in lines and "| two | 2 | 0 | 0 | 2 |" in lines  # hybrid s1 is complete
    assert "| references | 1 | 1 | 0 | 0 |" in lines
    assert lines[lines.index("two:") + 2] == "- x-x, me5-small, trained on mlqa-r, seeds 2, 3: no results at all"
    assert "- x-x, me5-small, trained on mlqa-r, seed 1: no results at all" in lines


def _rename_run(store, old: str, new: str) -> None:
    """Move a stored run to another run id, as the same model scored in another precision would be stored."""
    import shutil

    for path in (store.folder / old).iterdir():
        target = store.folder / new / path.name
        target.parent.mkdir(exist_ok=True)
        if path.suffix == ".csv":
            pd.read_csv(path).assign(run_id=new).to_csv(target, index=False)
        elif path.suffix == ".parquet":
            pd.read_parquet(path).assign(run_id=new).to_parquet(target)
    shutil.rmtree(store.folder / old)


@pytest.mark.parametrize("precision, missing_reference", [("bf16", False), ("fp32", True)])
def test_a_reference_counts_under_the_run_id_of_the_experiments_precision(precision, missing_reference):
    definition = {"name": "synthetic", "references": ["me5-small"], "base_models": ["me5-small"],
                  "precision": precision, "evaluation": {"lareqa": {}, "beir": {"datasets": ["scifact"]}},
                  "stages": [{"trainers": ["hybrid"], "seeds": [1], "train_data": ["mlqa-r"]}]}
    write_experiment("synthetic", default_models()[:2], definition=definition)
    _rename_run(ResultStore("synthetic"), "me5-small", "me5-small+bf16")
    missing = missing_cells(load_report_data("synthetic"))
    assert any(m.startswith("me5-small (reference)") for m in missing) is missing_reference


def test_a_numerics_variant_is_reported_beside_the_fp32_run():
    models = default_models()[:2]
    write_experiment("synthetic", models)
    store = ResultStore("synthetic")
    for path in (store.folder / "me5-small").iterdir():  # the same model encoded in int8
        target = store.folder / "me5-small+int8" / path.name
        target.parent.mkdir(exist_ok=True)
        if path.suffix == ".csv":
            frame = pd.read_csv(path).assign(run_id="me5-small+int8", created_at="2026-02-01")
            frame.to_csv(target, index=False)
        else:
            pd.read_parquet(path).assign(run_id="me5-small+int8").to_parquet(target)
    data = load_report_data("synthetic")
    assert set(data.groups["label"]) == {"bm25", "me5-small (untrained)", "me5-small+int8 (untrained)"}
    assert not data.notes


def test_unknown_experiment_is_a_clear_error(capsys):
    assert main(["report", "no-such-experiment", "--out", "/tmp/unused"]) == 2
    assert "no results at" in capsys.readouterr().err


def test_build_report_into_a_folder(tmp_path):
    write_experiment("refs", default_models()[:2])
    out = build_report("refs", tmp_path / "r", n_resamples=RESAMPLES, log=lambda message: None)
    readme = (out / "README.md").read_text()
    assert "not answerable yet" in readme.lower() and "no runs" in readme
    assert Path(out / "claims.md").is_file()


def test_places_are_named_by_training_direction_when_there_are_two():
    """The direction is read from the groups' table (their manifests), never from the group's name."""
    from types import SimpleNamespace

    from bench.report.claims_empirical import _where
    from bench.report.compare import Comparison

    directions = {"hybrid (mlqa-r)": "mlqa-r", "hybrid (xquad-r)": "xquad-r"}
    data = SimpleNamespace(group_row=lambda group: {"train_data": directions[group]})
    on = lambda d, dataset, setting="mono": Comparison(f"hybrid ({d})", f"mtl ({d})", dataset, setting, "map")  # noqa: E731
    assert _where(data, [on("mlqa-r", "xquad-r", "cross"), on("mlqa-r", "scifact")]) == "XQuAD-R cross, SciFact"
    assert _where(data, [on("mlqa-r", "scifact"), on("xquad-r", "scifact")]) == \
        "SciFact after training on MLQA-R; SciFact after training on XQuAD-R"


def test_the_alpha_curve_takes_its_ends_from_xy_and_xx_mono(tmp_path):
    """Hybrid at α 0.5 alone has no curve, but xy and xx-mono are hybrid at α 0 and 1 (test_alpha_ends.py)."""
    from bench.report.figures import alpha_curve, alpha_groups

    write_experiment("synthetic", default_models())
    data = load_report_data("synthetic")
    assert sorted(zip(alpha_groups(data)["alpha"], alpha_groups(data)["trainer"])) \
        == [(0.0, "xy"), (0.5, "hybrid"), (1.0, "xx-mono")]
    notes: list[str] = []
    written = alpha_curve(data, tmp_path, notes, n_resamples=RESAMPLES)
    assert [p.name for p in written] == ["alpha_curve_me5-small_mlqa-r.png"] and written[0].stat().st_size > 1000
    assert notes == ["alpha curve (me5-small trained on mlqa-r): α = 0 is xy, α = 1 is xx-mono, the same batches and "
                     "weights as hybrid at that alpha for the same seed (tests/train/test_alpha_ends.py)"]


def test_xy_and_xx_mono_without_hybrid_are_no_alpha_sweep(tmp_path):
    from bench.report.figures import alpha_curve

    write_experiment("ends-only", [m for m in default_models() if m.trainer in ("none", "xy", "xx-mono")])
    notes: list[str] = []
    assert alpha_curve(load_report_data("ends-only"), tmp_path, notes, n_resamples=RESAMPLES) == [] and notes == []
