"""What a training run is: its options, their checks, its name and its identity. No torch here, so that the
experiment planner and the CLI can name and compare runs without loading a model.

Identity: the options that change what is trained. A re-run with the same identity finds its checkpoint
done; a stored manifest is compared after the same normalisation (`canonical`), so runs recorded before
an option existed still match when they ran at that option's neutral value."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

from bench.data.lareqa import LAREQA_LANGS
from bench.paths import PROJECT_ROOT
from bench.precision import DEFAULT_PRECISION, check_precision
from bench.protocol import DEFAULT_ALPHA

MANIFEST = "manifest.json"
# Options that do not change what is trained: left out of the comparison with an existing run.
_NOT_IDENTITY = ("out_dir", "force", "run_id", "threads", "device")
# Options added after runs were recorded: left out of the identity at the value those runs had.
_NEUTRAL = {"precision": DEFAULT_PRECISION, "dev_fraction": None}
# Options only trainers with auxiliary heads (mtl) read: left out of the other trainers' identity.
_HEADS_ONLY = ("w_mono", "w_cross", "w_lid", "w_translation", "reversal", "head_lr")


@dataclass(frozen=True)
class MtlWeights:
    """The mtl trainer's loss weights and gradient-reversal strength.

    lid, reversal and translation were chosen by the dev-split sweep in results/mtl-sweep/ (its README: the
    command, the table): the language-ID head at weight 1 and lambda 0.1, no translation ranking (which, in a
    shared batch, takes a third of the pairs from retrieval); before it they were 1, 0.1 and 0.5."""

    mono: float = 1.0
    cross: float = 1.0
    lid: float = 1.0
    translation: float = 0.0
    reversal: float = 0.1  # gradient-reversal strength lambda of the language-ID head

    def __post_init__(self):
        for name, value in vars(self).items():
            if value < 0:
                raise ValueError(f"MTL weight {name} must be non-negative, got {value}")


@dataclass
class TrainOptions:
    trainer: str
    base: str
    train_data: str = "mlqa-r"
    seed: int = 1
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_seq_length: int | None = 128  # the training cut; the saved checkpoint keeps the base model's own limit
    freeze_embeddings: bool = False
    alpha: float | None = None  # hybrid only; None: DEFAULT_ALPHA
    langs: tuple[str, ...] | None = None  # training languages; None: all of the training set
    hard_negatives: bool = True
    tatoeba: tuple[str, ...] | None = None  # None: no Tatoeba pairs; (): those of the training languages
    eval_data: tuple[str, ...] | None = None  # None: the other LAReQA set + scifact, nfcorpus, arguana
    allow_leak: bool = False
    scale: float = 20.0
    w_mono: float = MtlWeights.mono
    w_cross: float = MtlWeights.cross
    w_lid: float = MtlWeights.lid
    w_translation: float = MtlWeights.translation
    reversal: float = MtlWeights.reversal
    head_lr: float = 1e-3
    precision: str = DEFAULT_PRECISION  # fp32, or bf16 autocast (fp32 master weights, optimiser state, losses)
    dev_fraction: float | None = None  # hold out this share of the training questions as a dev split (devsplit.py)
    log_every: int = 10
    device: str | None = None  # None: cuda (the local rank's GPU) when available, else cpu
    threads: int | None = None  # torch CPU threads; None: torch's default (OMP_NUM_THREADS, else the cores)
    out_dir: str | None = None  # None: $BENCH_MODELS, else <project>/models
    run_id: str | None = None
    force: bool = False


# ------------------------------------------------------------------------------------------ naming


def models_root(out_dir: str | Path | None = None) -> Path:
    return Path(out_dir or os.environ.get("BENCH_MODELS") or PROJECT_ROOT / "models").expanduser()


def base_name(base: str) -> str:
    """The base model's short name: the registry name, else the folder name or the hub id."""
    from bench.models.registry import MODELS

    if base in MODELS:
        return base
    path = Path(base).expanduser()
    return path.name if path.name else base.replace("/", "__")


def make_run_id(trainer: str, base: str, train_data: str, seed: int, steps: int, alpha: float | None,
                precision: str = DEFAULT_PRECISION, dev_fraction: float | None = None) -> str:
    """{trainer}[-a{alpha}]-{base}-{data}-s{seed}-{steps}steps[-dev{fraction}][-{precision}].

    The training precision is a dash suffix (`-bf16`), unlike the evaluation precision, which the runner
    appends as `+bf16`: a bf16-trained checkpoint scored in fp32 is `...-bf16`, scored in bf16 `...-bf16+bf16`."""
    alpha_part = f"-a{alpha:g}" if alpha is not None else ""
    dev_part = f"-dev{dev_fraction:g}" if dev_fraction else ""
    precision_part = f"-{precision}" if precision != DEFAULT_PRECISION else ""
    name = f"{trainer}{alpha_part}-{base_name(base)}-{train_data}-s{seed}-{steps}steps{dev_part}{precision_part}"
    return name.replace("/", "__")


def run_id_of(options: TrainOptions, alpha: float | None) -> str:
    return options.run_id or make_run_id(options.trainer, options.base, options.train_data, options.seed,
                                         options.steps, alpha, options.precision, options.dev_fraction)


# ------------------------------------------------------------------------------------------ checks


def _trainers() -> dict:
    from bench.train.trainers import TRAINERS

    return TRAINERS


def _resolve_alpha(options: TrainOptions, spec) -> float | None:
    from bench.train.samplers import check_alpha

    if not spec.uses_alpha:
        if options.alpha is not None:
            users = [name for name, s in _trainers().items() if s.uses_alpha]
            raise ValueError(f"--alpha applies to {', '.join(users)} only, not {spec.name}")
        return None
    alpha = DEFAULT_ALPHA if options.alpha is None else float(options.alpha)
    check_alpha(alpha)
    return alpha


def train_device(options: TrainOptions, local_rank: int = 0) -> str:
    """Where the run trains: --device, else the local rank's GPU when there is one, else the CPU."""
    if options.device:
        return options.device
    import torch

    return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"


def validate(options: TrainOptions):
    """The trainer (TrainerSpec) and the alpha in force; ValueError naming the bad option otherwise."""
    from bench.train.trainers import get_trainer

    spec = get_trainer(options.trainer)
    alpha = _resolve_alpha(options, spec)
    if options.train_data not in LAREQA_LANGS:
        raise ValueError(f"unknown training data {options.train_data!r}; known: {', '.join(LAREQA_LANGS)}")
    for name in ("steps", "batch_size", "log_every", "threads"):
        if getattr(options, name) is not None and getattr(options, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(options, name)}")
    if options.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {options.seed}")
    for name in ("lr", "scale", "head_lr"):
        if not getattr(options, name) > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(options, name)}")
    if options.weight_decay < 0 or not 0 <= options.warmup_ratio < 1 or options.max_grad_norm < 0:
        raise ValueError("--weight-decay and --max-grad-norm must be non-negative and --warmup-ratio in [0, 1)")
    if options.max_seq_length is not None and options.max_seq_length < 1:
        raise ValueError(f"--max-seq-length must be at least 1, got {options.max_seq_length}")
    if options.tatoeba is not None and not spec.uses_tatoeba:
        users = [name for name, s in _trainers().items() if s.uses_tatoeba]
        raise ValueError(f"trainer {spec.name} does not use Tatoeba pairs; those that do: {', '.join(users)}")
    if options.dev_fraction is not None and not 0 < options.dev_fraction < 1:
        raise ValueError(f"--dev-fraction must be in (0, 1), got {options.dev_fraction}")
    # Before any data or model is loaded: an unknown precision, or bf16 where it would only be emulated.
    check_precision(options.precision, train_device(options) if options.precision != "fp32" else "cpu")
    mtl_weights(options)  # non-negative weights
    return spec, alpha


def mtl_weights(options: TrainOptions) -> MtlWeights:
    return MtlWeights(mono=options.w_mono, cross=options.w_cross, lid=options.w_lid,
                      translation=options.w_translation, reversal=options.reversal)


# ------------------------------------------------------------------------------------------ identity


def identity(options: TrainOptions, alpha: float | None) -> dict:
    """The options that define a run (what a re-run must match to count as the same run)."""
    values = {f.name: getattr(options, f.name) for f in fields(options) if f.name not in _NOT_IDENTITY}
    values["alpha"] = alpha
    revision = _trainers()[options.trainer].revision
    if revision > 1:
        # A later form of a trainer under the same name: runs recorded before it (no revision) never match.
        values["trainer_revision"] = revision
    return canonical(values)


def canonical(values: dict) -> dict:
    """An identity (or a stored manifest's options) without what does not change the run: options at their
    neutral value, and the heads' options for trainers without heads."""
    values = json.loads(json.dumps(values))  # tuples -> lists, as read back from a manifest
    for name, neutral in _NEUTRAL.items():
        if values.get(name, neutral) == neutral:
            values.pop(name, None)
    spec = _trainers().get(values.get("trainer"))
    if spec is not None and not spec.uses_heads:
        for name in _HEADS_ONLY:
            values.pop(name, None)
    return values


def same_run(stored_options: dict | None, wanted: dict) -> bool:
    """Whether a manifest's recorded options are those of the run `wanted` (an identity())."""
    return isinstance(stored_options, dict) and canonical(stored_options) == wanted


def existing_run(target: Path) -> dict | None:
    """The manifest of the run in target; {} when target holds something that is not a finished run."""
    if not target.exists():
        return None
    try:
        manifest = json.loads((target / MANIFEST).read_text())
        return manifest if isinstance(manifest, dict) and manifest.get("complete") else {}
    except (OSError, ValueError):
        return {}
