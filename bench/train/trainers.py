"""The trainer registry: a name -> TrainerSpec mapping. Adding a trainer is one entry here: how its
batches are drawn (role -> sampler) and what a step computes from them (an objective). Torch-free, so that
the experiment schema and the report can ask a trainer's metadata (uses_alpha, uses_heads) without loading
torch: a trainer names its objective, and the training loop looks it up in bench.train.objectives.OBJECTIVES."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.data.pairs import Example
from bench.protocol import DEFAULT_ALPHA
from bench.train.samplers import (EnEnSampler, HybridSampler, LanguageBatchSampler, MixedMonoSampler,
                                  XXMonoSampler, XYSampler)


@dataclass(frozen=True)
class SamplerArgs:
    batch_size: int
    seed: int
    num_steps: int
    langs: tuple[str, ...] | None = None
    rank: int = 0
    world_size: int = 1
    alpha: float = DEFAULT_ALPHA

    def common(self) -> dict:
        return {"seed": self.seed, "num_steps": self.num_steps, "rank": self.rank, "world_size": self.world_size}


SamplerFactory = Callable[[Sequence[Example], Sequence[Example], SamplerArgs], dict[str, LanguageBatchSampler]]


@dataclass(frozen=True)
class TrainerSpec:
    name: str
    description: str
    samplers: SamplerFactory  # (retrieval examples, parallel pairs, args) -> role -> sampler
    objective: str  # a name in bench.train.objectives.OBJECTIVES: what a step computes from the batches
    uses_alpha: bool = False
    uses_heads: bool = False  # auxiliary heads saved under <checkpoint>/heads/
    uses_tatoeba: bool = False  # accepts --tatoeba pairs (as extra parallel data)
    # The alpha at which hybrid draws exactly this trainer's batches and trains bitwise its weights, for the same
    # seed (tests/train/test_alpha_ends.py): the report's alpha curve takes its ends from these cells.
    hybrid_alpha: float | None = None
    # Bumped when a trainer keeps its name but changes what it does; part of the run identity past 1, so a
    # checkpoint of the earlier form is never taken for one of the new (options.identity).
    revision: int = 1


def _single(cls: type[LanguageBatchSampler]) -> SamplerFactory:
    def make(examples, parallel, args: SamplerArgs) -> dict[str, LanguageBatchSampler]:
        return {"retrieval": cls(examples, args.batch_size, langs=args.langs, **args.common())}
    return make


def _hybrid(examples, parallel, args: SamplerArgs) -> dict[str, LanguageBatchSampler]:
    return {"retrieval": HybridSampler(examples, args.batch_size, alpha=args.alpha, langs=args.langs,
                                       **args.common())}


def mtl_parts(batch_size: int, translation: bool) -> dict[str, int]:
    """How the shared-batch mtl divides one batch of `batch_size` pairs: equal shares for mono, cross (and
    translation), the remainder to the first parts; e.g. 32 -> 11 mono, 11 cross, 10 translation."""
    roles = ["mono", "cross", *(["translation"] if translation else [])]
    share, extra = divmod(batch_size, len(roles))
    if share < 2:
        raise ValueError(f"mtl shares one batch among {', '.join(roles)}: --batch-size {batch_size} leaves fewer "
                         f"than 2 pairs per part (in-batch negatives need 2); use at least {2 * len(roles)}")
    return {role: share + (i < extra) for i, role in enumerate(roles)}


def _mtl_batches(examples, parallel, sizes: dict[str, int], args: SamplerArgs) -> dict[str, LanguageBatchSampler]:
    """mono (one language per batch), cross (q != p) and translation (parallel pairs) samplers of the given sizes.
    Each part is its own InfoNCE problem, so a question drawn by two parts is never a false negative."""
    samplers: dict[str, LanguageBatchSampler] = {
        "mono": XXMonoSampler(examples, sizes["mono"], langs=args.langs, role="mono", **args.common()),
        "cross": XYSampler(examples, sizes["cross"], langs=args.langs, role="cross", **args.common()),
    }
    if parallel:
        # The parallel pairs may add Tatoeba languages beyond the training languages: draw among all.
        samplers["translation"] = XYSampler(parallel, sizes["translation"], role="translation", **args.common())
    return samplers


def _mtl_shared(examples, parallel, args: SamplerArgs) -> dict[str, LanguageBatchSampler]:
    """The parts share one batch: as many pairs per optimiser step as the single-batch trainers."""
    return _mtl_batches(examples, parallel, mtl_parts(args.batch_size, bool(parallel)), args)


def _mtl_3batch(examples, parallel, args: SamplerArgs) -> dict[str, LanguageBatchSampler]:
    """A whole batch per part: two to three times the pairs per step of the single-batch trainers."""
    return _mtl_batches(examples, parallel, dict.fromkeys(("mono", "cross", "translation"), args.batch_size), args)


TRAINERS: dict[str, TrainerSpec] = {
    spec.name: spec for spec in [
        TrainerSpec("xx-mono", "every batch one language, drawn uniformly; q = p (LAReQA's X-X-mono)",
                    _single(XXMonoSampler), "retrieval", hybrid_alpha=1.0),
        TrainerSpec("xy", "every pair cross-lingual (q != p), language pairs drawn uniformly per slot",
                    _single(XYSampler), "retrieval", hybrid_alpha=0.0),
        TrainerSpec("hybrid", "each batch mono with probability alpha (--alpha, default 0.5), cross otherwise",
                    _hybrid, "retrieval", uses_alpha=True),
        TrainerSpec("x-x", "same-language pairs, languages mixed within a batch (LAReQA's X-X)",
                    _single(MixedMonoSampler), "retrieval"),
        TrainerSpec("en-en", "English pairs only", _single(EnEnSampler), "retrieval"),
        TrainerSpec("mtl", "multi-task in one batch of --batch-size pairs shared by its parts: w_mono * mono "
                           "part + w_cross * cross part + language-adversarial LID head (gradient reversal), "
                           "+ w_translation * translation ranking on parallel questions when > 0 (default 0)",
                    _mtl_shared, "mtl", uses_heads=True, uses_tatoeba=True, revision=2),
        TrainerSpec("mtl-3batch", "mtl with a whole batch per part (mono, cross, translation): 2-3x the pairs "
                                  "per step of the others (the form of mtl before revision 2)",
                    _mtl_3batch, "mtl", uses_heads=True, uses_tatoeba=True),
    ]
}


def uses_alpha(trainer: str) -> bool:
    """Whether `trainer`'s runs carry an alpha (False for names outside the registry, e.g. "none")."""
    spec = TRAINERS.get(trainer)
    return bool(spec and spec.uses_alpha)


def get_trainer(name: str) -> TrainerSpec:
    if name not in TRAINERS:
        raise ValueError(f"unknown trainer {name!r}; registered: {', '.join(TRAINERS)}")
    return TRAINERS[name]
