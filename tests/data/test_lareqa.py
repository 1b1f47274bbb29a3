import json
from collections import Counter

import pytest

from bench.data.lareqa import LAREQA_LANGS, lareqa_tasks, load_lareqa
from bench.data.task import DataError
from bench.paths import data_root
from conftest import needs_data

MIRROR = data_root()
mirror = needs_data("lareqa", "LAReQA files")


# Published counts (LAReQA release notes).
XQUAD_R_CANDIDATES = {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244, "ru": 1219,
                      "th": 852, "tr": 1167, "vi": 1209, "zh": 1196}
MLQA_R_QUESTIONS = {"ar": 517, "de": 512, "en": 1148, "es": 500, "hi": 507, "vi": 511, "zh": 504}
MLQA_R_CANDIDATES = {"ar": 2545, "de": 2362, "en": 6264, "es": 1787, "hi": 2426, "vi": 2828, "zh": 2322}


@pytest.fixture(scope="module")
def xquad():
    return load_lareqa("xquad-r", MIRROR)


@pytest.fixture(scope="module")
def mlqa():
    return load_lareqa("mlqa-r", MIRROR)


@mirror
def test_xquad_r_counts(xquad):
    assert Counter(q.lang for q in xquad.questions) == {lang: 1190 for lang in LAREQA_LANGS["xquad-r"]}
    assert Counter(c.lang for c in xquad.candidates.values()) == XQUAD_R_CANDIDATES
    assert len(xquad.candidates) == 13014
    assert all(len(v) == 11 for v in xquad.versions.values())


@mirror
def test_mlqa_r_counts(mlqa):
    assert Counter(q.lang for q in mlqa.questions) == MLQA_R_QUESTIONS
    assert Counter(c.lang for c in mlqa.candidates.values()) == MLQA_R_CANDIDATES
    assert len(mlqa.candidates) == 20534
    assert {len(v) for v in mlqa.versions.values()} == {2, 3, 4}


@mirror
def test_answer_sentence_holds_the_answer_start(xquad):
    # First question of en.json: its answer "308" starts at 34, inside sentence 0 ([0, 165]) of the
    # first paragraph of the first article.
    q = xquad.versions["56beb4343aeaaa14008c925b"]["en"]
    answer = xquad.candidates[q.answer]
    assert q.answer == "en:0:0:0" and "308 points" in answer.text
    assert xquad.paragraphs[answer.paragraph][0] == q.answer


@mirror
def test_mirror_anomalies_are_counted_not_fatal(xquad):
    # Every answer start of the mirror lies in a sentence span; what remains are answers that run into
    # the next sentence, two misaligned Turkish spans and one Turkish answer sentence ("I.") with a twin.
    tr = " ".join(xquad.warnings["tr"])
    assert "20 answers run past" in tr and "2 sentences differ" in tr and "1 questions' answer sentence" in tr
    assert not any("dropped" in w for ws in xquad.warnings.values() for w in ws)


@mirror
def test_xquad_r_tasks():
    tasks = lareqa_tasks("xquad-r", root=MIRROR)
    assert Counter(t.setting for t in tasks) == {"mono": 11, "cross": 110, "multi": 11}
    assert all(t.ranking == "full" and t.suite == t.dataset == "xquad-r" and t.split == "test" for t in tasks)
    assert len({t.key for t in tasks}) == len(tasks)
    mono = {t.query_lang: t for t in tasks if t.setting == "mono"}
    for t in tasks:
        assert len(t.queries) == 1190
        if t.setting == "multi":
            assert t.metrics == ("map", "recall@10", "rank_distance") and t.doc_lang == "multi"
            assert len(t.corpus) == 13014 and all(len(rel) == 11 for rel in t.qrels.values())
        else:
            assert t.metrics == ("map", "recall@1")
            # One dict per language pool, shared by every task ranking that pool.
            assert t.corpus is mono[t.doc_lang].corpus
            assert all(d.startswith(t.doc_lang + ":") for rel in t.qrels.values() for d in rel)
    multi = next(t for t in tasks if t.setting == "multi")
    assert all(multi.corpus[cid] is mono["de"].corpus[cid] for cid in mono["de"].corpus)


@mirror
def test_mlqa_r_cross_skips_queries_without_a_target_version(mlqa):
    tasks = lareqa_tasks("mlqa-r", root=MIRROR)
    assert Counter(t.setting for t in tasks) == {"mono": 7, "cross": 42, "multi": 7}
    ar_vi = next(t for t in tasks if (t.setting, t.query_lang, t.doc_lang) == ("cross", "ar", "vi"))
    expected = sum(1 for q in mlqa.questions_in("ar") if "vi" in mlqa.versions[q.id])
    assert len(ar_vi.queries) == expected
    assert f"skipped {517 - expected} of 517 ar queries with no vi version" in ar_vi.warnings
    multi_en = next(t for t in tasks if (t.setting, t.query_lang) == ("multi", "en"))
    assert len(multi_en.queries) == 1148
    assert sum(len(rel) for rel in multi_en.qrels.values()) == sum(MLQA_R_QUESTIONS.values())


@mirror
def test_langs_restrict_the_tasks():
    tasks = lareqa_tasks("xquad-r", settings=("cross", "multi"), langs=["de", "en"], root=MIRROR)
    assert sorted((t.setting, t.query_lang, t.doc_lang) for t in tasks) == [
        ("cross", "de", "en"), ("cross", "en", "de"), ("multi", "de", "multi"), ("multi", "en", "multi")]
    multi = [t for t in tasks if t.setting == "multi"][0]
    assert len(multi.corpus) == 1276 + 1180


def write_lareqa(root, dataset, lang, paragraphs):
    folder = root / "lareqa" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{lang}.json").write_text(json.dumps({"version": "1.1", "data": [
        {"title": "t", "paragraphs": paragraphs}]}), encoding="utf-8")


def paragraph(qas):
    context = "Alpha one. Beta two. Gamma three."
    return {"context": context, "sentences": ["Alpha one.", "Beta two.", "Gamma three."],
            "sentence_breaks": [[0, 10], [11, 20], [21, 33]],
            "qas": [{"id": qid, "question": f"question {qid}?", "answers": [{"answer_start": start,
                                                                             "text": context[start:start + 4]}]}
                    for qid, start in qas]}


@pytest.fixture
def tiny(tmp_path):
    # en: q1 answered in sentence 1, q2 in sentence 2, q3 starts in the gap between sentences 0 and 1
    # (offset 10, the space): dropped with a warning; q4's answer "wo. " starts in sentence 1 ([11, 20))
    # and runs past it. de: q1 only.
    write_lareqa(tmp_path, "mlqa-r", "en", [paragraph([("q1", 11), ("q2", 29), ("q3", 10), ("q4", 17)])])
    write_lareqa(tmp_path, "mlqa-r", "de", [paragraph([("q1", 0)])])
    return tmp_path


def test_parse_small_files(tiny):
    data = load_lareqa("mlqa-r", tiny, langs=["en", "de"])
    assert data.langs == ("de", "en")  # the dataset's order
    assert {(q.lang, q.id): q.answer for q in data.questions} == {
        ("en", "q1"): "en:0:0:1", ("en", "q2"): "en:0:0:2", ("en", "q4"): "en:0:0:1", ("de", "q1"): "de:0:0:0"}
    assert data.paragraphs["en:0:0"] == ["en:0:0:0", "en:0:0:1", "en:0:0:2"]
    assert data.candidates["en:0:0:1"].text == "Beta two."
    warnings = " ".join(data.warnings["en"])
    assert "1 questions have an answer_start outside every sentence_breaks span" in warnings
    assert "1 answers run past the end of the sentence" in warnings


def test_small_tasks(tiny):
    tasks = {(t.setting, t.query_lang, t.doc_lang): t for t in lareqa_tasks("mlqa-r", langs=["en", "de"], root=tiny)}
    assert set(tasks) == {("mono", "en", "en"), ("mono", "de", "de"), ("cross", "en", "de"), ("cross", "de", "en"),
                          ("multi", "en", "multi"), ("multi", "de", "multi")}
    en_de = tasks["cross", "en", "de"]
    assert en_de.qrels == {"q1": {"de:0:0:0": 1}}
    assert "skipped 2 of 3 en queries with no de version" in en_de.warnings
    assert tasks["multi", "de", "multi"].qrels == {"q1": {"de:0:0:0": 1, "en:0:0:1": 1}}
    assert tasks["mono", "en", "en"].corpus == {f"en:0:0:{i}": {"title": "", "text": s}
                                               for i, s in enumerate(["Alpha one.", "Beta two.", "Gamma three."])}


def test_unknown_names_list_the_valid_ones(tiny):
    with pytest.raises(DataError, match="its languages: ar, de, en, es, hi, vi, zh"):
        load_lareqa("mlqa-r", tiny, langs=["el"])
    with pytest.raises(DataError, match="known: xquad-r, mlqa-r"):
        load_lareqa("lareqa", tiny)
    with pytest.raises(DataError, match="known: mono, cross, multi"):
        lareqa_tasks("mlqa-r", settings=("bilingual",), root=tiny)


def test_malformed_files_are_named(tmp_path):
    folder = tmp_path / "lareqa" / "xquad-r"
    folder.mkdir(parents=True)
    (folder / "en.json").write_text('{"data": [', encoding="utf-8")
    with pytest.raises(DataError, match=r"en\.json:1:\d+: invalid JSON"):
        load_lareqa("xquad-r", tmp_path, langs=["en"])
    para = paragraph([("q1", 0)])
    del para["sentence_breaks"]
    write_lareqa(tmp_path, "xquad-r", "en", [para])
    with pytest.raises(DataError, match=r"en\.json: data\[0\]\.paragraphs\[0\] has no 'sentence_breaks'"):
        load_lareqa("xquad-r", tmp_path, langs=["en"])
    with pytest.raises(DataError, match=r"missing file .*de\.json"):
        load_lareqa("xquad-r", tmp_path, langs=["de"])
