"""The BEIR loader on the fixture folder, its malformed variants, and the offline mirror."""

from __future__ import annotations

import re

import pytest

from bench.data.beir import BEIR_DATASETS, BEIR_URL, beir_task, load_beir_folder
from bench.protocol import DEFAULT_BEIR
from bench.data.suites import SuiteOptions, suite_tasks
from bench.data.task import DataError

# ------------------------------------------------------------------------------------------ loading


def test_loads_fixture(beir_fixture_dir, fixture_data):
    task = load_beir_folder(beir_fixture_dir)
    assert (task.suite, task.dataset, task.split) == ("beir", "scifact", "test")
    assert len(task.corpus) == 30
    # Title and text kept apart, exactly as written.
    assert task.corpus["coffee1"] == {
        "title": "Coffee and sleep",
        "text": "Caffeine in coffee delays sleep onset and reduces deep sleep when drunk late in the evening."}
    # queries.jsonl holds 10 queries; q9 and q10 are judged only in train, so the test task leaves them out.
    assert sorted(task.queries, key=lambda q: int(q[1:])) == [f"q{i}" for i in range(1, 9)]
    assert task.queries["q5"] == "predict volcano eruption lava"
    assert task.qrels == fixture_data["qrels"]["test"]
    # Graded judgements survive as ints, zeros included.
    assert task.qrels["q3"] == {"solar1": 2, "solar3": 1, "solar2": 0}
    assert task.warnings == []
    assert task.ignore_identical_ids and task.ranking == "topk"
    assert task.metrics == ("ndcg@10", "recall@100", "map@100", "mrr@10")


def test_loads_other_split_and_name(beir_fixture_dir):
    task = load_beir_folder(beir_fixture_dir, split="train", name="mine")
    assert task.dataset == "mine" and task.split == "train"
    assert set(task.queries) == {"q9", "q10"}
    assert task.qrels == {"q9": {"tides3": 1}, "q10": {"other2": 1}}


def test_qrels_without_header_and_missing_title(beir_variant):
    # A headerless qrels file is read from its first line; a record without a title gets "".
    folder = beir_variant(corpus=[{"_id": "d1", "text": "only text"}, {"_id": 7, "title": None, "text": "int id"}],
                          queries=[{"_id": "a", "text": "text"}],
                          qrels={"test": "a\td1\t1\na\t7\t2\n"})
    task = load_beir_folder(folder)
    assert task.corpus == {"d1": {"title": "", "text": "only text"}, "7": {"title": "", "text": "int id"}}
    assert task.qrels == {"a": {"d1": 1, "7": 2}}


# ------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", ["corpus.jsonl", "queries.jsonl"])
def test_missing_file(beir_variant, name):
    folder = beir_variant(remove=(name,))
    with pytest.raises(DataError, match=rf"missing file .*{re.escape(name)}"):
        load_beir_folder(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no dataset folder"):
        load_beir_folder(tmp_path / "nowhere")


def test_malformed_json_line(beir_variant, fixture_data):
    corpus = list(fixture_data["corpus"])
    corpus[2] = '{"_id": "broken", "text": "no closing brace"'
    folder = beir_variant(corpus=corpus)
    with pytest.raises(DataError) as err:
        load_beir_folder(folder)
    message = str(err.value)
    assert "corpus.jsonl:3:" in message and "malformed JSON" in message


def test_malformed_query_line(beir_variant):
    folder = beir_variant(queries=[{"_id": "q1", "text": "a"}, "", "not json at all"])
    with pytest.raises(DataError, match=r"queries\.jsonl:3: malformed JSON"):
        load_beir_folder(folder)


def test_json_line_not_an_object(beir_variant, fixture_data):
    folder = beir_variant(corpus=[*fixture_data["corpus"][:1], '["a", "list"]'])
    with pytest.raises(DataError, match=r"corpus\.jsonl:2: expected a JSON object, got list"):
        load_beir_folder(folder)


def test_missing_field(beir_variant, fixture_data):
    folder = beir_variant(corpus=[*fixture_data["corpus"][:4], {"_id": "x", "title": "no text"}])
    with pytest.raises(DataError, match=r"corpus\.jsonl:5: missing field\(s\) text"):
        load_beir_folder(folder)


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_id(beir_variant, fixture_data, empty):
    folder = beir_variant(corpus=[fixture_data["corpus"][0], {"_id": empty, "title": "", "text": "x"}])
    with pytest.raises(DataError, match=r"corpus\.jsonl:2: empty _id"):
        load_beir_folder(folder)


def test_duplicate_doc_id(beir_variant, fixture_data):
    folder = beir_variant(corpus=[*fixture_data["corpus"], {"_id": "coffee2", "title": "again", "text": "dup"}])
    with pytest.raises(DataError, match=r"corpus\.jsonl:31: duplicate _id 'coffee2'"):
        load_beir_folder(folder)


def test_duplicate_query_id(beir_variant, fixture_data):
    queries = [{"_id": q, "text": t} for q, t in fixture_data["queries"].items()] + [{"_id": "q4", "text": "dup"}]
    folder = beir_variant(queries=queries)
    with pytest.raises(DataError, match=r"queries\.jsonl:11: duplicate _id 'q4'"):
        load_beir_folder(folder)


def test_qrels_name_unknown_queries(beir_variant, fixture_data):
    qrels = {"test": {**fixture_data["qrels"]["test"], "q99": {"coffee1": 1}, "q77": {"bees1": 1}}}
    folder = beir_variant(qrels=qrels)
    with pytest.raises(DataError) as err:
        load_beir_folder(folder)
    message = str(err.value)
    assert "2 query ids absent from queries.jsonl" in message and "'q77'" in message
    assert "test.tsv" in message


def test_unknown_split_lists_available(beir_fixture_dir):
    with pytest.raises(DataError) as err:
        load_beir_folder(beir_fixture_dir, split="dev")
    message = str(err.value)
    assert "unknown split 'dev'" in message
    assert "available splits: ['test', 'train']" in message


def test_unknown_split_of_a_named_dataset(beir_fixture_dir):
    # scifact has train and test only (BEIR_DATASETS), whatever the folder holds.
    with pytest.raises(DataError, match="unknown split 'dev' for scifact; available: train, test"):
        beir_task("scifact", split="dev", root=beir_fixture_dir.parent.parent)


@pytest.mark.parametrize("row, lineno", [
    ("q1\tcoffee1", 3),              # two columns
    ("q1\tcoffee1\t1\textra", 3),    # four columns
    ("q1\tcoffee1\thigh", 3),        # not an integer grade
    ("q1 coffee1 1", 3),             # spaces, not tabs
])
def test_malformed_qrels_row(beir_variant, row, lineno):
    text = "query-id\tcorpus-id\tscore\nq1\tcoffee2\t1\n" + row + "\nq2\tvitamin1\t2\n"
    folder = beir_variant(qrels={"test": text})
    with pytest.raises(DataError) as err:
        load_beir_folder(folder)
    message = str(err.value)
    assert f"test.tsv:{lineno}:" in message
    assert "expected 'query-id<TAB>corpus-id<TAB>score'" in message


def test_qrels_pointing_at_missing_docs_warn_and_load(beir_variant, fixture_data):
    qrels = {"test": {**fixture_data["qrels"]["test"]}}
    qrels["test"]["q1"] = {**qrels["test"]["q1"], "ghost1": 1}
    qrels["test"]["q2"] = {**qrels["test"]["q2"], "ghost2": 2, "ghost3": 1}
    folder = beir_variant(qrels=qrels)
    task = load_beir_folder(folder)
    assert task.warnings == ["3 qrels point to documents absent from the corpus"]
    # Loading went on, and the judgements are kept (as BEIR keeps them: they only lower recall).
    assert task.qrels["q2"] == {"vitamin1": 2, "vitamin3": 1, "ghost2": 2, "ghost3": 1}
    assert len(task.corpus) == 30 and len(task.queries) == 8


# ----------------------------------------------------------------------------------- by name, registry


def test_unknown_dataset_lists_known(tmp_path):
    with pytest.raises(DataError) as err:
        beir_task("nosuchset", root=tmp_path)
    message = str(err.value)
    assert "unknown BEIR dataset 'nosuchset'" in message
    for name in ("scifact", "nfcorpus", "arguana", "fiqa", "msmarco"):
        assert name in message
    with pytest.raises(DataError, match="unknown BEIR dataset.*nosuchset.*known: .*scifact"):
        suite_tasks("beir", SuiteOptions(datasets=("nosuchset",)))


def test_named_dataset_read_from_root(beir_fixture_dir):
    task = beir_task("scifact", root=beir_fixture_dir.parent.parent)
    assert task.dataset == "scifact" and len(task.corpus) == 30 and len(task.queries) == 8


# The md5 column of beir's README ("Available Datasets"), copied by hand.
PUBLISHED_MD5 = {
    "msmarco": "444067daf65d982533ea17ebd59501e4", "trec-covid": "ce62140cb23feb9becf6270d0d1fe6d1",
    "nfcorpus": "a89dba18a62ef92f7d323ec890a0d38d", "nq": "d4d3d2e48787a744b6f6e691ff534307",
    "hotpotqa": "f412724f78b0d91183a0e86805e16114", "fiqa": "17918ed23cd04fb15047f73e6c3bd9d9",
    "arguana": "8ad3e3c2a5867cdced806d6503f29b99", "webis-touche2020": "46f650ba5a527fc69e0a6521c5a23563",
    "quora": "18fb154900ba42a600f84b839c173167", "dbpedia-entity": "c2a39eb420a3164af735795df012ac2c",
    "scidocs": "38121350fc3a4d2f48850f6aff52e4a9", "fever": "5a818580227bfb4b35bb6fa46d9b6c03",
    "climate-fever": "8b66f0a9126c521bae2bde127b4dc99d", "scifact": "5f7d1de60b170fc8027bb7898e2efca1",
}


def test_registry_md5_and_urls():
    assert set(DEFAULT_BEIR) <= set(BEIR_DATASETS)
    assert BEIR_URL == "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
    for name, dataset in BEIR_DATASETS.items():
        assert dataset.name == name
        assert re.fullmatch(r"[0-9a-f]{32}", dataset.md5), name
        assert dataset.url == f"https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
        assert "test" in dataset.splits or name == "msmarco"
        if name in PUBLISHED_MD5:
            assert dataset.md5 == PUBLISHED_MD5[name], name
    assert len({d.md5 for d in BEIR_DATASETS.values()}) == len(BEIR_DATASETS)


# ----------------------------------------------------------------------------------------- mirror


def test_mirror_scifact(mirror):
    task = beir_task("scifact", root=mirror)
    assert len(task.corpus) == 5183
    assert len(task.queries) == 300
    assert sum(len(judged) for judged in task.qrels.values()) == 339
    assert task.warnings == []
    assert all(grade == 1 for judged in task.qrels.values() for grade in judged.values())


def test_mirror_nfcorpus(mirror):
    task = beir_task("nfcorpus", root=mirror)
    assert len(task.corpus) == 3633
    assert len(task.queries) == 323
    # NFCorpus is graded (levels 1 and 2 in test).
    assert {g for judged in task.qrels.values() for g in judged.values()} >= {1, 2}


def test_mirror_arguana(mirror):
    task = beir_task("arguana", root=mirror)
    assert len(task.corpus) == 8674
    assert len(task.queries) == 1406
    assert task.warnings == ["5 qrels point to documents absent from the corpus"]
    # ArguAna's queries are corpus documents: the reason for ignore_identical_ids.
    assert task.ignore_identical_ids
    assert sum(q in task.corpus for q in task.queries) > 1000
