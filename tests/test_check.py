"""The regression check: OK / OKish / FAIL per stored score, and a non-zero exit on FAIL."""

import pandas as pd
import pytest

from bench import check
from bench.check import compare, expected_frame
from bench.cli import main
from support.scores import tidy




SCORES = {("base", "map"): 0.5, ("base", "recall@1"): 0.4, ("trained", "map"): 0.6}


def test_equal_within_tolerance_and_failures():
    expected = expected_frame(tidy(SCORES))
    assert list(expected["tolerance"]) == [check.OKISH_REFERENCE, check.OKISH_REFERENCE, check.OKISH_TRAINED]
    changed = dict(SCORES)
    changed[("base", "map")] += 5e-7          # OK: within 1e-6
    changed[("base", "recall@1")] += 5e-5     # OKish: within the reference tolerance 1e-4
    changed[("trained", "map")] += 0.01       # FAIL: beyond the trained tolerance
    result = compare(expected, tidy(changed)).set_index(["model", "metric"])
    assert result.loc[("base", "map"), "status"] == "OK"
    assert result.loc[("base", "recall@1"), "status"] == "OKish"
    assert result.loc[("trained", "map"), "status"] == "FAIL"
    assert result.loc[("trained", "map"), "difference"] == pytest.approx(0.01)


def test_a_rank_metric_may_move_by_one_rank_step_of_one_query():
    """A mean of ranks over n queries moves by 1/n when one near tie falls the other way (another CPU's
    arithmetic); that is OKish for an untrained model, two such steps are not."""
    scores = {("base", "rank_distance"): 693.637815, ("base", "map"): 0.5}
    expected = expected_frame(tidy(scores)).set_index("metric")
    n = 10  # tidy()'s n_queries
    assert expected.loc["rank_distance", "tolerance"] == pytest.approx(check.OKISH_REFERENCE + 1 / n)
    assert expected.loc["map", "tolerance"] == check.OKISH_REFERENCE
    for moved, status in ((1 / n, "OKish"), (2 / n, "FAIL")):
        observed = tidy({**scores, ("base", "rank_distance"): scores[("base", "rank_distance")] - moved})
        result = compare(expected.reset_index(), observed).set_index("metric")
        assert result.loc["rank_distance", "status"] == status and result.loc["map", "status"] == "OK"


def test_a_missing_score_fails():
    observed = tidy({k: v for k, v in SCORES.items() if k != ("trained", "map")})
    result = compare(expected_frame(tidy(SCORES)), observed)
    assert list(result["status"]) == ["OK", "OK", "FAIL"]
    assert "missing" in check.format_report(result)


def test_cli_exits_non_zero_when_a_stored_score_was_changed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(check, "expected_path", lambda experiment: tmp_path / f"{experiment}-expected.csv")
    monkeypatch.setattr(check, "fresh_scores", lambda experiment, log=print: tidy(SCORES))
    assert main(["check", "--update"]) == 0
    assert main(["check"]) == 0
    assert "OK 3 OKish 0 FAIL 0 of 3" in capsys.readouterr().out

    path = tmp_path / "smoke-expected.csv"
    stored = pd.read_csv(path)
    stored.loc[0, "expected"] += 0.05  # a deliberately changed score
    stored.to_csv(path, index=False)
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL ]" in out and "OK 2 OKish 0 FAIL 1 of 3" in out


def test_missing_expected_file_says_how_to_create_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(check, "expected_path", lambda experiment: tmp_path / "none.csv")
    monkeypatch.setattr(check, "fresh_scores", lambda experiment, log=print: tidy(SCORES))
    assert main(["check"]) == 2
    assert "--update" in capsys.readouterr().err


def test_the_shipped_expected_scores_cover_every_smoke_model():
    from bench.experiment import checkpoint_dir, load_experiment

    expected = check.read_expected(check.expected_path("smoke"))
    experiment = load_experiment("smoke")
    models = set(experiment.references) | {checkpoint_dir(experiment, c).name for c in experiment.cells()}
    assert set(expected["model"]) == models
    assert set(expected["dataset"]) == {"xquad-r", "nfcorpus"}


def test_from_results_of_an_experiment_without_results_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(check, "expected_path", lambda experiment: tmp_path / f"{experiment}-expected.csv")
    expected_frame(tidy(SCORES)).to_csv(tmp_path / "smoke-expected.csv", index=False)
    assert main(["check", "--from-results", "nosuch"]) != 0
    captured = capsys.readouterr()
    assert "experiment nosuch has no results" in captured.err
    assert "FAIL" not in captured.out + captured.err
