"""What `bench perf` measures and against which targets: the options, the targets, two small helpers."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Log = Callable[[str], None]
NDCG_TOLERANCE = 1e-4
# Targets (issues 5 and 10): fp32 cold run vs beir and mteb; bf16 cold run vs beir and mteb in fp32 and vs
# sentence-transformers' own bf16 path; encoder share of the matmul peak in its own precision; bf16 training.
TARGETS = {"cold_speedup": 1.3, "cold_speedup_bf16": 1.5, "cold_speedup_bf16_vs_st_bf16": 1.0,
           "warm_speedup": 10.0, "matmul_peak_fraction": 0.6, "trainer_overhead": 0.10, "train_speedup_bf16": 2.0}
SECTIONS = ("matmul", "encode", "e2e", "warm", "beir", "mteb", "st-bf16", "scaling", "train", "budget", "scale")
# e2e's pipelines: `--section e2e` keeps them (--skip still drops one).
E2E_PARTS = ("warm", "beir", "mteb", "st-bf16")
# Sections that run only when named with --section: scale takes tens of minutes; budget tunes a constant.
OPT_IN = ("budget", "scale")


def sections_skipped(section: list[str] | tuple[str, ...] | None, skip: list[str] | tuple[str, ...] = ()
                     ) -> tuple[str, ...]:
    """The sections left out: without --section, those in --skip plus the opt-in ones; with --section, every
    section not named (a named e2e keeps its pipelines; encode measures the matmul peak it needs even when
    matmul is left out), plus those in --skip."""
    if section:
        keep = set(section) | (set(E2E_PARTS) if "e2e" in section else set())
        left_out = [s for s in SECTIONS if s not in keep]
    else:
        left_out = list(OPT_IN)
    return tuple(dict.fromkeys([*left_out, *skip]))


@dataclass
class PerfOptions:
    models: tuple[str, ...] = ("minilm-l6", "me5-small")  # encode throughput
    dataset: str = "scifact"
    docs: int = 512  # encode slice: the first N documents sorted by id
    encode_seq_length: int = 256
    e2e_model: str = "minilm-l6"
    e2e_docs: int = 0  # 0: the whole dataset
    max_seq_length: int | None = None  # e2e and scaling; None: the model's own limit
    batch_size: int = 32
    reps: int = 3
    sizes: tuple[int, ...] = (1000, 2000, 4000, 8000)
    scaling_datasets: tuple[str, ...] = ("scifact", "nfcorpus")  # pooled: scifact alone has 5,183 documents
    train_model: str = "me5-small"
    train_data: str = "mlqa-r"
    train_steps: int = 8
    train_batch_size: int = 32
    train_seq_length: int = 64
    trainers: tuple[str, ...] | None = None  # None: every registered trainer
    budgets: tuple[int, ...] = (64, 128, 256, 512)  # budget: tokens per row timed, on the encode slice
    # Measured side by side. None: fp32, and bf16 where this CPU runs it natively (the machines lent here
    # differ); a precision named explicitly that this CPU would only emulate is refused up front.
    precisions: tuple[str, ...] | None = None
    # Sections run: all but the opt-in ones (None), or only these (--section); minus `skip` either way.
    # __post_init__ folds both into `skip`, which is what the sections read.
    sections: tuple[str, ...] | None = None
    skip: tuple[str, ...] = ()  # sections, see SECTIONS
    # scale (scale.py): synthetic corpora of these sizes through the sharded path, with a tiny model.
    scale_sizes: tuple[int, ...] = (100_000, 300_000, 1_000_000)
    scale_processes: int = 2
    scale_queries: int = 300
    scale_shard_size: int | None = None  # None: min(65,536, N / processes)
    out: Path | None = None
    # Set from `precisions`: each default precision left out, with the reason (recorded in the report).
    precisions_left_out: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.precisions is None:
            from bench.precision import available, bf16_problem

            self.precisions = tuple(available("cpu"))
            if "bf16" not in self.precisions:  # fp32 always runs
                self.precisions_left_out = {"bf16": bf16_problem("cpu")}
        unknown = [s for s in (*(self.sections or ()), *self.skip) if s not in SECTIONS]
        if unknown:
            raise ValueError(f"unknown perf section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
        self.skip = sections_skipped(self.sections, self.skip)
        if any(n < 1 for n in self.budgets):
            raise ValueError("--budgets must be at least 1 token per row")
        if any(n < 1 for n in self.scale_sizes) or self.scale_processes < 1 or self.scale_queries < 1:
            raise ValueError("--scale-sizes, --scale-processes and --scale-queries must be at least 1")

    def runs(self, section: str) -> bool:
        return section not in self.skip


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None
