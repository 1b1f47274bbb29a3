"""Whole pipelines, each alone in a fresh process (bench/perf/worker.py) so that its wall time and peak memory
are its own: ours cold (fp32 and bf16), ours warm, beir, mteb, sentence-transformers' own bf16 path; and the
cold pipeline on growing corpora."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.perf.options import Log, PerfOptions, median


@dataclass
class Pipeline:
    """One `python -m bench.perf.worker` invocation."""

    name: str  # ours | beir | mteb | st-bf16
    model: str
    model_path: str
    datasets: tuple[str, ...]
    docs: int = 0
    max_seq_length: int | None = None
    batch_size: int = 32
    precision: str = "fp32"  # ours only: the others' precision is their name's
    env: dict = field(default_factory=dict)

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "bench.perf.worker", self.name, "--model", self.model, "--model-path",
                   self.model_path, "--datasets", *self.datasets, "--docs", str(self.docs),
                   "--batch-size", str(self.batch_size), "--precision", self.precision]
        if self.max_seq_length:
            command += ["--max-seq-length", str(self.max_seq_length)]
        return command


def run_pipeline(pipeline: Pipeline, log_file: Path) -> dict:
    """Run the worker; wall time from outside (process start to exit), peak memory as the worker reports its
    own (VmHWM: see worker.peak_rss_mb for why not the child's ru_maxrss)."""
    import time

    env = {**os.environ, **pipeline.env}
    start = time.perf_counter()
    with open(log_file, "ab") as log:
        child = subprocess.run(pipeline.command(), stdout=subprocess.PIPE, stderr=log, env=env, check=False)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        tail = log_file.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"perf worker {pipeline.name} failed (exit {child.returncode}); log {log_file}:\n{tail}")
    report = json.loads(child.stdout.decode().strip().splitlines()[-1])
    return {**report, "wall_seconds": round(wall, 3), "peak_memory_mb": report["peak_rss_mb"]}


def summarise(runs: list[dict]) -> dict:
    return {"wall_seconds": median([r["wall_seconds"] for r in runs]),
            "inside_seconds": median([r["seconds"] for r in runs]),
            "peak_memory_mb": median([r["peak_memory_mb"] for r in runs]),
            "ndcg@10": runs[-1]["ndcg@10"] if runs else None,
            "wall_seconds_per_rep": [r["wall_seconds"] for r in runs],
            "peak_memory_mb_per_rep": [r["peak_memory_mb"] for r in runs]}


def model_path(name: str) -> str:
    """The model's folder, resolved (and, for me5-small, built) once here, outside any timed process."""
    from bench.models.registry import resolve_model

    return resolve_model(name).locate()


# e2e pipeline name -> (worker pipeline, precision). "warm" re-reads the cache its repetition's "cold" filled.
E2E_PIPELINES = {"cold": ("ours", "fp32"), "warm": ("ours", "fp32"), "cold-bf16": ("ours", "bf16"),
                 "beir": ("beir", "fp32"), "mteb": ("mteb", "fp32"), "st-bf16": ("st-bf16", "bf16")}


def e2e_names(options: PerfOptions) -> list[str]:
    """The e2e pipelines this run times, in the order a repetition runs them."""
    names = []
    for name, (_, precision) in E2E_PIPELINES.items():
        section = "beir" if name == "beir" else "mteb" if name == "mteb" else "warm" if name == "warm" else name
        if precision in options.precisions and section not in options.skip:
            names.append(name)
    return names


def end_to_end(options: PerfOptions, work: Path, log: Log) -> dict:
    """Every e2e pipeline on the same task, interleaved per repetition (a slow spell of the machine falls on
    all of them, not on one)."""
    path = model_path(options.e2e_model)
    base = Pipeline("ours", options.e2e_model, path, (options.dataset,), options.e2e_docs, options.max_seq_length,
                    options.batch_size)
    names = e2e_names(options)
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for rep in range(options.reps):
        cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
        for name in names:
            worker, precision = E2E_PIPELINES[name]
            own_cache = cache if name in ("cold", "warm") else Path(tempfile.mkdtemp(prefix="cache-", dir=work))
            pipeline = replace(base, name=worker, precision=precision, env={
                "BENCH_CACHE": str(own_cache), "BENCH_RESULTS": tempfile.mkdtemp(prefix="results-", dir=work)})
            runs[name].append(run_pipeline(pipeline, work / f"{name}.log"))
            log(f"  e2e rep {rep + 1}/{options.reps} {name}: {runs[name][-1]['wall_seconds']:.1f} s wall, "
                f"{runs[name][-1]['peak_memory_mb']:.0f} MB peak, nDCG@10 {runs[name][-1]['ndcg@10']:.5f}")
    result = {"model": options.e2e_model, "dataset": options.dataset, "docs": options.e2e_docs or "all",
              "max_seq_length": options.max_seq_length, "batch_size": options.batch_size,
              "precision": {name: E2E_PIPELINES[name][1] for name in names},
              **{name: summarise(r) for name, r in runs.items()}}
    if "warm" in runs:
        result["warm"]["encoded_texts"] = runs["warm"][-1].get("encoded_texts")
    return result


def scaling(options: PerfOptions, work: Path, log: Log) -> list[dict]:
    """The cold pipeline (fresh cache, fresh process) on growing corpora, in fp32."""
    path = model_path(options.e2e_model)
    rows = []
    for size in options.sizes:
        runs = []
        for rep in range(options.reps):
            pipeline = Pipeline("ours", options.e2e_model, path, options.scaling_datasets, size, options.max_seq_length,
                                options.batch_size, env={"BENCH_CACHE": tempfile.mkdtemp(prefix="cache-", dir=work),
                                                         "BENCH_RESULTS": tempfile.mkdtemp(prefix="results-", dir=work)})
            runs.append(run_pipeline(pipeline, work / f"scaling-{size}.log"))
            log(f"  scaling {size} docs rep {rep + 1}/{options.reps}: {runs[-1]['wall_seconds']:.1f} s, "
                f"{runs[-1]['peak_memory_mb']:.0f} MB")
        summary = summarise(runs)
        rows.append({"docs": size, "queries": runs[-1].get("queries"), **summary,
                     "encode_corpus_seconds": median([r.get("encode_corpus_seconds") or 0 for r in runs])})
    return rows
