"""`python -m bench compare`: paired per-query tests of two stored runs. A tiny results folder is written into
the per-test BENCH_RESULTS; every number is checked against an independent computation (scipy, an exact
enumeration of sign flips, Holm by hand), and the refusals are checked by their messages."""

import gzip
import io
import itertools
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from bench.cli import main
from bench.digest import file_digest
from bench.report.pairwise import compare
from bench.results import TIDY_COLUMNS

RNG = np.random.default_rng(7)
BEIR = {"scifact": 10, "nfcorpus": 12, "arguana": 11}   # queries per task: small enough for exact sign flips
LANGS = ("en", "de", "es")
QUESTIONS = [f"q{i}" for i in range(8)]


def write_task(folder: Path, run_id: str, suite: str, dataset: str, setting: str, q: str, d: str,
               scores: dict[str, dict[str, float]], data: dict | None = None, trec: str | None = None) -> None:
    """One stored task: tidy rows, per-query parquet (scores: metric -> {query id: value}), run record."""
    stem = folder / run_id / f"{dataset}__test__{setting}__{q}-{d}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    rows, per_query = [], []
    for metric, values in scores.items():
        row = dict.fromkeys(TIDY_COLUMNS, "")
        row.update(experiment=folder.name, run_id=run_id, model=run_id, base_model=run_id, trainer="none",
                   suite=suite, dataset=dataset, split="test", setting=setting, query_lang=q, doc_lang=d,
                   metric=metric, value=float(np.mean(list(values.values()))), n_queries=len(values),
                   bench_version="0.1.0", git_sha="test", created_at="2026-01-01T00:00:00+00:00")
        rows.append(row)
        per_query += [(run_id, dataset, setting, q, d, qid, metric, v) for qid, v in values.items()]
    pd.DataFrame(rows, columns=TIDY_COLUMNS).to_csv(stem.with_suffix(".csv"), index=False)
    pd.DataFrame(per_query, columns=["run_id", "dataset", "setting", "query_lang", "doc_lang", "query_id", "metric",
                                     "value"]).to_parquet(f"{stem}.per_query.parquet")
    record = {"suite": suite, "dataset": dataset, "setting": setting, "seconds": {}, "n_docs": 100,
              "inputs": {"data": data or {f"{dataset}/qrels/test.tsv": "0123456789abcdef"}}}
    Path(f"{stem}.record.json").write_text(json.dumps(record))
    if trec is not None:
        with gzip.open(f"{stem}.trec.gz", "wt") as f:
            f.write(trec)


def values(n: int, offset: float = 0.0) -> np.ndarray:
    return np.clip(RNG.uniform(0.2, 0.8, n) + offset + RNG.normal(0, 0.1, n), 0, 1).round(2)


@pytest.fixture
def results(tmp_path) -> dict:
    """Experiment `exp`: runs sys-a and sys-b on three BEIR tasks and XQuAD-R's six cross pairs; returns the
    per-query arrays written, (run, task key) -> {query id: value}."""
    folder = tmp_path / "results" / "exp"
    written = {}
    for run, offset in (("sys-a", 0.05), ("sys-b", 0.0)):
        for dataset, n in BEIR.items():
            scores = dict(zip([f"{dataset[:2]}{i}" for i in range(n)], values(n, offset)))
            written[(run, dataset)] = scores
            write_task(folder, run, "beir", dataset, "mono", "en", "en",
                       {"ndcg@10": scores, "recall@100": {k: min(1.0, v + 0.1) for k, v in scores.items()}})
        for q, d in itertools.permutations(LANGS, 2):
            scores = dict(zip(QUESTIONS, values(len(QUESTIONS), offset)))
            written[(run, f"{q}-{d}")] = scores
            write_task(folder, run, "xquad-r", "xquad-r", "cross", q, d,
                       {"map": scores, "recall@1": {k: float(v > 0.5) for k, v in scores.items()}},
                       data={f"lareqa/xquad-r/{q}.json": f"{q}0000", f"lareqa/xquad-r/{d}.json": f"{d}0000"})
    return written


def arrays(written, task):
    a, b = written[("sys-a", task)], written[("sys-b", task)]
    return np.array([a[k] for k in a]), np.array([b[k] for k in a])


def exact_sign_flip_p(d: np.ndarray) -> float:
    """Two-sided exact randomisation p of sum(d): every one of the 2^n sign patterns, written out."""
    observed = abs(d.sum())
    sums = [abs(sum(s * x for s, x in zip(signs, d))) for signs in itertools.product((1, -1), repeat=len(d))]
    return sum(s >= observed - 1e-12 for s in sums) / len(sums)


def row(table: pd.DataFrame, dataset: str, pair: str = "en-en", metric: str | None = None) -> pd.Series:
    part = table.xs((dataset, pair), level=("dataset", "pair"))
    return part.xs(metric, level="metric").iloc[0] if metric else part.iloc[0]


def test_means_delta_permutation_and_counts(results):
    table = compare("exp/sys-a", "exp/sys-b").table
    for dataset in BEIR:
        a, b = arrays(results, dataset)
        r = row(table, dataset, metric="ndcg@10")
        assert r["n"] == len(a)
        assert r["mean_a"] == pytest.approx(a.mean()) and r["mean_b"] == pytest.approx(b.mean())
        assert r["delta"] == pytest.approx(a.mean() - b.mean())
        assert r["p"] == pytest.approx(exact_sign_flip_p(a - b))
        assert (r["wins"], r["ties"], r["losses"]) == ((a > b).sum(), (a == b).sum(), (a < b).sum())
        assert r["ci_low"] <= r["delta"] <= r["ci_high"]


def test_t_and_wilcoxon_match_scipy(results):
    t = compare("sys-a", "sys-b", experiment="exp", test="t").table
    w = compare("sys-a", "sys-b", experiment="exp", test="wilcoxon").table
    for dataset in BEIR:
        a, b = arrays(results, dataset)
        assert row(t, dataset)["p"] == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue)
        assert row(w, dataset)["p"] == pytest.approx(scipy_stats.wilcoxon(a - b).pvalue)


def test_bootstrap_interval_is_the_percentile_interval_of_resampled_mean_deltas(results):
    table = compare("exp/sys-a", "exp/sys-b", n_resamples=2000, seed=3).table
    a, b = arrays(results, "scifact")
    d = a - b
    draws = np.random.default_rng(3).integers(0, len(d), size=(2000, len(d)))
    low, high = np.percentile(d[draws].mean(axis=1), [2.5, 97.5])
    r = row(table, "scifact")
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(low), pytest.approx(high))


def test_holm_over_the_tasks(results):
    table = compare("exp/sys-a", "exp/sys-b", test="t").table
    tasks = table[~table.index.get_level_values("pair").str.startswith("macro")]
    p = tasks["p"].to_numpy()
    order = np.argsort(p)
    m = len(p)
    expected = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):  # step-down: (m - rank) * p, never below the previous, capped at 1
        running = max(running, min(1.0, (m - rank) * p[i]))
        expected[i] = running
    assert tasks["p_holm"].to_numpy() == pytest.approx(expected)
    assert m == len(BEIR) + 6
    assert (tasks["p_holm"] >= tasks["p"]).all()


def test_macro_row_pools_the_pairs_clustered_by_question(results):
    table = compare("exp/sys-a", "exp/sys-b", test="t").table
    macro = row(table, "xquad-r", "macro of 6")
    pairs = [f"{q}-{d}" for q, d in itertools.permutations(LANGS, 2)]
    a = np.array([arrays(results, p)[0] for p in pairs])  # pairs x questions
    b = np.array([arrays(results, p)[1] for p in pairs])
    assert macro["mean_a"] == pytest.approx(a.mean(axis=1).mean())
    assert macro["delta"] == pytest.approx(a.mean() - b.mean())
    assert macro["n"] == a.size
    # The t-test of the per-question sums of the weighted differences (each question one cluster).
    clusters = ((a - b) / a.size).sum(axis=0)
    assert macro["p"] == pytest.approx(scipy_stats.ttest_1samp(clusters, 0.0).pvalue)


def test_a_metric_can_be_chosen_and_a_missing_one_is_refused(results):
    table = compare("exp/sys-a", "exp/sys-b", metrics=["recall@100"]).table
    assert set(table.index.get_level_values("metric")) == {"recall@100"}
    assert len(table) == len(BEIR)  # the LAReQA tasks have no recall@100: left out, with a note
    with pytest.raises(ValueError, match=r"metric 'ndcg@20' is not stored per query .* no TREC run file"):
        compare("exp/sys-a", "exp/sys-b", metrics=["ndcg@20"])


def test_bad_names_and_disjoint_runs(results, tmp_path):
    with pytest.raises(ValueError, match=r"no run 'sys-z' in .*; runs there: sys-a, sys-b$"):
        compare("exp/sys-a", "exp/sys-z")
    with pytest.raises(ValueError, match="name the experiment"):
        compare("sys-a", "sys-b")
    with pytest.raises(ValueError, match="no experiment 'nope'"):
        compare("nope/sys-a", "exp/sys-b")
    write_task(tmp_path / "results" / "other", "sys-c", "beir", "trec-covid", "mono", "en", "en",
               {"ndcg@10": {"1": 0.5}})
    with pytest.raises(ValueError, match=r"share no task: exp/sys-a has .*scifact mono.*; other/sys-c has "
                                         r"trec-covid mono$"):
        compare("exp/sys-a", "other/sys-c")


def test_runs_of_two_experiments_pair_on_the_same_data_only(results, tmp_path):
    other = tmp_path / "results" / "other"
    same = dict(results[("sys-b", "scifact")])
    write_task(other, "sys-c", "beir", "scifact", "mono", "en", "en", {"ndcg@10": same})
    r = row(compare("exp/sys-a", "other/sys-c").table, "scifact")
    assert r["mean_b"] == pytest.approx(np.mean(list(same.values())))
    write_task(other, "sys-d", "beir", "scifact", "mono", "en", "en", {"ndcg@10": same},
               data={"scifact/qrels/test.tsv": "ffffffffffffffff"})
    with pytest.raises(ValueError, match=r"different data for beir/scifact__test__mono__en-en "
                                         r"\(scifact/qrels/test.tsv differ by content\)"):
        compare("exp/sys-a", "other/sys-d")


def test_a_metric_missing_per_query_is_computed_from_the_trec_run(tmp_path, monkeypatch):
    data = tmp_path / "data"
    qrels = data / "toy" / "qrels" / "test.tsv"
    qrels.parent.mkdir(parents=True)
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n")
    monkeypatch.setenv("BENCH_DATA", str(data))
    fingerprint = {"toy/qrels/test.tsv": file_digest(qrels)}
    folder = tmp_path / "results" / "exp"
    # A: d1 first for q1, d2 second for q2, nothing for q3 (no line in the file). B: q1 second, q2 first, q3 first.
    runs = {"sys-a": "q1 Q0 d1 1 2.0 a\nq1 Q0 d9 2 1.0 a\nq2 Q0 d9 1 2.0 a\nq2 Q0 d2 2 1.0 a\n",
            "sys-b": "q1 Q0 d9 1 2.0 b\nq1 Q0 d1 2 1.0 b\nq2 Q0 d2 1 2.0 b\nq3 Q0 d3 1 1.0 b\n"}
    for run, trec in runs.items():
        write_task(folder, run, "beir", "toy", "mono", "en", "en", {"ndcg@10": {"q1": 0.0, "q2": 0.0, "q3": 0.0}},
                   data=fingerprint, trec=trec)
    r = row(compare("exp/sys-a", "exp/sys-b", metrics=["mrr@10"], test="t").table, "toy")
    a, b = np.array([1.0, 0.5, 0.0]), np.array([0.5, 1.0, 1.0])  # reciprocal ranks by hand
    assert r["n"] == 3
    assert (r["mean_a"], r["mean_b"]) == (pytest.approx(a.mean()), pytest.approx(b.mean()))
    assert (r["wins"], r["ties"], r["losses"]) == (1, 0, 2)
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")  # changed since the runs were scored
    with pytest.raises(ValueError, match="missing or changed since the run was scored"):
        compare("exp/sys-a", "exp/sys-b", metrics=["recall@100"])


def test_cli_formats_and_errors(results):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["compare", "exp/sys-a", "exp/sys-b", "--format", "csv", "--resamples", "500"]) == 0
    table = pd.read_csv(io.StringIO(out.getvalue()))
    assert list(table.columns[:5]) == ["dataset", "split", "setting", "pair", "metric"]
    assert len(table) == len(BEIR) + 6 + 1
    assert "A = exp/sys-a" in err.getvalue()
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["compare", "sys-a", "sys-b", "--experiment", "exp", "--format", "markdown"]) == 0
    assert out.getvalue().startswith("| dataset | split |") and "macro of 6" in out.getvalue()
    with redirect_stdout(io.StringIO()), redirect_stderr(err := io.StringIO()):
        assert main(["compare", "exp/sys-a", "exp/nope"]) == 2
    assert err.getvalue().startswith("error: no run 'nope'") and err.getvalue().count("\n") == 1
