"""Paired per-query comparison of two runs on the tasks they share (`python -m bench compare A B`), as ranx's
compare or a pyserini / ir_measures paired test: for each shared task and metric, the two means, their
difference, a paired test's p-value, the percentile-bootstrap 95% interval of the mean difference, the query
count and wins / ties / losses, with Holm's correction across the tasks compared.

Runs are read from their stored files (tidy rows, per-query parquet, run records); two runs are paired on a
task only when their records name the same data (the content hashes of `inputs.data`, bench/fingerprint.py).
A top-k metric that is not stored per query is computed from the run's TREC file and the qrels it was scored
against, with the same pytrec_eval code that computed the stored ones (bench/eval/metrics.py). Full-ranking
metrics (LAReQA's mAP) are only ever read as stored.

A setting split into several tasks (LAReQA's languages and language pairs, Tatoeba's directions) also gets a
macro row: the mean over tasks of the per-task means, tested on the per-query scores of all its tasks pooled
with macro weights and resampled by question id (the clustered tests of bench/report/stats.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report import stats
from bench.results import DamagedResult, read_record, read_scores, read_trec, safe_name

MAIN_METRIC = {"beir": "ndcg@10", "miracl": "ndcg@10", "xquad-r": "map", "mlqa-r": "map", "tatoeba": "accuracy@1"}
LOWER_IS_BETTER = ("rank_distance",)
TESTS = {"permutation": "paired randomisation (sign-flip) test", "t": "paired t-test",
         "wilcoxon": "Wilcoxon signed-rank test"}
INDEX = ["dataset", "split", "setting", "pair", "metric"]
COLUMNS = ["n", "mean_a", "mean_b", "delta", "ci_low", "ci_high", "p", "p_holm", "wins", "ties", "losses"]


def _folders(experiment: str) -> list[Path]:
    """Where the experiment's runs are looked for, in order: where `bench show` reads it (the user's own results
    when there are any, else the committed ones), then, unless $BENCH_RESULTS names the one folder to read, the
    committed results (a run scored only there)."""
    import os

    from bench.paths import committed_results
    from bench.results import ResultStore

    first = ResultStore.find(experiment).folder
    committed = committed_results() / experiment
    fallback = not os.environ.get("BENCH_RESULTS") and committed.resolve() != first.resolve()
    return [first] + ([committed] if fallback and committed.is_dir() else [])


def _experiments() -> tuple[list[Path], list[str]]:
    """(the results folders read, the experiments in them), for the message about an unknown experiment."""
    import os

    from bench.paths import committed_results, results_root

    roots = [results_root()]
    if not os.environ.get("BENCH_RESULTS") and committed_results() != roots[0]:
        roots.append(committed_results())
    return roots, sorted({p.name for root in roots if root.is_dir() for p in root.iterdir() if p.is_dir()})


@dataclass(frozen=True)
class Task:
    suite: str
    dataset: str
    split: str
    setting: str
    query_lang: str
    doc_lang: str
    stem: Path                  # <run folder>/<task key>, the prefix of its files
    metrics: tuple[str, ...]    # the tidy rows' metrics

    @property
    def key(self) -> str:
        return self.stem.name

    def path(self, suffix: str) -> Path:
        return self.stem.with_name(self.stem.name + suffix)


@dataclass
class Run:
    experiment: str
    run_id: str                 # as `bench show` names it
    folder: Path
    tasks: dict[tuple[str, str], Task] = field(default_factory=dict)   # (suite, task key) -> task

    @property
    def label(self) -> str:
        return f"{self.experiment}/{self.run_id}"


def resolve_run(name: str, experiment: str | None = None) -> Run:
    """RUN or EXPERIMENT/RUN (the qualified form wins over --experiment) as a stored run with its tasks."""
    first, slash, rest = name.partition("/")
    if slash and rest:
        try:
            if any(folder.is_dir() for folder in _folders(first)):
                experiment, name = first, rest
        except ValueError:  # not a valid experiment name: a run id with a '/', such as a Hugging Face id
            pass
    if experiment is None and not slash:
        raise ValueError(f"{name!r}: name the experiment, as EXPERIMENT/{name} or with --experiment NAME")
    wanted = experiment or first
    folders = [f for f in _folders(wanted) if f.is_dir()] if experiment else []
    if not folders:
        roots, known = _experiments()
        raise ValueError(f"no experiment {wanted!r} in {' or '.join(map(str, roots))}; experiments there: "
                         f"{', '.join(known) or 'none'}" + ("" if experiment else " (a run id with a '/' needs "
                                                                                   "--experiment)"))
    found = [f / safe_name(name) for f in folders if any((f / safe_name(name)).glob("*.csv"))]
    if not found:
        known = sorted({p.name for f in folders for p in f.iterdir() if p.is_dir() and any(p.glob("*.csv"))})
        raise ValueError(f"no run {name!r} in {' or '.join(map(str, folders))}; runs there: "
                         f"{', '.join(known) or 'none'}")
    files = sorted(found[0].glob("*.csv"))
    run = Run(experiment, name, found[0])
    for path in files:
        try:
            rows = read_scores(path)
        except DamagedResult:
            continue  # named by `bench show`; a damaged task is simply not compared
        first_row = rows.iloc[0]
        run.run_id = str(first_row["run_id"])
        task = Task(*(str(first_row[c]) for c in ("suite", "dataset", "split", "setting", "query_lang", "doc_lang")),
                    stem=path.with_suffix(""), metrics=tuple(rows["metric"]))
        run.tasks[(task.suite, task.key)] = task
    return run


def _data_of(task: Task) -> tuple[dict | None, dict | None]:
    """(the run record, its `inputs.data` {file: content hash}); None for what is not recorded."""
    try:
        record = read_record(task.path(".record.json"))
    except DamagedResult:
        return None, None
    return record, (record.get("inputs") or {}).get("data")


def check_same_data(a: Run, b: Run, ta: Task, tb: Task) -> bool:
    """ValueError when the two runs' records show different data for the task; False when that cannot be
    checked by content (a record without fingerprint: then only its document count is compared)."""
    (ra, da), (rb, db) = _data_of(ta), _data_of(tb)
    if da and db:
        if sorted(da.values()) != sorted(db.values()):
            changed = sorted(n for n in {*da, *db} if da.get(n) != db.get(n))
            raise ValueError(f"{a.label} and {b.label} were scored on different data for {ta.suite}/{ta.key} "
                             f"({', '.join(changed)} differ by content): their queries or qrels are not the same, "
                             f"so their scores cannot be paired")
        return True
    if ra and rb and ra.get("n_docs") != rb.get("n_docs"):
        raise ValueError(f"{a.label} and {b.label} were scored on different corpora for {ta.suite}/{ta.key} "
                         f"({ra.get('n_docs')} and {rb.get('n_docs')} documents): not comparable")
    return False


_qrels_cache: dict[tuple[str, str], dict[str, dict[str, int]]] = {}


def _qrels(task: Task, data: dict | None) -> dict[str, dict[str, int]]:
    """The qrels file named in the task's fingerprint, refused when its content changed since."""
    from bench.digest import file_digest
    from bench.paths import data_root

    names = [n for n in (data or {}) if "qrels" in n]
    if len(names) != 1:
        raise ValueError(f"{task.stem}: the run record names no qrels file, so its TREC run cannot be scored")
    path = Path(names[0]) if Path(names[0]).is_absolute() else data_root() / names[0]
    if not path.is_file() or file_digest(path) != data[names[0]]:
        raise ValueError(f"{task.stem}: its qrels {path} are missing or changed since the run was scored")
    if (str(path), data[names[0]]) not in _qrels_cache:
        qrels: dict[str, dict[str, int]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            cols = line.split("\t") if "\t" in line else line.split()
            if len(cols) in (3, 4) and cols[-1].lstrip("-").isdigit():  # BEIR's 3 columns or TREC's 4
                qrels.setdefault(cols[0], {})[cols[-2]] = int(cols[-1])
        _qrels_cache[(str(path), data[names[0]])] = qrels
    return _qrels_cache[(str(path), data[names[0]])]


def per_query(task: Task, metric: str) -> pd.Series | None:
    """query id -> score: stored, else from the TREC run (top-k metrics); None when neither is possible."""
    path = task.path(".per_query.parquet")
    if path.is_file():
        frame = pd.read_parquet(path, columns=["query_id", "metric", "value"], filters=[("metric", "==", metric)])
        if len(frame):
            return frame.set_index(frame["query_id"].astype(str))["value"].astype(float)
    if not task.path(".trec.gz").is_file():
        return None
    from bench.eval.metrics import parse_metric, per_query_scores

    try:
        parse_metric(metric)
    except ValueError:
        return None
    qrels, run = _qrels(task, _data_of(task)[1]), read_trec(task.path(".trec.gz"))
    # A query that retrieved nothing leaves no line in a TREC file; every judged query was searched, and
    # scored (0) with its empty ranking, so it is put back.
    scores = per_query_scores(qrels, {**{q: {} for q in qrels}, **run}, (metric,))
    return pd.Series({q: s[metric] for q, s in scores.items()}, dtype=float)


def p_value(a, b, *, groups=None, clusters=None, test: str = "permutation", n_resamples: int = stats.N_RESAMPLES,
            seed: int = 0) -> float:
    """Two-sided p of macro(a) = macro(b). t and Wilcoxon test the per-cluster weighted differences (the plain
    per-query differences, scaled by 1/n, when there are no groups or clusters: then scipy's ttest_rel(a, b)
    and wilcoxon(a - b))."""
    from scipy import stats as scipy_stats

    if test == "permutation":
        return stats.paired_randomisation(a, b, groups=groups, clusters=clusters, n_resamples=n_resamples,
                                          seed=seed)[1]
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = stats.cluster_sums(stats.macro_weights(groups, len(a)) * (a - b), clusters)
    if not np.any(d):
        return 1.0
    if test == "t":
        return float(scipy_stats.ttest_1samp(d, 0.0).pvalue) if len(d) > 1 else float("nan")
    if test == "wilcoxon":
        return float(scipy_stats.wilcoxon(d).pvalue)
    raise ValueError(f"unknown test {test!r}; known: {', '.join(TESTS)}")


def paired_row(a, b, *, groups=None, clusters=None, test="permutation", lower_is_better=False,
               n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> dict:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    w = stats.macro_weights(groups, len(a))
    delta, low, high = stats.paired_bootstrap(a, b, groups=groups, clusters=clusters, n_resamples=n_resamples,
                                              seed=seed)
    better = (b - a) if lower_is_better else (a - b)
    return {"n": len(a), "mean_a": float(w @ a), "mean_b": float(w @ b), "delta": delta, "ci_low": low,
            "ci_high": high, "p": p_value(a, b, groups=groups, clusters=clusters, test=test,
                                          n_resamples=n_resamples, seed=seed),
            "wins": int((better > 1e-12).sum()), "ties": int((np.abs(better) <= 1e-12).sum()),
            "losses": int((better < -1e-12).sum())}


def _tasks_summary(run: Run) -> str:
    counts = pd.Series([f"{t.dataset} {t.setting}" for t in run.tasks.values()]).value_counts(sort=False)
    return ", ".join(f"{name} ({n})" if n > 1 else name for name, n in counts.items())


@dataclass
class Comparison:
    table: pd.DataFrame         # INDEX x COLUMNS
    legend: list[str]
    notes: list[str]


def compare(name_a: str, name_b: str, experiment: str | None = None, metrics: list[str] | None = None,
            test: str = "permutation", n_resamples: int = stats.N_RESAMPLES, seed: int = 0) -> Comparison:
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; known: {', '.join(TESTS)}")
    a, b = resolve_run(name_a, experiment), resolve_run(name_b, experiment)
    shared = sorted(a.tasks.keys() & b.tasks.keys())
    if not shared:
        raise ValueError(f"{a.label} and {b.label} share no task: {a.label} has {_tasks_summary(a)}; "
                         f"{b.label} has {_tasks_summary(b)}")
    unverified = sum(not check_same_data(a, b, a.tasks[k], b.tasks[k]) for k in shared)
    notes = [f"note: {unverified} task(s) predate input fingerprints: only their document counts were compared "
             f"(python -m bench.fingerprint EXPERIMENT records them)"] if unverified else []
    rows, units = [], {}
    for spec in metrics or [None]:
        missing = []
        for key in shared:
            ta, tb = a.tasks[key], b.tasks[key]
            metric = spec or MAIN_METRIC.get(ta.suite, ta.metrics[0])
            sa, sb = per_query(ta, metric), per_query(tb, metric)
            if sa is None or sb is None:
                missing.append((ta, metric, a if sa is None else b))
                continue
            common = sa.index.intersection(sb.index)
            if len(common) < len(sa.index.union(sb.index)):
                notes.append(f"note: {ta.key} {metric}: {len(sa.index.union(sb.index)) - len(common)} "
                             f"query(ies) scored by one run only are left out")
            if len(common) == 0:
                continue
            va, vb = sa[common].to_numpy(), sb[common].to_numpy()
            units.setdefault((spec, ta.suite, ta.dataset, ta.split, ta.setting, metric), []).append(
                (ta.key, common.to_numpy(), va, vb))
            rows.append({"kind": "task", "spec": str(spec), "suite": ta.suite, "dataset": ta.dataset,
                         "split": ta.split, "setting": ta.setting, "pair": f"{ta.query_lang}-{ta.doc_lang}",
                         "metric": metric,
                         **paired_row(va, vb, test=test, lower_is_better=metric in LOWER_IS_BETTER,
                                      n_resamples=n_resamples, seed=seed)})
        if missing and len(missing) == len(shared):
            task, metric, run = missing[0]
            stored = run.tasks[(task.suite, task.key)].metrics
            raise ValueError(f"metric {metric!r} is not stored per query for {run.label} on {task.key} (stored: "
                             f"{', '.join(stored)}) and there is no TREC run file to compute it from")
        if missing:
            notes.append(f"note: {len(missing)} shared task(s) left out of {spec or 'the main metric'}: no per-query "
                         f"scores and no TREC run file (first: {missing[0][0].key}, {missing[0][2].label})")
    for (spec, suite, dataset, split, setting, metric), parts in units.items():
        if len(parts) < 2:
            continue
        groups = np.concatenate([np.full(len(q), key, dtype=object) for key, q, _, _ in parts])
        clusters = np.concatenate([q for _, q, _, _ in parts])
        row = paired_row(np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]),
                         groups=groups, clusters=clusters, test=test, lower_is_better=metric in LOWER_IS_BETTER,
                         n_resamples=n_resamples, seed=seed)
        rows.append({"kind": "macro", "spec": str(spec), "suite": suite, "dataset": dataset, "split": split,
                     "setting": setting, "pair": f"macro of {len(parts)}", "metric": metric, **row})
    table = pd.DataFrame(rows)
    if table.empty:
        raise ValueError(f"{a.label} and {b.label}: no query scored by both on the shared tasks")
    table["p_holm"] = np.nan
    for _, index in table.groupby(["kind", "spec"]).groups.items():
        table.loc[index, "p_holm"] = stats.holm(table.loc[index, "p"].to_numpy())
    # Each setting's macro row after its tasks, metric by metric as asked.
    order = {str(spec): i for i, spec in enumerate(metrics or [None])}
    table = table.assign(order=table["spec"].map(order), macro=table["kind"] == "macro").sort_values(
        ["order", "suite", "dataset", "split", "setting", "macro"], kind="stable")
    n_tasks = int(table[table["kind"] == "task"].groupby("spec").size().max())
    family = " (one family per metric)" if len(order) > 1 else ""
    exact = " (exact when 2^n <= resamples)" if test == "permutation" else ""
    legend = [f"A = {a.label} ({a.folder}), B = {b.label} ({b.folder})",
              f"delta = A - B; 95% CI of the mean delta: paired percentile bootstrap ({n_resamples} resamples, seed "
              f"{seed}); p: two-sided {TESTS[test]}{exact}"
              + f"; p_holm: Holm over the {n_tasks} task(s) compared{family}; wins / ties / losses: queries where A is "
              f"better / equal / worse"]
    if (table["kind"] == "macro").any():
        legend.append("macro of N: the mean over the setting's N tasks (languages or pairs) of their means; its test "
                      "and interval pool the per-query scores of all N tasks (weight 1 / (N x the task's queries)), "
                      "resampled by question id so that a question's versions in several tasks move together; "
                      "n counts (task, query) units; Holm over the macro rows on their own")
    if table["metric"].isin(LOWER_IS_BETTER).any():
        legend.append(f"{', '.join(LOWER_IS_BETTER)}: lower is better (a win is a lower value for A)")
    return Comparison(table.set_index(INDEX)[COLUMNS], legend, notes)


def render(comparison: Comparison, fmt: str = "text") -> tuple[str, list[str]]:
    """(the table in `fmt` with its legend, the notes); csv and LaTeX tables come bare, their legend with the notes,
    so that the output parses as it stands."""
    from bench.cli.tables import format_table

    table = format_table(comparison.table, fmt, 4)
    if fmt in ("csv", "latex"):
        return table, comparison.legend + comparison.notes
    return "\n".join([table, "", *comparison.legend]), comparison.notes
