import gzip
import json
import random

import pytest

from bench.data.miracl import (MIRACL_KNOWN_LANGS, MIRACL_LANGS, available_langs, load_qrels, load_topics,
                               miracl_tasks)
from bench.data.task import DataError
from bench.paths import data_root
from conftest import needs_data

MIRROR = data_root()
mirror = needs_data("miracl", "MIRACL topics")


# MIRACL v1.0 dev queries per language (the paper's table; the mirror's README: 13,071 over the 16 known).
DEV_QUERIES = {"ar": 2896, "bn": 411, "en": 799, "es": 648, "fa": 632, "fi": 1271, "fr": 343, "hi": 350,
               "id": 960, "ja": 860, "ko": 213, "ru": 1252, "sw": 482, "te": 828, "th": 733, "zh": 393}


@mirror
def test_mirror_dev_topics():
    assert available_langs(MIRROR) == sorted(MIRACL_LANGS)
    counts = {lang: len(load_topics(lang, MIRROR)) for lang in MIRACL_KNOWN_LANGS}
    assert counts == DEV_QUERIES
    assert sum(counts.values()) == 13071
    # The two surprise languages come on top.
    assert (len(load_topics("de", MIRROR)), len(load_topics("yo", MIRROR))) == (305, 119)


@mirror
def test_mirror_qrels_keep_non_relevant_judgements():
    qrels = load_qrels("en", MIRROR)
    grades = [g for judged in qrels.values() for g in judged.values()]
    assert (grades.count(0), grades.count(1), len(qrels)) == (6024, 2326, 799)


@mirror
def test_mirror_without_corpus_says_where_to_get_it():
    with pytest.raises(DataError, match=r"not in the offline mirror.*miracl/miracl-corpus.*--corpus DIR"):
        miracl_tasks(["sw"], root=MIRROR)


@pytest.fixture
def root(tmp_path):
    """Topics and qrels for sw and yo in the mirror's layout."""
    for sub in ("topics", "qrels"):
        (tmp_path / "miracl" / sub).mkdir(parents=True)
    for lang in ("sw", "yo"):
        (tmp_path / "miracl" / "topics" / f"topics.miracl-v1.0-{lang}-dev.tsv").write_text(
            "1\tSwali la kwanza?\n2\tSwali la pili?\n", encoding="utf-8")
        (tmp_path / "miracl" / "qrels" / f"qrels.miracl-v1.0-{lang}-dev.tsv").write_text(
            "1\tQ0\t10#0\t1\n1\tQ0\t10#1\t0\n2\tQ0\t20#0\t1\n2\tQ0\t99#0\t1\n", encoding="utf-8")
    return tmp_path


DOCS = [{"docid": "10#0", "title": "Kumi", "text": "Maandishi ya kwanza."},
        {"docid": "10#1", "title": "Kumi", "text": "Maandishi ya pili."},
        {"docid": "20#0", "title": "Ishirini", "text": "Maandishi ya tatu."}]


def write_docs(path, docs, gz=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(body)
    else:
        path.write_text(body, encoding="utf-8")


def test_task_from_corpus_in_official_layout(root, tmp_path):
    corpus_dir = tmp_path / "corpus"
    write_docs(corpus_dir / "miracl-corpus-v1.0-sw" / "docs-0.jsonl.gz", DOCS[:2])
    write_docs(corpus_dir / "miracl-corpus-v1.0-sw" / "docs-1.jsonl.gz", DOCS[2:])
    (task,) = miracl_tasks(corpus_dir=corpus_dir, root=root)  # languages found from the corpus folders
    assert (task.suite, task.dataset, task.split, task.setting, task.query_lang, task.doc_lang) == (
        "miracl", "miracl", "dev", "mono", "sw", "sw")
    assert task.ranking == "topk" and task.metrics == ("ndcg@10", "recall@100")
    assert task.queries == {"1": "Swali la kwanza?", "2": "Swali la pili?"}
    assert task.qrels == {"1": {"10#0": 1, "10#1": 0}, "2": {"20#0": 1, "99#0": 1}}  # grade 0 kept
    assert task.corpus["20#0"] == {"title": "Ishirini", "text": "Maandishi ya tatu."}
    assert task.warnings == ["1 of 4 judged sw docs (1 relevant) are absent from the corpus (3 docs); "
                             "a partial corpus lowers the scores"]


def test_plain_jsonl_directly_in_the_folder_serves_one_language(root, tmp_path):
    write_docs(tmp_path / "flat" / "docs.jsonl", DOCS, gz=False)
    (task,) = miracl_tasks(["yo"], corpus_dir=tmp_path / "flat", root=root)
    assert len(task.corpus) == 3 and task.query_lang == "yo"
    with pytest.raises(DataError, match="one language only"):
        miracl_tasks(["yo", "sw"], corpus_dir=tmp_path / "flat", root=root)
    with pytest.raises(DataError, match="name the corpus language"):
        miracl_tasks(corpus_dir=tmp_path / "flat", root=root)


def test_bad_records_name_file_and_line(root, tmp_path):
    path = tmp_path / "corpus" / "miracl-corpus-v1.0-sw" / "docs-0.jsonl.gz"
    write_docs(path, [DOCS[0], {"docid": "10#1", "title": "Kumi"}])
    with pytest.raises(DataError, match=r"docs-0\.jsonl\.gz:2: missing field\(s\) text \(MIRACL records"):
        miracl_tasks(["sw"], corpus_dir=tmp_path / "corpus", root=root)
    write_docs(path, [{"title": "Kumi", "text": "x"}])
    with pytest.raises(DataError, match=r"docs-0\.jsonl\.gz:1: missing field\(s\) docid"):
        miracl_tasks(["sw"], corpus_dir=tmp_path / "corpus", root=root)


def test_errors_name_the_fix(root, tmp_path):
    with pytest.raises(DataError, match=r"miracl/miracl-corpus.*--corpus DIR"):
        miracl_tasks(["sw"], root=root)
    with pytest.raises(DataError, match=r"no MIRACL dev topics for 'de'.*available: sw, yo"):
        miracl_tasks(["de"], corpus_dir=tmp_path, root=root)
    with pytest.raises(DataError, match=r"no MIRACL corpus for 'sw'.*miracl-corpus-v1\.0-sw/docs-\*\.jsonl\.gz"):
        miracl_tasks(["sw"], corpus_dir=tmp_path / "miracl", root=root)
    bad = root / "miracl" / "qrels" / "qrels.miracl-v1.0-yo-dev.tsv"
    bad.write_text("1 Q0 10#0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"qrels\.miracl-v1\.0-yo-dev\.tsv:1: expected TREC qrels"):
        load_qrels("yo", root)


def test_suite_end_to_end_through_the_cli(tmp_path, monkeypatch, tiny_model_dir):
    """`bench run --suite miracl --corpus DIR` on a fixture in MIRACL's layout. BM25 (sw: Anserini's whitespace
    analyzer) must rank each query's document first: query 1 shares all four of its terms with doc 10#0 but only
    'mji mkuu wa' with 20#0, and 'Kenya' occurs in no other document, so nDCG@10 = Recall@100 = 1 by hand."""
    from bench.cli import main
    from bench.results import ResultStore

    for sub in ("topics", "qrels"):
        (tmp_path / "miracl" / sub).mkdir(parents=True)
    (tmp_path / "miracl" / "topics" / "topics.miracl-v1.0-sw-dev.tsv").write_text(
        "1\tmji mkuu wa Kenya\n2\tmji mkuu wa Tanzania\n", encoding="utf-8")
    (tmp_path / "miracl" / "qrels" / "qrels.miracl-v1.0-sw-dev.tsv").write_text(
        "1\tQ0\t10#0\t1\n1\tQ0\t30#0\t0\n2\tQ0\t20#0\t1\n", encoding="utf-8")
    docs = [{"docid": "10#0", "title": "Nairobi", "text": "Nairobi ni mji mkuu wa Kenya"},
            {"docid": "20#0", "title": "Dodoma", "text": "Dodoma ni mji mkuu wa Tanzania"},
            {"docid": "30#0", "title": "Simba", "text": "Simba ni mnyama wa porini"}]
    write_docs(tmp_path / "corpus" / "miracl-corpus-v1.0-sw" / "docs-0.jsonl.gz", docs)
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))

    args = ["run", "--suite", "miracl", "--langs", "sw", "--corpus", str(tmp_path / "corpus"), "--experiment", "m"]
    assert main([*args, "--model", "bm25", str(tiny_model_dir)]) == 0
    rows = ResultStore("m").load()
    bm25 = rows[rows["model"] == "bm25"].set_index("metric")["value"]
    assert bm25.to_dict() == {"ndcg@10": 1.0, "recall@100": 1.0}
    assert set(rows["suite"]) == {"miracl"} and set(rows["query_lang"]) == {"sw"} and set(rows["split"]) == {"dev"}
    dense = rows[rows["model"] == "tiny-bert"]
    assert sorted(dense["metric"]) == ["ndcg@10", "recall@100"] and dense["value"].between(0, 1).all()
    assert (rows["n_queries"] == 2).all()


def test_the_corpus_is_streamed(root, tmp_path):
    """MIRACL's corpus is a JsonlCorpus (an index of ids and offsets, not the texts); shards with one id twice
    are refused naming both files and lines."""
    from bench.data.corpus import JsonlCorpus

    corpus_dir = tmp_path / "corpus"
    write_docs(corpus_dir / "miracl-corpus-v1.0-sw" / "docs-0.jsonl.gz", DOCS[:2])
    write_docs(corpus_dir / "miracl-corpus-v1.0-sw" / "docs-1.jsonl.gz", DOCS[2:])
    (task,) = miracl_tasks(["sw"], corpus_dir=corpus_dir, root=root)
    assert isinstance(task.corpus, JsonlCorpus) and list(task.corpus) == ["10#0", "10#1", "20#0"]
    assert dict(task.corpus.items()) == {d["docid"]: {"title": d["title"], "text": d["text"]} for d in DOCS}
    write_docs(corpus_dir / "miracl-corpus-v1.0-sw" / "docs-1.jsonl.gz", [DOCS[2], DOCS[0]])
    with pytest.raises(DataError, match=r"duplicate docid '10#0': .*docs-0\.jsonl\.gz:1 and .*docs-1\.jsonl\.gz:2"):
        miracl_tasks(["sw"], corpus_dir=corpus_dir, root=root)


N_SYNTHETIC = 200_000
N_QUERIES = 20
FILLER = ("river city school music history north water king church war year team people season film island "
          "language station league party").split()


def synthetic_miracl(folder, n=N_SYNTHETIC, queries=N_QUERIES, shards=4, seed=0):
    """n short passages in MIRACL's layout (gzipped shards, docid "<article>#<passage>") over common words, plus
    topics and qrels: query i names a word only its relevant passage holds, so BM25 ranks that passage first
    and nDCG@10 = Recall@100 = 1 by construction. Returns the corpus folder."""
    rng = random.Random(seed)
    relevant = sorted(rng.sample(range(n), queries))
    word = {pos: f"zorblat{chr(97 + q % 26)}{chr(97 + q // 26)}" for q, pos in enumerate(relevant)}
    out = folder / "corpus" / "miracl-corpus-v1.0-en"
    out.mkdir(parents=True)
    per = -(-n // shards)
    for s in range(shards):
        with gzip.open(out / f"docs-{s}.jsonl.gz", "wt", encoding="utf-8", compresslevel=1) as f:
            for i in range(s * per, min(n, (s + 1) * per)):
                text = " ".join(rng.choice(FILLER) for _ in range(rng.randint(10, 30)))
                if i in word:
                    text += f" {word[i]}"
                f.write(json.dumps({"docid": f"{i // 5}#{i % 5}", "title": f"Article {i // 5}", "text": text}) + "\n")
    for sub in ("topics", "qrels"):
        (folder / "miracl" / sub).mkdir(parents=True)
    (folder / "miracl" / "topics" / "topics.miracl-v1.0-en-dev.tsv").write_text(
        "".join(f"q{q}\twhere is the {word[pos]} river\n" for q, pos in enumerate(relevant)), encoding="utf-8")
    (folder / "miracl" / "qrels" / "qrels.miracl-v1.0-en-dev.tsv").write_text(
        "".join(f"q{q}\tQ0\t{pos // 5}#{pos % 5}\t1\n" for q, pos in enumerate(relevant)), encoding="utf-8")
    return folder / "corpus"


def test_200k_passages_end_to_end_with_bm25(tmp_path, monkeypatch, capsys):
    """`bench run --suite miracl` over 200k synthetic passages in 4 gzipped shards: streamed into Lucene, scored,
    and the second run of the corpus reads its cached index."""
    from bench.cli import main
    from bench.data.corpus import JsonlCorpus
    from bench.results import ResultStore

    corpus_dir = synthetic_miracl(tmp_path)
    monkeypatch.setenv("BENCH_DATA", str(tmp_path))
    args = ["run", "--suite", "miracl", "--langs", "en", "--corpus", str(corpus_dir), "--experiment", "big"]
    assert main([*args, "--model", "bm25"]) == 0
    assert f"({N_QUERIES} queries, {N_SYNTHETIC} docs)" in capsys.readouterr().out
    rows = ResultStore("big").load()
    assert rows.set_index("metric")["value"].to_dict() == {"ndcg@10": 1.0, "recall@100": 1.0}
    (task,) = miracl_tasks(["en"], corpus_dir=corpus_dir, root=tmp_path)
    assert isinstance(task.corpus, JsonlCorpus) and not task.corpus.built and len(task.corpus) == N_SYNTHETIC

