import math
from collections import Counter

import pytest

from bench.data.pairs import Example
from bench.data.task import DataError
from bench.train.samplers import (SAMPLERS, EnEnSampler, HybridSampler, MixedMonoSampler, XXMonoSampler,
                                  XYSampler)

LANGS = ("de", "en", "es", "zh")


def make_examples(n_questions: int = 40, langs=LANGS, negatives: bool = True) -> list[Example]:
    """Every (q, p) pair of n questions that exist in every language; all texts distinct."""
    return [Example(f"question {i} in {q}", f"answer {i} in {p}", f"other {i} in {p}" if negatives else None,
                    q, p, f"id{i}")
            for i in range(n_questions) for q in langs for p in langs]


EXAMPLES = make_examples()


def sampler(name, examples=EXAMPLES, batch_size=8, **kwargs):
    return SAMPLERS[name](examples, batch_size, **kwargs)


def binomial_bounds(n: int, p: float, tail: float = 1e-4) -> tuple[int, int]:
    """The smallest k_lo and largest k_hi with P(X < k_lo) <= tail and P(X > k_hi) <= tail."""
    pmf = [math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1)]
    lo, acc = 0, 0.0
    while acc + pmf[lo] <= tail:
        acc += pmf[lo]
        lo += 1
    hi, acc = n, 0.0
    while acc + pmf[hi] <= tail:
        acc += pmf[hi]
        hi -= 1
    return lo, hi


def check_homogeneous(s, examples, batch):
    rows = [examples[i] for i in batch.indices]
    assert len(rows) == s.batch_size
    if batch.kind == "mono":
        (lang,) = batch.langs
        assert all(ex.query_lang == ex.doc_lang == lang for ex in rows)
    elif batch.kind == "cross":
        assert all(ex.query_lang != ex.doc_lang for ex in rows)
        assert set(batch.langs) == {f"{ex.query_lang}-{ex.doc_lang}" for ex in rows}
    else:
        assert batch.kind == "x-x"
        assert all(ex.query_lang == ex.doc_lang for ex in rows)
        assert set(batch.langs) == {ex.query_lang for ex in rows}
    # No in-batch duplicates: distinct questions and texts.
    assert len({ex.qid for ex in rows}) == len(rows)
    texts = [t for ex in rows for t in ex.texts()]
    assert len(set(texts)) == len(texts)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_batch_is_homogeneous(name):
    kwargs = {"alpha": 0.5} if name == "hybrid" else {}
    s = sampler(name, num_steps=300, seed=3, **kwargs)
    batches = list(s)
    assert len(batches) == len(s) == 300 == len(s.history)
    for record in s.history:
        check_homogeneous(s, EXAMPLES, record)
    kinds = Counter(b.kind for b in s.history)
    expected = {"xx-mono": {"mono"}, "en-en": {"mono"}, "xy": {"cross"}, "x-x": {"x-x"}, "hybrid": {"mono", "cross"}}
    assert set(kinds) == expected[name]
    if name == "en-en":
        assert {b.langs for b in s.history} == {("en",)}
    if name in ("xx-mono", "x-x"):
        # Languages drawn uniformly: each of the 4 seen, none wildly over-represented.
        per_lang = Counter(lang for b in s.history for lang in b.langs)
        assert set(per_lang) == set(LANGS)


@pytest.mark.parametrize("alpha", [0.3, 0.5])
def test_hybrid_share_of_mono_batches_is_within_binomial_bounds(alpha):
    n = 400
    for seed in (1, 2):
        s = HybridSampler(EXAMPLES, 8, alpha=alpha, seed=seed, num_steps=n)
        list(s)
        mono = sum(b.kind == "mono" for b in s.history)
        lo, hi = binomial_bounds(n, alpha)
        assert lo <= mono <= hi, (seed, mono, lo, hi)
        for b in s.history:
            check_homogeneous(s, EXAMPLES, b)


def test_hybrid_alpha_0_and_1_reduce_to_xy_and_xx_mono():
    def sequence(s):
        return [(b.kind, b.langs, b.indices) for b in (s.batch(t) for t in range(60))]

    assert sequence(HybridSampler(EXAMPLES, 8, alpha=1.0, seed=5)) == sequence(XXMonoSampler(EXAMPLES, 8, seed=5))
    assert sequence(HybridSampler(EXAMPLES, 8, alpha=0.0, seed=5)) == sequence(XYSampler(EXAMPLES, 8, seed=5))


def test_cross_language_pairs_are_drawn_uniformly():
    s = XYSampler(EXAMPLES, 8, seed=0, num_steps=300)
    list(s)
    pairs = Counter(f"{EXAMPLES[i].query_lang}-{EXAMPLES[i].doc_lang}" for b in s.history for i in b.indices)
    assert len(pairs) == 12  # every ordered pair of 4 languages
    expected = 300 * 8 / 12
    assert all(abs(count - expected) < 5 * math.sqrt(expected) for count in pairs.values())


def test_same_seed_same_sequence_other_seed_another():
    a, b, c = (HybridSampler(EXAMPLES, 8, seed=seed, num_steps=50) for seed in (7, 7, 8))
    assert list(a) == list(b)
    assert [x.kind for x in a.history] == [x.kind for x in b.history]
    assert list(a) != list(c)


def test_random_access_replays_the_same_batches():
    s = XYSampler(EXAMPLES, 8, seed=2)
    first = [s.batch(t) for t in range(10)]
    assert s.batch(3) == first[3]  # an earlier step replays from the start
    assert [s.batch(t) for t in range(10)] == first


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_ddp_ranks_draw_the_same_kind_and_disjoint_examples(name):
    kwargs = {"alpha": 0.5} if name == "hybrid" else {}
    ranks = [sampler(name, batch_size=4, seed=11, rank=r, world_size=2, num_steps=120, **kwargs) for r in (0, 1)]
    single = sampler(name, batch_size=8, seed=11, num_steps=120, **kwargs)  # the global batch, one process
    for rank in ranks:
        list(rank)
    list(single)
    seen: list[set[int]] = [set(), set()]
    for t in range(120):
        b0, b1 = ranks[0].history[t], ranks[1].history[t]
        assert b0.kind == b1.kind == single.history[t].kind
        if b0.kind == "mono":
            assert b0.langs == b1.langs
        assert not set(b0.indices) & set(b1.indices)
        # The two ranks' slices are the global batch, in order.
        assert b0.indices + b1.indices == single.history[t].indices
        check_homogeneous(ranks[0], EXAMPLES, b0)
        seen[0] |= set(b0.indices)
        seen[1] |= set(b1.indices)
    assert seen[0] and seen[1]


def test_plans_never_depend_on_the_rank():
    """The kind of step t never depends on the rank: seeds are (seed, epoch, step, role) only."""
    r0 = HybridSampler(EXAMPLES, 4, seed=1, rank=0, world_size=3)
    r2 = HybridSampler(EXAMPLES, 4, seed=1, rank=2, world_size=3)
    assert [r0.plan(t) for t in range(50)] == [r2.plan(t) for t in range(50)]
    with pytest.raises(ValueError, match="rank 2 is not in"):
        XYSampler(EXAMPLES, 4, rank=2, world_size=2)


def test_no_duplicate_texts_even_when_pairs_share_them():
    # Two questions per paragraph answered by the same sentence: those pairs must not meet in a batch.
    examples = [Example(f"q{i} {q}", f"answer {i // 2} {p}", None, q, p, f"id{i}")
                for i in range(40) for q in ("de", "en") for p in ("de", "en")]
    s = XXMonoSampler(examples, 8, seed=0, num_steps=100)
    for b in (s.batch(t) for t in range(100)):
        positives = [examples[i].positive for i in b.indices]
        assert len(set(positives)) == len(positives) == 8


def test_examples_are_spread_over_passes():
    # Over one pass of an 8-example pool in batches of 4, every example appears once.
    examples = make_examples(8, langs=("en",))
    s = EnEnSampler(examples, 4, seed=0)
    assert sorted(s.batch(0).indices + s.batch(1).indices) == list(range(8))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\].*1.5"):
        HybridSampler(EXAMPLES, 8, alpha=1.5)
    with pytest.raises(DataError, match="has 3 pairs, fewer than one batch of 8"):
        XYSampler(EXAMPLES[:3], 8)
    with pytest.raises(DataError, match="fewer than one batch of 8 on each of 2 ranks"):
        XYSampler(EXAMPLES[:10], 8, world_size=2)
    only_cross = [ex for ex in EXAMPLES if not ex.is_mono]
    with pytest.raises(DataError, match="language 'de' has no same-language pairs for the xx-mono sampler"):
        XXMonoSampler(only_cross, 8)
    with pytest.raises(DataError, match="'de' has no cross-lingual pairs for the xy sampler"):
        XYSampler([ex for ex in EXAMPLES if ex.is_mono], 8)
    few_zh = [ex for ex in EXAMPLES if not (ex.query_lang == ex.doc_lang == "zh" and ex.qid not in ("id0", "id1"))]
    with pytest.raises(DataError, match="'zh' has 2 same-language pairs, fewer than one batch of 8"):
        XXMonoSampler(few_zh, 8)
    MixedMonoSampler(few_zh, 8)  # languages mix within a batch: two zh pairs are enough
    with pytest.raises(DataError, match="en-en sampler needs English"):
        EnEnSampler(EXAMPLES, 8, langs=("de", "es"))
    # Hybrid checks only the kinds it can draw.
    HybridSampler(only_cross, 8, alpha=0.0)
    with pytest.raises(DataError, match="no same-language pairs for the hybrid sampler"):
        HybridSampler(only_cross, 8, alpha=0.1)


def test_a_batch_that_cannot_be_filled_says_so():
    # Every English pair answers with the same sentence: no two can share a batch.
    examples = [Example(f"q{i}", "the same answer", None, "en", "en", f"id{i}") for i in range(10)]
    with pytest.raises(DataError, match="cannot fill a batch from the en pairs"):
        EnEnSampler(examples, 2).batch(0)
