import pytest

from bench.data.task import DataError
from bench.data.tatoeba import default_langs, file_code, tatoeba_tasks
from bench.paths import data_root
from conftest import needs_data

MIRROR = data_root()
mirror = needs_data("tatoeba", "Tatoeba files")



@mirror
def test_default_languages_are_those_of_the_other_suites():
    # XQuAD-R, MLQA-R and MIRACL languages without English (the other side of every pair) and Yoruba
    # (not in LASER's set).
    assert default_langs(MIRROR) == ["ar", "bn", "de", "el", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru",
                                     "sw", "te", "th", "tr", "vi", "zh"]


@mirror
def test_codes_map_to_laser_files():
    assert {lang: file_code(lang, MIRROR) for lang in ["zh", "fa", "sw", "de", "ast"]} == {
        "zh": "cmn", "fa": "pes", "sw": "swh", "de": "deu", "ast": "ast"}


@mirror
def test_mirror_tasks():
    tasks = tatoeba_tasks(root=MIRROR)
    assert len(tasks) == 2 * 19
    sizes = {(t.query_lang, t.doc_lang): len(t.queries) for t in tasks}
    assert sizes["zh", "en"] == sizes["en", "zh"] == 1000
    assert (sizes["sw", "en"], sizes["te", "en"], sizes["th", "en"]) == (390, 234, 548)
    for t in tasks:
        assert (t.suite, t.dataset, t.split, t.setting, t.ranking, t.metrics) == (
            "tatoeba", "tatoeba", "test", "bitext", "full", ("accuracy@1",))
        assert len(t.corpus) == len(t.queries) and all(len(rel) == 1 for rel in t.qrels.values())
        assert not t.warnings
    assert len({t.key for t in tasks}) == len(tasks)


def write_pair(root, code, other, eng):
    folder = root / "tatoeba"
    folder.mkdir(exist_ok=True)
    (folder / f"tatoeba.{code}-eng.{code}").write_text("".join(line + "\n" for line in other), encoding="utf-8")
    (folder / f"tatoeba.{code}-eng.eng").write_text("".join(line + "\n" for line in eng), encoding="utf-8")


def test_both_directions_pair_line_i_with_line_i(tmp_path):
    write_pair(tmp_path, "deu", ["Hallo.", "Danke."], ["Hello.", "Thanks."])
    de_en, en_de = tatoeba_tasks(["de"], tmp_path)
    assert (de_en.query_lang, de_en.doc_lang, en_de.query_lang, en_de.doc_lang) == ("de", "en", "en", "de")
    assert de_en.queries == {"deu:0": "Hallo.", "deu:1": "Danke."}
    assert de_en.corpus == {"eng-deu:0": {"title": "", "text": "Hello."}, "eng-deu:1": {"title": "", "text": "Thanks."}}
    assert de_en.qrels == {"deu:0": {"eng-deu:0": 1}, "deu:1": {"eng-deu:1": 1}}
    assert en_de.qrels == {"eng-deu:0": {"deu:0": 1}, "eng-deu:1": {"deu:1": 1}}


def test_misaligned_files_are_an_error(tmp_path):
    write_pair(tmp_path, "spa", ["Hola.", "Gracias.", "Adiós."], ["Hello.", "Thanks."])
    with pytest.raises(DataError, match=r"tatoeba\.spa-eng\.spa has 3 lines but .*tatoeba\.spa-eng\.eng has 2"):
        tatoeba_tasks(["es"], tmp_path)


def test_unknown_language_lists_the_available_ones(tmp_path):
    write_pair(tmp_path, "deu", ["Hallo."], ["Hello."])
    write_pair(tmp_path, "ast", ["Hola."], ["Hello."])
    with pytest.raises(DataError, match=r"no Tatoeba pair for 'yo'.*available: ast, de \(deu\)"):
        tatoeba_tasks(["yo"], tmp_path)
    with pytest.raises(DataError, match="English is the other side"):
        tatoeba_tasks(["en"], tmp_path)
