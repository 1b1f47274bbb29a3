"""What a training run is: its options, their checks, its name and its identity. No torch here, so that the
experiment planner and the CLI can name and compare runs without loading a model.

Identity: the options that change what is trained. A re-run with the same identity finds its checkpoint
done; a stored manifest is compared after the same normalisation (`canonical`), so runs recorded before
an option existed still match when they ran at that option's neutral value."""

from __future__ import annotations

import argparse
import json
import operator
import os
from dataclasses import MISSING, dataclass, field, fields
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


# ------------------------------------------------------------------------------------------ options as flags
#
# Each option is declared once, as a dataclass field whose metadata says how it appears on the command line:
# `add_option_arguments` makes the flags of a parser from the fields, `options_from_args` reads them back.


def option(default=MISSING, *, help: str, flag: str | None = None, positional: bool = False, type=None,
           nargs: str | None = None, metavar: str | None = None, choices=None, to_option=None):
    """A dataclass field that is also a command-line flag (`--field-name`, or `flag`; a bare name with
    `positional`). `help` may name the default as {default}. The argparse type comes from the annotation (int,
    float; bool: a store_true flag) unless `type` is given; options with `nargs` become tuples; `to_option`
    turns the parsed value into the option's (e.g. 0 -> None)."""
    cli = {"help": help, "flag": flag, "positional": positional, "type": type, "nargs": nargs, "metavar": metavar,
           "choices": choices, "to_option": to_option}
    return field(default=default, metadata={"cli": cli})


def _cli_fields(cls, exclude=()):
    return [f for f in fields(cls) if "cli" in f.metadata and f.name not in exclude]


def _dest(f) -> str:
    cli = f.metadata["cli"]
    return f.name if cli["positional"] else (cli["flag"] or f.name).lstrip("-").replace("-", "_")


def add_option_arguments(parser: argparse.ArgumentParser, cls, exclude=()) -> None:
    """One argument per field of the dataclass `cls` declared with `option` (but those in `exclude`)."""
    for f in _cli_fields(cls, exclude):
        cli = f.metadata["cli"]
        kind = str(f.type).removesuffix(" | None")  # annotations are strings here (from __future__ import annotations)
        kwargs = {"help": cli["help"].replace("{default}", str(None if f.default is MISSING else f.default))}
        if kind == "bool":
            kwargs["action"] = "store_true"
        else:
            argument_type = cli["type"] or {"int": int, "float": float}.get(kind)
            if argument_type is not None:
                kwargs["type"] = argument_type
            if f.default is not MISSING:
                kwargs["default"] = f.default
            kwargs.update({k: cli[k] for k in ("nargs", "metavar", "choices") if cli[k] is not None})
        if cli["positional"]:
            parser.add_argument(f.name, **kwargs)
        else:
            parser.add_argument(cli["flag"] or "--" + f.name.replace("_", "-"), required=f.default is MISSING,
                                **kwargs)


def options_from_args(cls, args: argparse.Namespace, exclude=(), **values):
    """An instance of `cls` from the parsed flags of add_option_arguments(..., cls, exclude), plus `values`."""
    for f in _cli_fields(cls, exclude):
        cli = f.metadata["cli"]
        value = getattr(args, _dest(f))
        if cli["nargs"] not in (None, "?") and value is not None:  # "?": one optional value, not a list
            value = tuple(value)
        values[f.name] = cli["to_option"](value) if cli["to_option"] else value
    return cls(**values)


def _zero_is_none(value):
    return value or None


@dataclass
class TrainOptions:
    trainer: str = option(help="a registered trainer (python -m bench list trainers)")
    base: str = option(help="base model: me5-small, minilm-l6, or a model folder")
    train_data: str = option("mlqa-r", help="mlqa-r or xquad-r (default {default})")
    seed: int = option(1, help="default {default}")
    steps: int = option(300, help="optimiser steps (default {default})")
    batch_size: int = option(32, help="pairs per batch and rank (default {default})")
    lr: float = option(3e-5, help="AdamW learning rate (default {default})")
    weight_decay: float = option(0.01, help="default {default}")
    warmup_ratio: float = option(0.1, help="linear warmup share of the steps, then linear decay (default {default})")
    max_grad_norm: float = option(1.0, help="gradient clipping, 0 for none (default {default})")
    # The training cut; the saved checkpoint keeps the base model's own limit.
    max_seq_length: int | None = option(128, to_option=_zero_is_none, help="truncate texts to this many tokens, 0 "
                                        "for the model's own limit (default {default})")
    freeze_embeddings: bool = option(False, help="freeze the word-embedding matrix (about half the step time for "
                                     "me5-small)")
    alpha: float | None = option(None, help=f"hybrid: probability of a mono batch (default {DEFAULT_ALPHA})")
    langs: tuple[str, ...] | None = option(None, nargs="+", help="training languages (default: all of the "
                                           "training set)")
    hard_negatives: bool = option(True, flag="--no-hard-negatives", to_option=operator.not_, help="train on pairs, "
                                  "without the hard negative (default: triplets; pairs whose paragraph has one "
                                  "sentence are left out)")
    # None: no Tatoeba pairs; (): those of the training languages.
    tatoeba: tuple[str, ...] | None = option(None, nargs="*", metavar="LANG", help="mtl: add Tatoeba bitext pairs "
                                             "to the translation-ranking data (no LANG: the training languages)")
    eval_data: tuple[str, ...] | None = option(None, nargs="+", help="the sets the run will be scored on, for the "
                                               "leakage audit (default: the other LAReQA set + scifact nfcorpus "
                                               "arguana)")
    allow_leak: bool = option(False, help="allow evaluating on the training set")
    scale: float = option(20.0, help="InfoNCE scale, 1/temperature (default {default})")
    w_mono: float = option(MtlWeights.mono, help="mtl: mono-batch loss weight ({default})")
    w_cross: float = option(MtlWeights.cross, help="mtl: cross-batch loss weight ({default})")
    w_lid: float = option(MtlWeights.lid, help="mtl: language-ID head weight, 0 to drop it ({default})")
    w_translation: float = option(MtlWeights.translation, help="mtl: translation-ranking weight, 0 to drop it "
                                  "({default})")
    reversal: float = option(MtlWeights.reversal, help="mtl: gradient-reversal strength lambda ({default})")
    head_lr: float = option(1e-3, help="mtl: learning rate of the heads ({default})")
    precision: str = option(DEFAULT_PRECISION, help="fp32, or bf16: autocast bf16 forward and backward with fp32 "
                            "master weights, optimiser state, similarities and losses; needs native bf16 (CPU "
                            "avx512_bf16/amx_bf16, or a bf16 GPU); recorded, run id -bf16 (default {default})")
    dev_fraction: float | None = option(None, help="hold out this share of the training set's question ids (whole "
                                        "paragraphs) as a dev split, left out of training (run id -dev<F>; for "
                                        "tuning, e.g. the mtl sweep)")
    log_every: int = option(10, help="loss-curve point every N steps (default {default})")
    device: str | None = option(None, help="cpu, cuda, cuda:1 ... (default: the local GPU if any, else cpu)")
    threads: int | None = option(None, help="torch CPU threads (default: OMP_NUM_THREADS, else the cores; on a busy "
                                 "machine 1 can be several times faster)")
    out_dir: str | None = option(None, help="models root (default: $BENCH_MODELS, else <project>/models)")
    run_id: str | None = option(None, help="folder name (default {trainer}[-a{alpha}]-{base}-{data}-s{seed}-"
                                "{steps}steps[-dev{fraction}][-bf16])")
    force: bool = option(False, help="overwrite an existing checkpoint folder")


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
