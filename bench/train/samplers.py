"""Batch samplers: which training examples form the batch of each step.

Every batch is homogeneous in its kind:

- ``mono``: one language, q = p = that language (``xx-mono``, ``en-en``, the mono batches of ``hybrid``);
- ``cross``: every example has q != p; each slot's language pair drawn uniformly (``xy``, the cross
  batches of ``hybrid``);
- ``x-x``: every example has q = p, each slot's language drawn uniformly, so languages mix in a batch.

Determinism and DDP. The plan of step t (its kind and the language(s) of its slots) is drawn from an
RNG seeded by (seed, epoch, step, role) only, never by the rank, so every rank of a DDP run draws the
same kind at the same step. The plan covers the global batch (batch_size x world_size slots); every
rank fills the whole global batch from the same per-pool streams (so their states stay identical) and
keeps its own slice, ranks [r*B, (r+1)*B): the ranks' examples are disjoint.

Within a global batch no two examples share a question id or any text (query, positive, negative):
with in-batch negatives a duplicate would be a false negative (sentence-transformers'
NO_DUPLICATES rule). A conflicting example is deferred to a later batch, not dropped.

Samplers yield lists of example indices (``__iter__``/``__len__`` as torch's BatchSampler) and keep a
``history`` of :class:`Batch` records (step, kind, languages, indices).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from bench.data.pairs import Example
from bench.data.task import DataError
from bench.protocol import DEFAULT_ALPHA

MONO, CROSS, MIXED_MONO = "mono", "cross", "x-x"


@dataclass(frozen=True)
class Plan:
    """The kind of a step's global batch and the (query_lang, doc_lang) of each of its slots."""

    kind: str
    slots: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Batch:
    """One rank's batch of one step."""

    step: int
    kind: str
    langs: tuple[str, ...]  # mono: (L,); x-x: the languages present; cross: the "q-p" pairs present
    indices: tuple[int, ...]
    role: str = "retrieval"
    rank: int = 0

    def record(self) -> dict:
        return {"step": self.step, "role": self.role, "kind": self.kind, "langs": list(self.langs)}


def _int_hash(*parts: object) -> int:
    """A stable non-negative int for an RNG seed (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


class _Stream:
    """An endless, seeded, reshuffled-every-pass stream of one pool's example indices."""

    def __init__(self, indices: Sequence[int], seed: int):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.seed = seed
        self.passes = 0
        self.order: deque[int] = deque()
        self.deferred: deque[int] = deque()  # skipped for a conflict; served first next time

    def _next(self) -> int:
        if self.deferred:
            return self.deferred.popleft()
        if not self.order:
            rng = np.random.default_rng([self.seed, self.passes])
            self.order.extend(int(i) for i in rng.permutation(self.indices))
            self.passes += 1
        return self.order.popleft()

    def take(self, n: int, try_add: Callable[[int], bool], what: str) -> list[int]:
        chosen: list[int] = []
        skipped: list[int] = []
        budget = 2 * len(self.indices) + n
        while len(chosen) < n:
            if budget == 0:
                raise DataError(f"cannot fill a batch from {what}: its {len(self.indices)} examples do not hold "
                                f"{n} with distinct questions and texts beside the rest of the batch; lower "
                                "--batch-size or add data")
            budget -= 1
            i = self._next()
            (chosen if try_add(i) else skipped).append(i)
        self.deferred.extendleft(reversed(skipped))
        return chosen


class LanguageBatchSampler:
    """Base class: subclasses name their pools and draw a step's plan."""

    name = ""

    def __init__(self, examples: Sequence[Example], batch_size: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1, langs: Sequence[str] | None = None, num_steps: int | None = None,
                 epoch: int = 0, role: str = "retrieval"):
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self.examples = examples
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.num_steps, self.epoch, self.role = num_steps, epoch, role
        self.global_size = batch_size * world_size
        present = list(dict.fromkeys(lang for ex in examples for lang in (ex.query_lang, ex.doc_lang)))
        self.langs = tuple(dict.fromkeys(langs)) if langs else tuple(present)
        shape = f"one batch of {batch_size}" + (f" on each of {world_size} ranks" if world_size > 1 else "")
        if len(examples) < self.global_size:
            raise DataError(f"the training set has {len(examples)} pairs, fewer than {shape}")
        self._shape = shape
        self.pools: dict[tuple[str, str], list[int]] = {}
        for i, ex in enumerate(examples):
            # An example whose own texts repeat (a question identical to its answer or translation)
            # could never join a batch under the no-duplicates rule: leave it out of the pools.
            if ex.query_lang in self.langs and ex.doc_lang in self.langs and len(set(ex.texts())) == len(ex.texts()):
                self.pools.setdefault((ex.query_lang, ex.doc_lang), []).append(i)
        self._salt = _int_hash(role)
        self._check()
        self.reset()

    # ------------------------------------------------------------------ what subclasses define

    def _check(self) -> None:
        """Raise DataError when a language the sampler may draw has no (or too few) pairs."""

    def plan(self, step: int) -> Plan:
        raise NotImplementedError

    # ------------------------------------------------------------------ shared machinery

    def _rng(self, step: int, stream: int) -> np.random.Generator:
        """The only randomness of a plan: (seed, epoch, step, role, stream), never the rank."""
        return np.random.default_rng([self.seed, self.epoch, step, self._salt, stream])

    def _mono_plan(self, rng: np.random.Generator) -> Plan:
        lang = self.mono_langs[int(rng.integers(len(self.mono_langs)))]
        return Plan(MONO, ((lang, lang),) * self.global_size)

    def _cross_plan(self, rng: np.random.Generator) -> Plan:
        draws = rng.integers(len(self.cross_pairs), size=self.global_size)
        return Plan(CROSS, tuple(self.cross_pairs[int(i)] for i in draws))

    def _mixed_mono_plan(self, rng: np.random.Generator) -> Plan:
        draws = rng.integers(len(self.mono_langs), size=self.global_size)
        return Plan(MIXED_MONO, tuple((self.mono_langs[int(i)],) * 2 for i in draws))

    def _check_mono(self, whole_batch: bool) -> None:
        """Every language needs mono pairs; a whole batch of them when a batch is one language."""
        self.mono_langs = self.langs
        for lang in self.langs:
            n = len(self.pools.get((lang, lang), []))
            if n == 0:
                raise DataError(f"language {lang!r} has no same-language pairs for the {self.name} sampler "
                                f"(training languages: {', '.join(self.langs)})")
            if whole_batch and n < self.global_size:
                raise DataError(f"language {lang!r} has {n} same-language pairs, fewer than {self._shape} "
                                f"(the {self.name} sampler fills each batch from one language)")

    def _check_cross(self) -> None:
        """Every language needs cross-lingual pairs; the pairs drawn are those that have examples."""
        self.cross_pairs = tuple((q, p) for q in self.langs for p in self.langs if q != p and (q, p) in self.pools)
        for lang in self.langs:
            if not any(lang in pair for pair in self.cross_pairs):
                raise DataError(f"language {lang!r} has no cross-lingual pairs for the {self.name} sampler "
                                f"(training languages: {', '.join(self.langs)})")
        if sum(len(self.pools[pair]) for pair in self.cross_pairs) < self.global_size:
            raise DataError(f"the cross-lingual pairs number fewer than {self._shape}")

    def reset(self) -> None:
        self._streams = {key: _Stream(indices, _int_hash(self.seed, self._salt, key))
                         for key, indices in self.pools.items()}
        self._next_step = 0
        self.history: list[Batch] = []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.reset()

    def _fill(self, plan: Plan) -> list[int]:
        """The global batch: one example per slot, from the slot's pool, no shared qid or text."""
        qids: set[str] = set()
        texts: set[str] = set()

        def try_add(i: int) -> bool:
            ex = self.examples[i]
            own = ex.texts()
            if ex.qid in qids or any(t in texts for t in own):
                return False
            qids.add(ex.qid)
            texts.update(own)
            return True

        chosen: list[int] = []
        if plan.kind == MONO:  # one pool: take the whole batch at once
            key = plan.slots[0]
            return self._streams[key].take(len(plan.slots), try_add, f"the {key[0]} pairs")
        for key in plan.slots:
            chosen += self._streams[key].take(1, try_add, f"the {key[0]}-{key[1]} pairs")
        return chosen

    def batch(self, step: int) -> Batch:
        """This rank's batch of a step. Steps are produced in order (an earlier step replays from 0)."""
        if step < self._next_step:
            self.reset()
        while self._next_step <= step:
            t = self._next_step
            plan = self.plan(t)
            chosen = self._fill(plan)
            lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
            slots = plan.slots[lo:hi]
            if plan.kind == CROSS:
                langs = tuple(sorted({f"{q}-{p}" for q, p in slots}))
            else:
                langs = tuple(sorted({q for q, _ in slots}))
            self.history.append(Batch(t, plan.kind, langs, tuple(chosen[lo:hi]), self.role, self.rank))
            self._next_step += 1
        return self.history[step]

    def __iter__(self) -> Iterator[list[int]]:
        self.reset()
        step = 0
        while self.num_steps is None or step < self.num_steps:
            yield list(self.batch(step).indices)
            step += 1

    def __len__(self) -> int:
        if self.num_steps is None:
            raise TypeError(f"{type(self).__name__} without num_steps is endless")
        return self.num_steps


class XXMonoSampler(LanguageBatchSampler):
    """LAReQA's X-X-mono: each batch one language, drawn uniformly; q = p = that language."""

    name = "xx-mono"

    def _check(self) -> None:
        self._check_mono(whole_batch=True)

    def plan(self, step: int) -> Plan:
        return self._mono_plan(self._rng(step, 1))


class EnEnSampler(XXMonoSampler):
    """English pairs only."""

    name = "en-en"

    def __init__(self, examples: Sequence[Example], batch_size: int, **kwargs):
        langs = kwargs.pop("langs", None)
        if langs is not None and "en" not in langs:
            raise DataError(f"the en-en sampler needs English; the training languages are {', '.join(langs)}")
        super().__init__(examples, batch_size, langs=("en",), **kwargs)


class XYSampler(LanguageBatchSampler):
    """Every pair cross-lingual (q != p); each slot's language pair drawn uniformly among the pairs."""

    name = "xy"

    def _check(self) -> None:
        self._check_cross()

    def plan(self, step: int) -> Plan:
        return self._cross_plan(self._rng(step, 1))


class MixedMonoSampler(LanguageBatchSampler):
    """LAReQA's X-X: same-language pairs, each slot's language drawn uniformly (languages mix)."""

    name = "x-x"

    def _check(self) -> None:
        self._check_mono(whole_batch=False)

    def plan(self, step: int) -> Plan:
        return self._mixed_mono_plan(self._rng(step, 1))


class HybridSampler(LanguageBatchSampler):
    """Each batch mono (as xx-mono) with probability alpha, cross (as xy) otherwise.

    The coin and the batch's languages come from separate RNG streams of the same step, so alpha = 1
    gives exactly xx-mono's batches and alpha = 0 exactly xy's (for the same seed)."""

    name = "hybrid"

    def __init__(self, examples: Sequence[Example], batch_size: int, alpha: float = DEFAULT_ALPHA, **kwargs):
        check_alpha(alpha)
        self.alpha = float(alpha)
        super().__init__(examples, batch_size, **kwargs)

    def _check(self) -> None:
        if self.alpha > 0:
            self._check_mono(whole_batch=True)
        if self.alpha < 1:
            self._check_cross()

    def plan(self, step: int) -> Plan:
        mono = self._rng(step, 0).random() < self.alpha
        content = self._rng(step, 1)
        return self._mono_plan(content) if mono else self._cross_plan(content)


def check_alpha(alpha: float) -> None:
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (the probability of a mono batch), got {alpha}")


SAMPLERS: dict[str, type[LanguageBatchSampler]] = {
    cls.name: cls for cls in (XXMonoSampler, XYSampler, HybridSampler, MixedMonoSampler, EnEnSampler)
}
