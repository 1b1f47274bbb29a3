"""`train(options) -> Path`: fine-tune a base encoder with a registered trainer into `models/<run-id>/`.

Order of work (every check that can fail runs before the model is loaded):
options (precision included) -> base model -> output folder -> leakage refusal -> training data (less the dev
split, if asked) -> leakage audit -> samplers -> model (+ heads) -> steps -> checkpoint written into a temp
folder, renamed into place. The parts live beside this file: options.py (what a run is, no torch), ddp.py,
checkpoint.py (writing), manifest.py (what a checkpoint records), objectives.py (what a step computes),
trainers.py (the registry), record.py (the loss curve, pace and batches, step by step), resume.py (a run
cut off mid-way continues from its last saved step, to the same weights).

Precision: with --precision bf16 the encoder's forward (and so its backward) runs under torch autocast in
bf16; the weights, the optimiser state, pooling, the similarity matrix, the losses and the heads stay fp32
(objectives.Objective.embed).

Why a plain training loop rather than sentence-transformers' SentenceTransformerTrainer: the samplers
plug into it (a batch sampler yielding index lists), but the `mtl` trainer needs three differently
composed batches per optimiser step (mono, cross, parallel pairs) and the language of every text for
its language-ID head, while the Trainer feeds one batch of tokenised columns per step (language tags
would have to travel as columns); and under DDP accelerate's BatchSamplerShard deals a custom batch
sampler's batches round-robin over the ranks (batch i to rank i % world_size), so the ranks of one step
get consecutive batches of possibly different kinds unless the sampler repeats every kind world_size
times in a row. The loop below keeps sentence-transformers' model, preprocessing (prompts),
MultipleNegativesRankingLoss and save format, and the Trainer's defaults where they matter: AdamW (no
decay on biases and norms), linear warmup and decay, gradient clipping at 1.0.

DDP: launched with `torchrun --nproc-per-node N -m bench train ...` (or `accelerate launch -m bench
train ...`), each process reads RANK / WORLD_SIZE / LOCAL_RANK, joins a process group (nccl on GPUs,
gloo on CPU), draws the same batch kind at every step as the other ranks (see samplers.py), takes its
own slice of the global batch and averages gradients with an all-reduce before each optimiser step.
Rank 0 writes the checkpoint. --batch-size is per rank.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

from bench import interrupts
from bench.train.checkpoint import code_fingerprint, save_checkpoint, write_checkpoint
from bench.train.ddp import all_reduce_mean, check_ranks_agree, distributed_context
# Re-exported: what a run is, for the callers that import it from here.
from bench.train.options import (DEFAULT_ALPHA, MANIFEST, TrainOptions, base_name, existing_run,  # noqa: F401
                                 identity, make_run_id, models_root, mtl_weights, run_id_of, same_run, train_device,
                                 validate)
from bench.train.record import RunRecord
from bench.train.trainers import TrainerSpec

# ------------------------------------------------------------------------------------------ training


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def freeze_word_embeddings(model) -> int:
    """requires_grad=False on the word-embedding matrix; returns how many weights it froze."""
    first = model[0]
    auto = getattr(first, "auto_model", None)
    if auto is None:
        raise ValueError("--freeze-embeddings needs a Transformer first module")
    weight = auto.get_input_embeddings().weight
    weight.requires_grad_(False)
    return weight.numel()


def _optimizer(model, classifier, options: TrainOptions):
    import torch

    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            # As the transformers Trainer: no weight decay on biases and normalisation weights.
            (no_decay if p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "weight_decay": options.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if classifier is not None:
        groups.append({"params": list(classifier.parameters()), "weight_decay": options.weight_decay,
                       "lr": options.head_lr})
    # Fused, as the transformers Trainer's default optimiser (adamw_torch_fused): one kernel over all tensors
    # instead of a Python loop over ~200 of them, which on a CPU costs about a tenth of a me5-small step.
    return torch.optim.AdamW(groups, lr=options.lr, fused=True)


def train(options: TrainOptions, log=print) -> Path:
    """Train and write `<models root>/<run-id>/`; returns its path (also when it was already there)."""
    wall_start = time.perf_counter()
    spec, alpha = validate(options)

    from bench.data.lareqa import load_lareqa
    from bench.data.pairs import question_pairs, tatoeba_examples, training_examples
    from bench.models.registry import resolve_model
    from bench.train.leakage import audit, check_leak, default_eval_data, load_eval_sets, summary

    base = resolve_model(options.base)
    if base.kind != "dense" or base.locate is None:
        raise ValueError(f"cannot train {options.base!r} ({base.kind}); give a dense model: me5-small, minilm-l6, "
                         "or a sentence-transformers folder")
    run_id = run_id_of(options, alpha)
    root = models_root(options.out_dir)
    target = root / run_id
    wanted = identity(options, alpha)
    found = existing_run(target)
    if found is not None and not options.force:
        if found and same_run(found.get("options"), wanted):
            log(f"{target} already holds this run (same options); --force to train it again")
            return target
        what = "a different run" if found else "files that are not a finished run"
        raise ValueError(f"{target} already holds {what}; pass --force to overwrite it or --run-id to name this one")

    eval_data = tuple(options.eval_data) if options.eval_data else default_eval_data(options.train_data)
    check_leak(options.train_data, eval_data, options.allow_leak)

    # Training data.
    data = load_lareqa(options.train_data, langs=options.langs)
    dev_split = None
    if options.dev_fraction:
        from bench.train.devsplit import split_dev

        data, dev_split = split_dev(data, options.dev_fraction)
        log(f"dev split: {dev_split.describe()}; left out of training")
    langs = data.langs
    every = training_examples(data, hard_negatives=options.hard_negatives, seed=options.seed)
    examples = [ex for ex in every if ex.negative is not None] if options.hard_negatives else every
    dropped = len(every) - len(examples)
    if dropped:
        log(f"{dropped} of {len(every)} pairs have no hard negative (one-sentence paragraph): left out "
            f"(--no-hard-negatives trains on all pairs without negatives)")
    parallel = []
    tatoeba_langs: list[str] = []
    if spec.uses_heads and options.w_translation > 0:
        parallel = question_pairs(data)
        if options.tatoeba is not None:
            tatoeba_langs = [lang for lang in (options.tatoeba or langs) if lang not in ("en", "eng")]
            parallel += tatoeba_examples(tatoeba_langs)

    # Leakage audit, before any training.
    eval_sets, unavailable = load_eval_sets(eval_data)
    leakage = audit(examples + parallel, eval_sets, unavailable)
    log(summary(leakage))

    rank, world, local = distributed_context()
    from bench.train.trainers import SamplerArgs

    samplers = spec.samplers(examples, parallel, SamplerArgs(
        batch_size=options.batch_size, seed=options.seed, num_steps=options.steps, langs=langs, rank=rank,
        world_size=world, alpha=alpha if alpha is not None else DEFAULT_ALPHA))

    import torch

    threads = torch.get_num_threads()
    if options.threads:
        # On a shared CPU, fewer threads than cores can be much faster (no oversubscription).
        torch.set_num_threads(options.threads)
    try:
        _fit(options, Prepared(spec, alpha, base, run_id, target, wanted, eval_data, langs, examples, parallel,
                               dropped, tatoeba_langs, leakage, samplers, rank, world, local, dev_split),
             wall_start, log)
    finally:
        torch.set_num_threads(threads)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        # Without an explicit teardown gloo's threads can outlive the interpreter and abort the process.
        dist.destroy_process_group()
    return target


@dataclass
class Prepared:
    """What train() settles before loading the model."""

    spec: TrainerSpec
    alpha: float | None
    base: object  # the base model's ModelSpec
    run_id: str
    target: Path
    identity: dict
    eval_data: tuple[str, ...]
    langs: tuple[str, ...]
    examples: list
    parallel: list
    dropped: int  # pairs left out for want of a hard negative
    tatoeba_langs: list[str]
    leakage: dict
    samplers: dict
    rank: int
    world: int
    local: int
    dev_split: object = None  # devsplit.DevSplit when questions were held out


def _fit(options: TrainOptions, prep: Prepared, wall_start: float, log) -> None:
    """Load the model, take the steps, and (rank 0) write the checkpoint."""
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer
    from tqdm.auto import tqdm

    from bench.train import resume as resuming
    from bench.train.heads import LanguageClassifier
    from bench.train.manifest import training_manifest
    from bench.train.objectives import OBJECTIVES, Objective

    spec, run_id, target, world = prep.spec, prep.run_id, prep.target, prep.world
    device = train_device(options, prep.local)
    seed_everything(options.seed)
    location = prep.base.locate()
    model = SentenceTransformer(location, device=device)
    own_max_seq_length = model.max_seq_length  # what the checkpoint is saved with (checkpoint.save_checkpoint)
    if options.max_seq_length:
        model.max_seq_length = options.max_seq_length
    frozen = freeze_word_embeddings(model) if options.freeze_embeddings else 0
    weights = mtl_weights(options)
    classifier = None
    if spec.uses_heads and weights.lid > 0:
        classifier = LanguageClassifier(model.get_embedding_dimension(), prep.langs, weights.reversal).to(device)
    objective = Objective(model, prep.examples, prep.parallel, scale=options.scale, weights=weights,
                          classifier=classifier, precision=options.precision)
    optimizer = _optimizer(model, classifier, options)
    scheduler = transformers.get_linear_schedule_with_warmup(
        optimizer, math.ceil(options.warmup_ratio * options.steps), options.steps)
    params = [p for group in optimizer.param_groups for p in group["params"]]

    model.train()
    if classifier is not None:
        classifier.train()
    first, record = 0, RunRecord()
    resumable = resuming.ResumePoint(target, prep.identity, code_fingerprint()) if world == 1 else None
    saved = resumable.load(log) if resumable else None
    if saved:
        model.load_state_dict(saved["model"])
        if classifier is not None:
            classifier.load_state_dict(saved["classifier"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        resuming.restore_random_states(saved["random"])
        first, record = saved["step"], RunRecord.resumed(saved)
    last_save = time.perf_counter()

    def save_state(done: int) -> None:
        resumable.save({"step": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "classifier": classifier.state_dict() if classifier is not None else None,
                        "scheduler": scheduler.state_dict(), "random": resuming.random_states(), **record.state()})

    def mean_over_ranks(means: list[float]) -> list[float]:
        tensor = torch.tensor(means, dtype=torch.float64, device=device)
        all_reduce_mean([tensor], world)
        return tensor.tolist()

    # Ctrl-C (or SIGTERM) finishes the step under way and saves the state, so a stop loses no training.
    stopping = interrupts.deferred(resuming.STOP_GRACE, "finishing this training step and saving its state",
                                   when=resumable is not None)  # DDP keeps no state: it stops at once
    progress = tqdm(range(first, options.steps), desc=f"train {run_id}", disable=prep.rank != 0, mininterval=2,
                    initial=first, total=options.steps)
    with stopping as stop:
        for step in progress:
            batches = {role: sampler.batch(step) for role, sampler in prep.samplers.items()}
            record.batches += [b.record() for b in batches.values()]
            terms = OBJECTIVES[spec.objective](objective, batches)
            total = sum(w * t for w, t in terms.values() if w)
            if not torch.isfinite(total):
                raise FloatingPointError(f"the loss is {total.item()} at step {step}; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if world > 1:
                for p in params:  # a parameter unused this step still joins the all-reduce
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                all_reduce_mean([p.grad for p in params], world)
            if options.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, options.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            optimizer.step()
            scheduler.step()
            record.add({"loss": total.item(), **{name: float(value.item()) for name, (_, value) in terms.items()}})
            if (step + 1) % options.log_every == 0 or step + 1 == options.steps:
                point = record.log(step + 1, lr, mean_over_ranks if world > 1 else None)
                progress.set_postfix(loss=f"{point['loss']:.4f}")
            if stop.requested:  # after the last step too: the next run then only writes the checkpoint
                save_state(step + 1)
                interrupts.progress.notes.append(
                    f"{run_id}: training state saved at step {step + 1} of {options.steps} in {resumable.folder}")
                raise stop.stop()
            if resumable and step + 1 < options.steps and time.perf_counter() - last_save >= resuming.SAVE_SECONDS:
                save_state(step + 1)
                last_save = time.perf_counter()
    kinds_agree = check_ranks_agree([(b["step"], b["role"], b["kind"]) for b in record.batches], world)

    if prep.rank == 0:
        manifest = training_manifest(options, prep, record, location=location, objective=objective,
                                     weights=weights, own_max_seq_length=own_max_seq_length, frozen=frozen,
                                     params=params, device=device, kinds_agree=kinds_agree)
        write_checkpoint(target, options.force, lambda folder: save_checkpoint(
            folder, model, own_max_seq_length, classifier, spec.uses_heads, weights, manifest, wall_start))
        if resumable:
            resumable.discard()
        log(f"wrote {target} ({options.steps} steps, {manifest['steps_per_second']} steps/s, "
            f"final loss {record.curve[-1]['loss']:.4f})")


def list_trainers() -> list[str]:
    from bench.train.trainers import TRAINERS

    return [f"{s.name:<10} {s.description}" + (" [--alpha]" if s.uses_alpha else "")
            + (" [heads, --tatoeba]" if s.uses_heads else "") for s in TRAINERS.values()]
