"""Regression check on stored scores, as pyserini's reproduction matrices do it: the `smoke` experiment is
re-run from scratch (fresh checkpoints, no embedding cache) and every score is compared with the expected
value kept in results/check/<experiment>-expected.csv: OK (equal within 1e-6), OKish (within the row's
stated tolerance), FAIL otherwise or when a score is missing."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from bench.paths import PROJECT_ROOT, environment
from bench.safety import check_name

KEY = ["model", "dataset", "setting", "query_lang", "doc_lang", "metric"]
OK_TOLERANCE = 1e-6
# Untrained models only depend on the encoder's arithmetic; trained ones also on the optimiser's, which
# differs in the last bits between CPU instruction sets and accumulates over the steps.
OKISH_REFERENCE = 1e-4
OKISH_TRAINED = 2e-3
# A mean of ranks moves by 1/n_queries as soon as one near tie of scores falls the other way (seen between
# an AVX-512 and an AVX2 CPU: minilm-l6's XQuAD-R rank distance by 1/1190), where a 0-1 metric moves by
# far less unless the tie is at the very top; so rank metrics get one such step on top of the tolerance.
RANK_STEPS = 1


def expected_path(experiment: str) -> Path:
    return PROJECT_ROOT / "results" / "check" / f"{check_name(experiment, 'experiment name')}-expected.csv"


@contextmanager
def scratch_environment() -> Iterator[Path]:
    """Results and checkpoints in a temporary folder, so the check recomputes everything and touches nothing."""
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp, \
            environment(BENCH_RESULTS=str(Path(tmp) / "results"), BENCH_MODELS=str(Path(tmp) / "models")):
        yield Path(tmp)


def fresh_scores(experiment_name: str, log=print) -> pd.DataFrame:
    """The experiment's tidy rows, recomputed from scratch."""
    from bench.experiment import load_experiment, run_experiment
    from bench.results import ResultStore

    experiment = load_experiment(experiment_name)
    with scratch_environment():
        run_experiment(experiment, log=log, cache=False)
        return ResultStore(experiment.name).load()


def stored_scores(name: str, experiment: str) -> pd.DataFrame:
    """The stored rows of experiment `name` (the user's own, else the committed ones), to check against
    `experiment`'s expected scores; an empty store is an error, not a wall of FAIL lines."""
    from bench.results import ResultStore

    store = ResultStore.find(name)
    scores = store.load()
    if scores.empty:
        raise ValueError(f"experiment {name} has no results (nothing in {store.folder}); run it first, or drop "
                         f"--from-results to re-run {experiment}")
    return scores


def write_expected(path: Path, scores: pd.DataFrame) -> int:
    """Store `scores` as the expected ones (with their OKish tolerances); returns how many."""
    from bench.results import atomic_write

    frame = expected_frame(scores)
    atomic_write(path, lambda p: frame.to_csv(p, index=False, float_format="%.10g"))
    return len(frame)


def expected_frame(scores: pd.DataFrame) -> pd.DataFrame:
    """Expected values with their OKish tolerance, from a run's tidy rows."""
    frame = scores[[*KEY, "value"]].rename(columns={"value": "expected"})
    frame["tolerance"] = okish_tolerances(scores)
    return frame.sort_values(KEY).reset_index(drop=True)


def okish_tolerances(rows: pd.DataFrame) -> list[float]:
    """The OKish tolerance of each tidy row: by whether its model was trained, plus a rank step for rank metrics."""
    from bench.eval.ranking import RANK_METRICS

    steps = [RANK_STEPS / n if metric in RANK_METRICS else 0.0 for metric, n in zip(rows["metric"], rows["n_queries"])]
    return [(OKISH_REFERENCE if trainer == "none" else OKISH_TRAINED) + step
            for trainer, step in zip(rows["trainer"], steps)]


def read_expected(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"no expected scores at {path}; create them with python -m bench check --update")
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    missing = [c for c in [*KEY, "expected", "tolerance"] if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {', '.join(missing)}; regenerate it with --update")
    return frame


def compare(expected: pd.DataFrame, observed: pd.DataFrame) -> pd.DataFrame:
    """One row per expected score: observed value, |difference| and status OK / OKish / FAIL."""
    merged = expected.merge(observed[[*KEY, "value"]].rename(columns={"value": "observed"}), on=KEY, how="left")
    merged["difference"] = (merged["observed"] - merged["expected"]).abs()

    def status(row) -> str:
        if pd.isna(row["observed"]):
            return "FAIL"
        if row["difference"] <= OK_TOLERANCE:
            return "OK"
        return "OKish" if row["difference"] <= row["tolerance"] else "FAIL"

    merged["status"] = merged.apply(status, axis=1) if len(merged) else pd.Series(dtype=str)
    return merged


def format_report(result: pd.DataFrame) -> str:
    lines = []
    for row in result.itertuples(index=False):
        observed = "missing" if pd.isna(row.observed) else f"{row.observed:.6f}"
        lines.append(f"[{row.status:<5}] {row.model} {row.dataset} {row.setting} {row.query_lang}-{row.doc_lang} "
                     f"{row.metric}: {observed} expected {row.expected:.6f}"
                     + ("" if row.status == "OK" or pd.isna(row.observed) else f" (|diff| {row.difference:.2e}, "
                                                                                 f"OKish within {row.tolerance:g})"))
    counts = result["status"].value_counts()
    lines.append(" ".join(f"{s} {int(counts.get(s, 0))}" for s in ("OK", "OKish", "FAIL")) + f" of {len(result)}")
    return "\n".join(lines)
