from collections import Counter

import pytest

from bench.data.lareqa import Candidate, LareqaData, Question
from bench.data.pairs import (Example, examples_fingerprint, question_pairs, tatoeba_examples,
                              training_examples)
from bench.data.task import DataError
from bench.paths import data_root


def constructed() -> LareqaData:
    """qA in en and de, qB in en only. The en paragraph has 4 sentences (two with the same text), the
    de paragraph one sentence."""
    en = ["Alpha one.", "Beta two.", "Alpha one.", "Gamma three."]
    candidates = {f"en:0:0:{i}": Candidate(f"en:0:0:{i}", "en", t, "en:0:0") for i, t in enumerate(en)}
    candidates["de:0:0:0"] = Candidate("de:0:0:0", "de", "Eins zwei.", "de:0:0")
    questions = [Question("qA", "en", "What is alpha?", "en:0:0:0"), Question("qB", "en", "What is beta?", "en:0:0:1"),
                 Question("qA", "de", "Was ist alpha?", "de:0:0:0")]
    paragraphs = {"en:0:0": [f"en:0:0:{i}" for i in range(4)], "de:0:0": ["de:0:0:0"]}
    return LareqaData("mlqa-r", ("de", "en"), questions, candidates, paragraphs)


def test_pairs_for_every_ordered_language_pair_of_a_question():
    examples = training_examples(constructed(), seed=0)
    assert [(ex.qid, ex.query_lang, ex.doc_lang) for ex in examples] == [
        ("qA", "de", "de"), ("qA", "de", "en"), ("qA", "en", "de"), ("qA", "en", "en"), ("qB", "en", "en")]
    by_key = {(ex.qid, ex.query_lang, ex.doc_lang): ex for ex in examples}
    cross = by_key["qA", "de", "en"]
    assert (cross.query, cross.positive) == ("Was ist alpha?", "Alpha one.")  # question in q, answer in p
    assert by_key["qA", "en", "de"].positive == "Eins zwei."
    assert all(ex.source == "mlqa-r" for ex in examples)


def test_hard_negatives_come_from_the_answer_paragraph():
    examples = training_examples(constructed(), seed=0)
    by_key = {(ex.qid, ex.query_lang, ex.doc_lang): ex for ex in examples}
    # de paragraph has one sentence: no hard negative.
    assert by_key["qA", "en", "de"].negative is None and by_key["qA", "de", "de"].negative is None
    # The answer "Alpha one." has a same-text twin: never chosen as its negative.
    assert by_key["qA", "en", "en"].negative in ("Beta two.", "Gamma three.")
    assert by_key["qB", "en", "en"].negative in ("Alpha one.", "Gamma three.")
    assert all(ex.negative is None for ex in training_examples(constructed(), hard_negatives=False))


def test_hard_negative_choice_is_deterministic_for_a_seed():
    def negatives(seed):
        return [ex.negative for ex in training_examples(constructed(), seed=seed)]

    assert negatives(3) == negatives(3)
    assert len({tuple(negatives(seed)) for seed in range(20)}) > 1


def test_langs_restrict_the_examples():
    examples = training_examples(constructed(), langs=["en"])
    assert {(ex.query_lang, ex.doc_lang) for ex in examples} == {("en", "en")}
    with pytest.raises(DataError, match="not loaded"):
        training_examples(constructed(), langs=["zh"])


def test_question_pairs_are_cross_lingual_parallel_questions():
    pairs = question_pairs(constructed())
    assert [(ex.query, ex.positive, ex.query_lang, ex.doc_lang) for ex in pairs] == [
        ("Was ist alpha?", "What is alpha?", "de", "en"), ("What is alpha?", "Was ist alpha?", "en", "de")]
    assert all(ex.negative is None and ex.qid == "qA" for ex in pairs)


def test_tatoeba_examples_both_directions(tmp_path):
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    (folder / "tatoeba.deu-eng.deu").write_text("Hallo.\n\nDanke.\n", encoding="utf-8")
    (folder / "tatoeba.deu-eng.eng").write_text("Hello.\nEmpty.\nThanks.\n", encoding="utf-8")
    examples = tatoeba_examples(["de", "en"], root=tmp_path)
    assert [(ex.query, ex.positive, ex.query_lang, ex.doc_lang) for ex in examples] == [
        ("Hallo.", "Hello.", "de", "en"), ("Hello.", "Hallo.", "en", "de"),
        ("Danke.", "Thanks.", "de", "en"), ("Thanks.", "Danke.", "en", "de")]
    assert examples[0].qid == examples[1].qid == "tatoeba:deu:0" and examples[0].source == "tatoeba"
    with pytest.raises(DataError, match="no Tatoeba pair for 'fr'"):
        tatoeba_examples(["fr"], root=tmp_path)


def test_fingerprint_identifies_the_examples():
    examples = training_examples(constructed(), seed=0)
    assert examples_fingerprint(examples) == examples_fingerprint(list(examples))
    changed = examples[:-1] + [Example(**{**examples[-1].__dict__, "negative": "Beta two?"})]
    assert examples_fingerprint(changed) != examples_fingerprint(examples)


def test_files_round_trip(tmp_path):
    from support.training import write_lareqa_fixture

    write_lareqa_fixture(tmp_path, "mlqa-r", ("de", "en", "es"))
    examples = training_examples("mlqa-r", root=tmp_path, langs=["de", "en", "es"])
    kinds = Counter((ex.query_lang == ex.doc_lang) for ex in examples)
    assert kinds[True] > 0 and kinds[False] > 0
    assert all(ex.negative and ex.negative != ex.positive for ex in examples)


@pytest.mark.mirror
@pytest.mark.skipif(not (data_root() / "lareqa" / "mlqa-r").is_dir(), reason="needs the data mirror")
def test_mlqa_r_pair_counts():
    examples = training_examples("mlqa-r")
    # Sum over question ids of (number of versions)^2; 275 questions answer in a one-sentence paragraph.
    assert len(examples) == 15747
    assert sum(ex.is_mono for ex in examples) == 4199
    assert sum(ex.negative is None for ex in examples) == 996
