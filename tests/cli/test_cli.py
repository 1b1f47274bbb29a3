"""`python -m bench`: help, listing, and the errors a user meets (exit status 2 with a useful message)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.cli import main
from bench.data.beir import BEIR_DATASETS
from bench.data.suites import SUITES
from bench.paths import PROJECT_ROOT


def bench(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("args", [("--help",), ("run", "--help"), ("list", "--help"), ("train", "--help")])
def test_help(args):
    result = bench(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m bench")
    if args[0] == "run":
        for option in ("--suite", "--model", "--datasets", "--split", "--corpus", "--experiment", "--force", "--k"):
            assert option in result.stdout


def test_list_shows_models_suites_datasets():
    result = bench("list")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("bm25", "minilm-l6", "me5-small"):
        assert f"  {name} " in out
    for name in SUITES:
        assert f"  {name} " in out
    for name in BEIR_DATASETS:
        assert f"  {name} " in out
    assert out.index("models") < out.index("suites:") < out.index("BEIR datasets")


def test_list_one_section():
    result = bench("list", "models")
    assert result.returncode == 0
    assert "minilm-l6" in result.stdout and "suites:" not in result.stdout and "scifact" not in result.stdout


def test_no_command_is_an_error():
    result = bench()
    assert result.returncode == 2
    assert "required" in result.stderr


def test_unknown_suite_lists_choices():
    result = bench("run", "--suite", "nosuchsuite")
    assert result.returncode == 2
    assert "invalid choice: 'nosuchsuite'" in result.stderr
    for name in SUITES:
        assert f"'{name}'" in result.stderr


def test_unknown_model_lists_registered(beir_fixture_dir, monkeypatch):
    # Through the real entry point (exit status of `python -m bench`); data from the fixture.
    monkeypatch.setenv("BENCH_DATA", str(beir_fixture_dir.parent.parent))
    result = bench("run", "--suite", "beir", "--datasets", "scifact", "--model", "nosuchmodel")
    assert result.returncode == 2, result.stderr
    assert "error: unknown model 'nosuchmodel'" in result.stderr
    assert "registered: bm25, minilm-l6, me5-small" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_dataset_lists_known(capsys):
    assert main(["run", "--suite", "beir", "--datasets", "nosuchset", "--model", "bm25"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown BEIR dataset(s) nosuchset" in err
    for name in ("scifact", "nfcorpus", "arguana", "trec-covid"):
        assert name in err


def test_unknown_split(beir_fixture_dir, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_DATA", str(beir_fixture_dir.parent.parent))
    assert main(["run", "--suite", "beir", "--datasets", "scifact", "--split", "dev", "--model", "bm25"]) == 2
    assert "unknown split 'dev' for scifact; available: train, test" in capsys.readouterr().err


def test_miracl_without_corpus_says_where_to_get_it(capsys):
    assert main(["run", "--suite", "miracl", "--model", "bm25"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "miracl/miracl-corpus" in err and "--corpus DIR" in err
    assert "not in the offline mirror" in err


def test_unreachable_hub_model_is_a_clean_error(beir_fixture_dir, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_DATA", str(beir_fixture_dir.parent.parent))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["run", "--suite", "beir", "--datasets", "scifact", "--model", "nosuchorg/nosuchmodel"]) == 2
    assert "error:" in capsys.readouterr().err


def test_k_must_be_positive(beir_fixture_dir, tiny_model_dir, monkeypatch, capsys):
    from bench.paths import results_root

    monkeypatch.setenv("BENCH_DATA", str(beir_fixture_dir.parent.parent))
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--suite", "beir", "--datasets", "scifact", "--model", str(tiny_model_dir), "--k", "0"])
    assert exit_.value.code == 2
    assert not results_root().exists()


def test_run_has_mteb_style_short_flags():
    from bench.cli import build_parser

    short = build_parser().parse_args(["run", "--suite", "lareqa", "-m", "bm25", "me5-small", "-d", "xquad-r",
                                       "-l", "en", "de"])
    long = build_parser().parse_args(["run", "--suite", "lareqa", "--model", "bm25", "me5-small", "--datasets",
                                      "xquad-r", "--langs", "en", "de"])
    assert (short.model, short.datasets, short.langs) == (["bm25", "me5-small"], ["xquad-r"], ["en", "de"])
    assert vars(short) == vars(long)


def test_train_flags_are_the_training_options():
    """Each TrainOptions field is one `train` flag (declared once, in bench/train/options.py): the flags' defaults
    are the options' defaults, and the command-line forms (0 for no limit, --no-hard-negatives, lists) convert."""
    from dataclasses import fields

    from bench.cli import build_parser
    from bench.train.options import TrainOptions, options_from_args

    def parsed(*flags: str) -> TrainOptions:
        return options_from_args(TrainOptions, build_parser().parse_args(["train", "--trainer", "mtl", "--base", "b",
                                                                           *flags]))

    assert parsed() == TrainOptions(trainer="mtl", base="b")
    assert all("cli" in f.metadata for f in fields(TrainOptions))
    options = parsed("--max-seq-length", "0", "--no-hard-negatives", "--tatoeba", "--langs", "de", "en",
                     "--eval-data", "scifact", "--w-lid", "0", "--freeze-embeddings", "--alpha", "0.3")
    assert (options.max_seq_length, options.hard_negatives, options.tatoeba, options.langs, options.eval_data) == (
        None, False, (), ("de", "en"), ("scifact",))
    assert (options.w_lid, options.freeze_embeddings, options.alpha) == (0.0, True, 0.3)
    assert parsed("--tatoeba", "de", "--max-seq-length", "64").tatoeba == ("de",)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--base", "b"])  # --trainer is required


def _store_lareqa_rows(experiment: str) -> None:
    """Tidy rows of one model on XQuAD-R multi for two query languages: mAP and rank distance."""
    import pandas as pd

    from bench.paths import results_root
    from bench.results import TIDY_COLUMNS

    values = {("de", "map"): 0.5, ("de", "rank_distance"): 100.0, ("en", "map"): 0.7, ("en", "rank_distance"): 300.0}
    rows = []
    for (lang, metric), value in values.items():
        row = dict.fromkeys(TIDY_COLUMNS, "")
        row.update(experiment=experiment, run_id="m1", model="m1", trainer="none", suite="lareqa", dataset="xquad-r",
                   split="test", setting="multi", query_lang=lang, doc_lang="xx", metric=metric, value=value,
                   n_queries=10, bench_version="0.1.0", git_sha="x", created_at="2026-01-01T00:00:00+00:00")
        rows.append(row)
    folder = results_root() / experiment / "m1"
    folder.mkdir(parents=True)
    pd.DataFrame(rows, columns=TIDY_COLUMNS).to_csv(folder / "xquad-r__test__multi.csv", index=False)


def test_show_per_language_formats_and_rank_distance_apart(capsys):
    _store_lareqa_rows("langs")
    assert main(["show", "langs"]) == 0
    out = capsys.readouterr().out
    scores, ranks = out.split("rank distance (in ranks")
    assert "0.6000" in scores and "rank_distance" not in scores  # the macro average of 0.5 and 0.7
    assert "200.0" in ranks and "map" not in ranks

    assert main(["show", "langs", "--per-language", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert "xquad-r,test,multi,de,xx,map,0.5000" in out and "xquad-r,test,multi,en,xx,map,0.7000" in out
    assert "xquad-r,test,multi,en,xx,rank_distance,300.0" in out and "0.6000" not in out

    assert main(["show", "langs", "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| dataset | split | setting | metric | m1 |" and lines[1] == "|---|---|---|---|---|"
    assert "| xquad-r | test | multi | map | 0.6000 |" in lines
    assert "| xquad-r | test | multi | rank_distance | 200.0 |" in lines

    assert main(["show", "langs", "--format", "latex"]) == 0
    out = capsys.readouterr().out
    assert out.count("\\begin{tabular}") == 2 and "0.6000" in out


def test_show_selects_runs_and_datasets_by_pattern(capsys):
    _store_lareqa_rows("picked")
    assert main(["show", "picked", "--runs", "m*", "--datasets", "xquad-*", "--format", "csv"]) == 0
    assert "xquad-r,test,multi,map,0.6000" in capsys.readouterr().out
    assert main(["show", "picked", "--runs", "hybrid-*"]) == 2
    err = capsys.readouterr().err
    assert "--runs hybrid-* matches nothing; there are: m1" in err and "Traceback" not in err
