"""The trainer registry: a name -> TrainerSpec mapping. Adding a trainer is one entry here: how its
batches are drawn (role -> sampler) and what a step computes from them (an objective)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.data.pairs import Example
from bench.train.objectives import Objective, Terms, mtl_objective, retrieval_objective
from bench.train.samplers import (Batch, EnEnSampler, HybridSampler, LanguageBatchSampler, MixedMonoSampler,
                                  XXMonoSampler, XYSampler)


@dataclass(frozen=True)
class SamplerArgs:
    batch_size: int
    seed: int
    num_steps: int
    langs: tuple[str, ...] | None = None
    rank: int = 0
    world_size: int = 1
    alpha: float = 0.5

    def common(self) -> dict:
        return {"seed": self.seed, "num_steps": self.num_steps, "rank": self.rank, "world_size": self.world_size}


SamplerFactory = Callable[[Sequence[Example], Sequence[Example], SamplerArgs], dict[str, LanguageBatchSampler]]


@dataclass(frozen=True)
class TrainerSpec:
    name: str
    description: str
    samplers: SamplerFactory  # (retrieval examples, parallel pairs, args) -> role -> sampler
    objective: Callable[[Objective, dict[str, Batch]], Terms]
    uses_alpha: bool = False
    uses_heads: bool = False  # auxiliary heads saved under <checkpoint>/heads/
    uses_tatoeba: bool = False  # accepts --tatoeba pairs (as extra parallel data)


def _single(cls: type[LanguageBatchSampler]) -> SamplerFactory:
    def make(examples, parallel, args: SamplerArgs) -> dict[str, LanguageBatchSampler]:
        return {"retrieval": cls(examples, args.batch_size, langs=args.langs, **args.common())}
    return make


def _hybrid(examples, parallel, args: SamplerArgs) -> dict[str, LanguageBatchSampler]:
    return {"retrieval": HybridSampler(examples, args.batch_size, alpha=args.alpha, langs=args.langs,
                                       **args.common())}


def _mtl(examples, parallel, args: SamplerArgs) -> dict[str, LanguageBatchSampler]:
    samplers: dict[str, LanguageBatchSampler] = {
        "mono": XXMonoSampler(examples, args.batch_size, langs=args.langs, role="mono", **args.common()),
        "cross": XYSampler(examples, args.batch_size, langs=args.langs, role="cross", **args.common()),
    }
    if parallel:
        # The parallel pairs may add Tatoeba languages beyond the training languages: draw among all.
        samplers["translation"] = XYSampler(parallel, args.batch_size, role="translation", **args.common())
    return samplers


TRAINERS: dict[str, TrainerSpec] = {
    spec.name: spec for spec in [
        TrainerSpec("xx-mono", "every batch one language, drawn uniformly; q = p (LAReQA's X-X-mono)",
                    _single(XXMonoSampler), retrieval_objective),
        TrainerSpec("xy", "every pair cross-lingual (q != p), language pairs drawn uniformly per slot",
                    _single(XYSampler), retrieval_objective),
        TrainerSpec("hybrid", "each batch mono with probability alpha (--alpha, default 0.5), cross otherwise",
                    _hybrid, retrieval_objective, uses_alpha=True),
        TrainerSpec("x-x", "same-language pairs, languages mixed within a batch (LAReQA's X-X)",
                    _single(MixedMonoSampler), retrieval_objective),
        TrainerSpec("en-en", "English pairs only", _single(EnEnSampler), retrieval_objective),
        TrainerSpec("mtl", "multi-task: w_mono * mono batch + w_cross * cross batch + language-adversarial "
                           "LID head (gradient reversal) + translation ranking on parallel questions",
                    _mtl, mtl_objective, uses_heads=True, uses_tatoeba=True),
    ]
}


def get_trainer(name: str) -> TrainerSpec:
    if name not in TRAINERS:
        raise ValueError(f"unknown trainer {name!r}; registered: {', '.join(TRAINERS)}")
    return TRAINERS[name]
