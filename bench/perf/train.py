"""Training throughput: every registered trainer's step loop, in each precision, beside a plain
SentenceTransformerTrainer run on the same data (with bf16=True for the bf16 row)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.perf.options import Log, PerfOptions, median
from bench.perf.pipelines import model_path


def train_throughput(options: PerfOptions, work: Path, log: Log) -> dict:
    from bench.train.trainers import TRAINERS

    trainers = list(options.trainers or TRAINERS)
    rows: dict[str, dict] = {}
    for precision in options.precisions:
        results: dict[str, list[float]] = {name: [] for name in ["plain-sentence-transformers", *trainers]}
        for rep in range(options.reps):
            results["plain-sentence-transformers"].append(plain_st_steps_per_second(options, work, precision))
            for name in trainers:
                results[name].append(trainer_steps_per_second(name, options, work / f"models-{rep}", precision))
            log(f"  train {precision} rep {rep + 1}/{options.reps}: "
                + ", ".join(f"{n} {v[-1]:.3f}" for n, v in results.items()))
        plain = median(results["plain-sentence-transformers"])
        for name, values in results.items():
            sps = median(values)
            rows[f"{name}@{precision}"] = {
                "trainer": name, "precision": precision, "steps_per_second": round(sps, 4),
                "per_rep": [round(v, 4) for v in values],
                "overhead_vs_plain": round(plain / sps - 1, 3) if name != "plain-sentence-transformers" else 0.0,
                # mtl-3batch encodes three batches per step (mono, cross, parallel pairs) by design.
                "more_work_per_step": name.endswith("3batch")}
    return {"model": options.train_model, "train_data": options.train_data, "steps": options.train_steps,
            "batch_size": options.train_batch_size, "max_seq_length": options.train_seq_length, "trainers": rows}


def bf16_speedups(train: dict) -> dict[str, float]:
    """Each trainer's bf16 steps/s over its fp32 steps/s."""
    rows = train.get("trainers") or {}
    out = {}
    for key, row in rows.items():
        fp32 = rows.get(f"{row['trainer']}@fp32")
        if row["precision"] == "bf16" and fp32:
            out[row["trainer"]] = round(row["steps_per_second"] / fp32["steps_per_second"], 3)
    return out


def _train_options(trainer: str, options: PerfOptions, out_dir: Path, precision: str = "fp32"):
    from bench.data.lareqa import LAREQA_LANGS
    from bench.train.run import TrainOptions

    other = next(name for name in LAREQA_LANGS if name != options.train_data)
    return TrainOptions(trainer=trainer, base=options.train_model, train_data=options.train_data,
                        steps=options.train_steps, batch_size=options.train_batch_size,
                        max_seq_length=options.train_seq_length, eval_data=(other,), out_dir=str(out_dir),
                        run_id=f"perf-{trainer}-{precision}", force=True, precision=precision)


def trainer_steps_per_second(trainer: str, options: PerfOptions, out_dir: Path, precision: str = "fp32") -> float:
    """Steps/s of the step loop as the trainer's manifest records it (data preparation and saving left out)."""
    from bench.train.run import train

    target = train(_train_options(trainer, options, out_dir, precision), log=lambda message: None)
    return float(json.loads((target / "manifest.json").read_text())["steps_per_second"])


def plain_st_steps_per_second(options: PerfOptions, work: Path, precision: str = "fp32") -> float:
    """A plain SentenceTransformerTrainer run with MultipleNegativesRankingLoss on (query, positive, hard
    negative) triplets of the same training data, same model, batch size, max length, prompts and optimiser
    settings; steps/s over the step loop (first step begin to train end)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from transformers import TrainerCallback

    from bench.data.pairs import training_examples
    from bench.train.objectives import model_prompts

    opts = _train_options("xx-mono", options, work, precision)
    examples = [ex for ex in training_examples(opts.train_data, seed=opts.seed) if ex.negative is not None]
    examples = examples[:options.train_steps * options.train_batch_size]
    data = Dataset.from_dict({"anchor": [e.query for e in examples], "positive": [e.positive for e in examples],
                              "negative": [e.negative for e in examples]})
    model = SentenceTransformer(model_path(options.train_model), device="cpu")
    model.max_seq_length = options.train_seq_length
    query, document = model_prompts(model)
    marks: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            marks.setdefault("start", time.perf_counter())

        def on_train_end(self, args, state, control, **kwargs):
            marks["end"] = time.perf_counter()

    args = SentenceTransformerTrainingArguments(
        output_dir=str(work / "plain-st"), max_steps=options.train_steps,
        per_device_train_batch_size=options.train_batch_size, learning_rate=opts.lr, weight_decay=opts.weight_decay,
        warmup_steps=opts.warmup_ratio, max_grad_norm=opts.max_grad_norm, seed=opts.seed, report_to="none",
        save_strategy="no", logging_steps=max(1, options.train_steps), use_cpu=True, dataloader_drop_last=True,
        bf16=precision == "bf16",
        prompts={"anchor": query, "positive": document, "negative": document} if query or document else None)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                         loss=MultipleNegativesRankingLoss(model, scale=opts.scale), callbacks=[Clock()])
    trainer.train()
    return options.train_steps / (marks["end"] - marks["start"])
