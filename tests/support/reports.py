"""A synthetic experiment's results (tidy rows, per-query scores, manifests) for report tests: models with
known offsets over shared per-question difficulties, so that the paired tests have a known answer."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.results import TIDY_COLUMNS, ResultStore

LANGS = ("en", "de", "es")


QUESTIONS = [f"q{i:02d}" for i in range(24)]


RESAMPLES = 300


@dataclass
class Model:
    name: str
    trainer: str = "none"
    seed: int | None = None
    alpha: float | None = None
    offset: float = 0.0          # added to every score in [0, 1]
    bias: float = 1.0            # multiplies the rank distance
    noise: float = 0.02
    train_data: str = "mlqa-r"
    batches: dict = field(default_factory=dict)
    leaked: int = 0              # XQuAD-R candidates also in training (leakage audit)
    datasets: tuple = ("xquad-r", "scifact")
    drop_pairs: tuple = ()       # cross pairs not scored (a partial model)
    variant: str = ""            # a run-id suffix such as "+bf16"

    @property
    def base_model(self) -> str:
        return self.name if self.trainer == "none" else "me5-small"


def default_models(hybrid=0.15, mtl=0.05, mono=0.0, xy=0.0, hybrid_bias=0.5, mono_bias=1.0) -> list[Model]:
    trained = []
    for seed in (1, 2, 3):  # three seeds a strategy: the fewest a comparison may decide on
        trained += [Model(f"hybrid-a0.5-me5-small-mlqa-r-s{seed}-10steps", "hybrid", seed, 0.5, hybrid,
                          bias=hybrid_bias, batches={"retrieval:mono": 5, "retrieval:cross": 5}),
                    Model(f"mtl-me5-small-mlqa-r-s{seed}-10steps", "mtl", seed, offset=mtl,
                          batches={"mono:mono": 10, "cross:cross": 10, "translation:cross": 10})]
    trained += [Model(f"xx-mono-me5-small-mlqa-r-s{seed}-10steps", "xx-mono", seed, offset=mono, bias=mono_bias,
                      batches={"retrieval:mono": 10}) for seed in (1, 2, 3)]
    trained += [Model(f"xy-me5-small-mlqa-r-s{seed}-10steps", "xy", seed, offset=xy,
                      batches={"retrieval:cross": 10}) for seed in (1, 2, 3)]
    return [Model("bm25", offset=-0.3, bias=5.0), Model("me5-small", offset=-0.1, bias=2.0), *trained]


def difficulty(task: str) -> np.ndarray:
    """The per-question base score of a task, shared by every model (what makes the tests paired)."""
    rng = np.random.default_rng(zlib.crc32(task.encode()))
    return rng.uniform(0.3, 0.6, len(QUESTIONS))


def write_experiment(name: str, models: list[Model], definition: dict | None = None) -> dict:
    """Tidy CSVs, per-query parquet files and training manifests; returns the per-query values written,
    (model, dataset, setting, query_lang, doc_lang, metric) -> array over QUESTIONS."""
    store = ResultStore(name)
    written = {}
    for model in models:
        rng = np.random.default_rng(zlib.crc32(model.name.encode()))
        run_id = model.name if model.trainer == "none" else f"{model.name}@abcd1234{model.variant}"
        for dataset, setting, q, d, metrics in tasks(model):
            per_query = []
            rows = []
            for metric in metrics:
                base = difficulty(f"{dataset}{setting}{q}{d}{metric}")
                if metric == "rank_distance":
                    values = np.round(base * 1000 * model.bias)
                else:
                    values = np.clip(base + model.offset + rng.normal(0, model.noise, len(base)), 0, 1)
                written[(model.name, dataset, setting, q, d, metric)] = values
                per_query += [(run_id, dataset, setting, q, d, qid, metric, v) for qid, v in zip(QUESTIONS, values)]
                row = dict.fromkeys(TIDY_COLUMNS, "")
                row.update(experiment=name, run_id=run_id, model=model.name, base_model=model.base_model,
                           trainer=model.trainer, alpha=model.alpha, seed=model.seed,
                           suite="beir" if dataset == "scifact" else dataset, dataset=dataset, split="test",
                           setting=setting, query_lang=q, doc_lang=d, metric=metric, value=float(values.mean()),
                           n_queries=len(values), bench_version="0.1.0", git_sha="test", created_at="2026-01-01")
                rows.append(row)
            stem = store.folder / run_id / f"{dataset}__test__{setting}__{q}-{d}"
            stem.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows, columns=TIDY_COLUMNS).to_csv(stem.with_suffix(".csv"), index=False)
            pd.DataFrame(per_query, columns=["run_id", "dataset", "setting", "query_lang", "doc_lang", "query_id",
                                             "metric", "value"]).to_parquet(f"{stem}.per_query.parquet")
        if model.trainer != "none":
            (store.folder / run_id / "training_manifest.json").write_text(json.dumps(manifest(model)))
    if definition is not None:
        import yaml

        (store.folder / "experiment.yaml").write_text(yaml.safe_dump(definition))
    return written


def tasks(model: Model):
    if "xquad-r" in model.datasets:
        for lang in LANGS:
            yield "xquad-r", "mono", lang, lang, ("map", "recall@1")
        for q in LANGS:
            for d in LANGS:
                if q != d and (q, d) not in model.drop_pairs:
                    yield "xquad-r", "cross", q, d, ("map", "recall@1")
        for lang in LANGS:
            yield "xquad-r", "multi", lang, "multi", ("map", "recall@10", "rank_distance")
    for dataset in model.datasets:
        if dataset != "xquad-r":
            yield dataset, "mono", "en", "en", ("ndcg@10", "recall@100")


def manifest(model: Model) -> dict:
    side = lambda n, hits: {"n": n, "exact": hits, "normalised": hits}  # noqa: E731
    return {
        "trainer": model.trainer, "alpha": model.alpha, "seed": model.seed, "base_model": "me5-small",
        "train_data": model.train_data, "langs": ["en", "de"],
        "options": {"steps": 10, "batch_size": 8, "max_seq_length": 32, "lr": 3e-5, "freeze_embeddings": True},
        "data": {"mono_pairs": 100, "cross_pairs": 200},
        "leakage": {"sets": {"xquad-r": {"questions": side(72, 0), "candidates": side(500, model.leaked),
                                         "examples": model.leaked},
                             "scifact": {"questions": side(24, 0), "candidates": side(1000, 0), "examples": 0}}},
        "batches": {"counts": model.batches},
        "loss_curve": [{"step": s, "loss": 2.0 / s} for s in (1, 5, 10)],
    }


def by_id(results) -> dict:
    return {v.id: v for v in results}
