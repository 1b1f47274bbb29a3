"""The proof that bf16 may stand in for fp32 (issue 10): the same model on the same tasks in both precisions,
side by side, from the stored tidy rows and per-query scores; and one training run in each precision beside
the seed-to-seed spread of the committed grid. Writes results/precision/{encoding,training}.csv and README.md:

    python -m bench.precision_proof

Bars: nDCG@10 and LAReQA mAP of bf16 within 0.002 of fp32 (macro over a dataset's tasks in one setting);
bf16 training within the seed spread (sd over seeds of the same strategy)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench.paths import experiment_root
from bench.protocol import DEFAULT_BEIR as BEIR_SETS, LAREQA_SETS

BAR = 0.002
PRIMARY = ("ndcg@10", "map")  # the metrics the bars apply to: BEIR's and LAReQA's main scores
# (label, fp32 (experiment, run id), bf16 (experiment, run id), datasets): the committed fp32 runs are the
# reference; issue 10 asks for both models on the three BEIR sets and me5-small on the whole lareqa suite.
ENCODING_PAIRS = (
    ("minilm-l6", ("beir-baselines", "minilm-l6"), ("precision", "minilm-l6+bf16"), BEIR_SETS),
    ("me5-small", ("beir-baselines", "me5-small"), ("precision", "me5-small+bf16"), BEIR_SETS),
    ("me5-small", ("multilingual-baselines", "me5-small"), ("precision", "me5-small+bf16"), LAREQA_SETS),
)
TRAINED = "hybrid-a0.5-me5-small-mlqa-r-s1-300steps"  # trained in fp32; "-bf16" appended: trained in bf16
SEED_SPREAD = ("paper", "hybrid-a0.5-me5-small-mlqa-r-s{seed}-300steps@*")


def _read(folder: Path, pattern: str) -> pd.DataFrame:
    paths = sorted(folder.glob(pattern))
    return pd.concat([pd.read_csv(p) if p.suffix == ".csv" else pd.read_parquet(p) for p in paths],
                     ignore_index=True) if paths else pd.DataFrame()


def compare_runs(fp32: Path, bf16: Path, datasets: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per (dataset, setting, metric) the two run folders share (of `datasets`, default all): macro fp32
    and bf16 values, their difference, the largest difference of one task (a language or pair) and of one
    query."""
    rows_a, rows_b = _read(fp32, "*.csv"), _read(bf16, "*.csv")
    if datasets is not None and not rows_a.empty:
        rows_a = rows_a[rows_a["dataset"].isin(datasets)]
    if rows_a.empty or rows_b.empty:
        return pd.DataFrame()
    keys = ["dataset", "setting", "query_lang", "doc_lang", "metric"]
    tasks = rows_a[keys + ["value"]].merge(rows_b[keys + ["value"]], on=keys, suffixes=("_fp32", "_bf16"))
    tasks["diff"] = tasks["value_bf16"] - tasks["value_fp32"]
    queries = _read(fp32, "*.per_query.parquet").merge(
        _read(bf16, "*.per_query.parquet"), on=keys + ["query_id"], suffixes=("_fp32", "_bf16"))
    queries["abs_diff"] = (queries["value_bf16"] - queries["value_fp32"]).abs()
    out = tasks.groupby(["dataset", "setting", "metric"], sort=True).agg(
        tasks=("diff", "size"), fp32=("value_fp32", "mean"), bf16=("value_bf16", "mean"),
        max_task_abs_diff=("diff", lambda d: float(np.abs(d).max()))).reset_index()
    out["diff"] = out["bf16"] - out["fp32"]
    per_query = queries.groupby(["dataset", "setting", "metric"])["abs_diff"].agg(
        max_query_abs_diff="max", queries_changed=lambda d: int((d > 1e-9).sum()), queries="size").reset_index()
    out = out.merge(per_query, on=["dataset", "setting", "metric"], how="left")
    out["within_bar"] = np.where(out["metric"].isin(PRIMARY), out["diff"].abs() <= BAR, pd.NA)
    return out


def missing_tasks(root: Path) -> list[str]:
    """Tasks of the fp32 reference runs that have no bf16 counterpart yet: the proof is incomplete without them."""
    out = []
    for _, (exp_a, run_a), (exp_b, run_b), datasets in ENCODING_PAIRS:
        have = {p.name for p in (root / exp_b / run_b).glob("*.csv")}
        out += [f"{exp_b}/{run_b}/{p.stem}" for p in sorted((root / exp_a / run_a).glob("*.csv"))
                if p.name not in have and p.name.split("__")[0] in datasets]
    return out


def encoding_table(root: Path) -> pd.DataFrame:
    frames = []
    for label, (exp_a, run_a), (exp_b, run_b), datasets in ENCODING_PAIRS:
        table = compare_runs(root / exp_a / run_a, root / exp_b / run_b, datasets)
        if not table.empty:
            frames.append(table.assign(model=label, fp32_run=f"{exp_a}/{run_a}", bf16_run=f"{exp_b}/{run_b}"))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _one(root: Path, pattern: str) -> Path | None:
    found = sorted(root.glob(pattern))
    return found[0] if found else None


def seed_spread(root: Path) -> pd.DataFrame:
    """sd over seeds 1-3 of the committed grid's hybrid (MLQA-R) per (dataset, setting, metric), macro values."""
    experiment, pattern = SEED_SPREAD
    per_seed = []
    for seed in (1, 2, 3):
        folder = _one(root / experiment, pattern.format(seed=seed))
        rows = _read(folder, "*.csv") if folder else pd.DataFrame()
        if not rows.empty:
            macro = rows.groupby(["dataset", "setting", "metric"])["value"].mean().rename(seed)
            per_seed.append(macro)
    if len(per_seed) < 2:
        return pd.DataFrame()
    frame = pd.concat(per_seed, axis=1)
    return pd.DataFrame({"seed_sd": frame.std(axis=1, ddof=1), "seeds": frame.notna().sum(axis=1)}).reset_index()


def training_table(root: Path) -> pd.DataFrame:
    """The fp32-trained and bf16-trained checkpoints (same seed, both scored in bf16) and the seed spread."""
    fp32 = _one(root / "precision", f"{TRAINED}@*+bf16")
    bf16 = _one(root / "precision", f"{TRAINED}-bf16@*+bf16")
    if fp32 is None or bf16 is None:
        return pd.DataFrame()
    table = compare_runs(fp32, bf16).rename(columns={"fp32": "trained_fp32", "bf16": "trained_bf16"})
    spread = seed_spread(root)
    if not spread.empty:
        table = table.merge(spread, on=["dataset", "setting", "metric"], how="left")
        table["within_seed_sd"] = table["diff"].abs() <= table["seed_sd"]
    return table.assign(fp32_run=f"precision/{fp32.name}", bf16_run=f"precision/{bf16.name}")


def _markdown(table: pd.DataFrame, columns: list[str]) -> str:
    shown = table[[c for c in columns if c in table.columns]]
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    for row in shown.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.5f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def write(root: Path | None = None) -> Path:
    from bench.results import atomic_write

    root = root or experiment_root("precision")
    out = root / "precision"
    encoding, training = encoding_table(root), training_table(root)
    if encoding.empty:
        raise ValueError(f"no bf16 runs beside fp32 ones under {root}; run the commands in {out}/README.md first")
    atomic_write(out / "encoding.csv", lambda p: encoding.to_csv(p, index=False))
    if not training.empty:
        atomic_write(out / "training.csv", lambda p: training.to_csv(p, index=False))
    primary = encoding[encoding["metric"].isin(PRIMARY)]
    missing = missing_tasks(root)
    text = README.format(
        missing=("Not run yet (the proof is incomplete without them): " + ", ".join(missing) + ".") if missing
        else "Every task of the fp32 reference runs has its bf16 counterpart.",
        encoding=_markdown(primary, ["model", "dataset", "setting", "metric", "tasks", "fp32", "bf16", "diff",
                                     "max_task_abs_diff", "max_query_abs_diff", "queries_changed", "queries",
                                     "within_bar"]),
        verdict="all within" if bool(primary["within_bar"].all()) else "NOT all within",
        training=_markdown(training, ["dataset", "setting", "metric", "trained_fp32", "trained_bf16", "diff",
                                      "seed_sd", "within_seed_sd", "max_query_abs_diff"])
        if not training.empty else "(not run yet)")
    atomic_write(out / "README.md", lambda p: p.write_text(text))
    return out / "README.md"


README = """# bf16 against fp32

Written by `python -m bench.precision_proof` from the stored runs; every other metric is in `encoding.csv`
and `training.csv`. bf16 = torch autocast on this CPU's AVX-512 BF16 (bench/precision.py): bf16 matmuls,
fp32 weights (encoding: Linear weights cast once, bitwise the same products), fp32 pooling, normalisation,
similarities, losses and stored vectors.

## Encoding: the same model, fp32 (committed baselines) against bf16

Bar: |bf16 - fp32| <= 0.002 on nDCG@10 (BEIR) and mAP (LAReQA), macro over the tasks of a dataset and
setting. Result: {verdict} the bar. {missing} `max_task_abs_diff` is the largest difference of one language or pair,
`max_query_abs_diff` of one query; `queries_changed` counts queries whose score moved at all.

{encoding}

Commands: `python -m bench run --suite beir --model minilm-l6 me5-small --precision bf16 --experiment
precision`, `python -m bench run --suite lareqa --model me5-small --precision bf16 --experiment precision`
(the fp32 side is `results/beir-baselines/` and `results/multilingual-baselines/`).

## Training: hybrid, me5-small, MLQA-R, seed 1, 300 steps, trained in fp32 and in bf16

Both checkpoints scored in bf16 (proven equal above). `seed_sd`: sd over seeds 1-3 of the same strategy in
`results/paper/` (trained in fp32; its SciFact scores were taken at 128 tokens, so that spread is a guide).

{training}

Commands: `python -m bench train --trainer hybrid --base me5-small --train-data mlqa-r --seed 1 --precision
fp32|bf16`, then `python -m bench run --suite xquad-r --model models/<run> --precision bf16 --experiment
precision` and the same with `--suite beir --datasets scifact`.
"""


if __name__ == "__main__":
    try:
        print(f"wrote {write()}")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
