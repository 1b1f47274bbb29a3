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


@pytest.mark.parametrize("args", [("--help",), ("run", "--help"), ("list", "--help")])
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
