"""`training_manifest.json`: what a checkpoint records of the run that made it. Everything downstream reads a run's
facts from here (trainer, alpha, seed, precision, lengths, data, batches drawn, pace), never from its name."""

from __future__ import annotations

import platform
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from bench import __version__
from bench.train.checkpoint import code_fingerprint
from bench.train.options import TrainOptions, base_name
from bench.train.record import RunRecord


def training_manifest(options: TrainOptions, prep, record: RunRecord, *, location, objective, weights,
                      own_max_seq_length: int | None, frozen: int, params: list, device,
                      kinds_agree: bool) -> dict:
    """The manifest of a finished run; `prep` is run.Prepared (what train() settled before loading the model),
    `params` the trained parameters, `kinds_agree` whether every rank drew the same batch kinds."""
    import torch
    import transformers
    from sentence_transformers import __version__ as st_version

    from bench.data.pairs import examples_fingerprint
    from bench.digest import folder_fingerprint
    from bench.results import git_sha
    from bench.retrieval.dense.loading import device_name

    spec, examples, parallel = prep.spec, prep.examples, prep.parallel
    train_seconds = record.seconds()
    counts = Counter(f"{b['role']}:{b['kind']}" for b in record.batches)
    return {
        "complete": True,
        "run_id": prep.run_id, "trainer": spec.name, "alpha": prep.alpha, "seed": options.seed,
        "base_model": base_name(options.base), "base_model_location": str(location),
        "base_model_fingerprint": (folder_fingerprint(Path(location)) if Path(location).is_dir()
                                   else f"hf:{location}"),
        "train_data": options.train_data, "langs": list(prep.langs), "eval_data": list(prep.eval_data),
        "options": prep.identity,
        "precision": options.precision,
        "max_seq_length": {"training": options.max_seq_length, "saved": own_max_seq_length},
        "dev_split": prep.dev_split.record() if prep.dev_split is not None else None,
        "data": {"fingerprint": examples_fingerprint(examples + parallel), "pairs": len(examples),
                 "mono_pairs": sum(ex.is_mono for ex in examples),
                 "cross_pairs": sum(not ex.is_mono for ex in examples),
                 "left_out_without_hard_negative": prep.dropped, "parallel_pairs": len(parallel),
                 "tatoeba_langs": prep.tatoeba_langs,
                 "prompts": {"query": objective.query_prompt, "document": objective.document_prompt}},
        "code_fingerprint": code_fingerprint(),
        "leakage": prep.leakage,
        "batches": {"counts": dict(sorted(counts.items())), "per_step": record.batches,
                    # Pairs per step and role: mtl's parts share one batch of batch_size (mtl-3batch: three).
                    "pairs_per_step": {role: sampler.batch_size for role, sampler in prep.samplers.items()},
                    "recorded_rank": prep.rank, "kinds_agree_across_ranks": kinds_agree},
        "loss_curve": record.curve,
        "timeline": record.timeline,
        "frozen_weights": frozen,
        "trainable_parameters": sum(p.numel() for p in params),
        "heads": "heads/" if spec.uses_heads else None,
        "steps": options.steps, "world_size": prep.world, "device": str(device), "device_name": device_name(device),
        "torch_threads": torch.get_num_threads(),
        "train_seconds": round(train_seconds, 3),
        "resumed_at_steps": record.resumes,  # cut off and continued from a saved state (resume.py)
        "steps_per_second": round(options.steps / train_seconds, 4) if train_seconds > 0 else None,
        "versions": {"bench": __version__, "torch": torch.__version__, "sentence-transformers": st_version,
                     "transformers": transformers.__version__, "python": platform.python_version()},
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_sha": git_sha(),
    }
