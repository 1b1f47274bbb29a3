"""Tatoeba bitext retrieval (LASER test sets): each sentence retrieves its translation.

Files: `<root>/tatoeba/tatoeba.<xxx>-eng.{xxx,eng}`, line-aligned, up to 1,000 pairs, named by
ISO 639-3 codes (LASER's choice: `cmn` for Chinese, `pes` for Persian, `swh` for Swahili, ...).
Languages are asked for by the ISO 639-1 codes the rest of the benchmark uses, or by the file code.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bench.data.lareqa import LAREQA_LANGS
from bench.data.miracl import MIRACL_LANGS
from bench.data.task import DataError, RetrievalTask
from bench.paths import data_root

# ISO 639-1 -> the LASER file code, for every mirror language with a two-letter code, plus Yoruba
# (a MIRACL language LASER's set lacks, so that asking for it names what is missing).
ISO1_TO_TATOEBA = {
    "af": "afr", "am": "amh", "ar": "ara", "az": "aze", "be": "bel", "bg": "bul", "bn": "ben", "br": "bre",
    "bs": "bos", "ca": "cat", "ch": "cha", "cs": "ces", "cy": "cym", "da": "dan", "de": "deu", "el": "ell",
    "eo": "epo", "es": "spa", "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fo": "fao", "fr": "fra",
    "fy": "fry", "ga": "gle", "gd": "gla", "gl": "glg", "he": "heb", "hi": "hin", "hr": "hrv", "hu": "hun",
    "hy": "hye", "ia": "ina", "id": "ind", "ie": "ile", "io": "ido", "is": "isl", "it": "ita", "ja": "jpn",
    "jv": "jav", "ka": "kat", "kk": "kaz", "km": "khm", "ko": "kor", "ku": "kur", "kw": "cor", "la": "lat",
    "lt": "lit", "lv": "lvs", "mk": "mkd", "ml": "mal", "mn": "mon", "mr": "mar", "ms": "zsm", "nb": "nob",
    "nl": "nld", "nn": "nno", "oc": "oci", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sk": "slk",
    "sl": "slv", "sq": "sqi", "sr": "srp", "sv": "swe", "sw": "swh", "ta": "tam", "te": "tel", "th": "tha",
    "tk": "tuk", "tl": "tgl", "tr": "tur", "tt": "tat", "ug": "uig", "uk": "ukr", "ur": "urd", "uz": "uzb",
    "vi": "vie", "xh": "xho", "yi": "yid", "yo": "yor", "zh": "cmn",
}
TATOEBA_TO_ISO1 = {code: iso for iso, code in ISO1_TO_TATOEBA.items()}
METRICS = ("accuracy@1",)


def tatoeba_dir(root: Path | None = None) -> Path:
    return (Path(root) if root else data_root()) / "tatoeba"


def available_codes(root: Path | None = None) -> list[str]:
    """File codes with a `tatoeba.<xxx>-eng.<xxx>` file under the root."""
    folder = tatoeba_dir(root)
    return sorted(p.name.split(".")[1][:-4] for p in folder.glob("tatoeba.*-eng.*") if not p.name.endswith(".eng"))


def default_langs(root: Path | None = None) -> list[str]:
    """The languages of XQuAD-R, MLQA-R and MIRACL that the mirror pairs with English."""
    have = set(available_codes(root))
    wanted = {lang for langs in LAREQA_LANGS.values() for lang in langs} | set(MIRACL_LANGS)
    return sorted(lang for lang in wanted if ISO1_TO_TATOEBA.get(lang) in have)


def file_code(lang: str, root: Path | None = None) -> str:
    """The file code of a language given as ISO 639-1 or as the file code itself."""
    have = available_codes(root)
    code = ISO1_TO_TATOEBA.get(lang, lang)
    if code not in have:
        if not have:
            raise DataError(f"no Tatoeba files under {tatoeba_dir(root)}; set BENCH_DATA to a folder holding "
                            f"tatoeba/tatoeba.<xxx>-eng.{{xxx,eng}}")
        named = ", ".join(f"{TATOEBA_TO_ISO1[c]} ({c})" if c in TATOEBA_TO_ISO1 else c for c in have)
        hint = " (English is the other side of every pair)" if lang in ("en", "eng") else ""
        raise DataError(f"no Tatoeba pair for {lang!r}{hint} under {tatoeba_dir(root)}; available: {named}")
    return code


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"missing file {path}: a Tatoeba pair needs both .<xxx> and .eng sides") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    # split("\n"), not splitlines(): Unicode line separators inside a sentence must not shift the alignment.
    return [line.strip() for line in text.removesuffix("\n").split("\n")] if text else []


def load_pairs(lang: str, root: Path | None = None) -> tuple[list[str], list[str]]:
    """(sentences in lang, their English translations), line-aligned."""
    code = file_code(lang, root)
    stem = tatoeba_dir(root) / f"tatoeba.{code}-eng"
    other_path, eng_path = stem.with_name(f"{stem.name}.{code}"), stem.with_name(f"{stem.name}.eng")
    other, eng = _read_lines(other_path), _read_lines(eng_path)
    for path, lines in ((other_path, other), (eng_path, eng)):
        if not any(lines):
            raise DataError(f"{path} is empty: a Tatoeba side needs one sentence a line")
    if len(other) != len(eng):
        raise DataError(f"{other_path} has {len(other)} lines but {eng_path} has {len(eng)}; the two sides must "
                        f"be line-aligned translations")
    return other, eng


def tatoeba_tasks(langs: Iterable[str] | None = None, root: Path | None = None) -> list[RetrievalTask]:
    """Two tasks per language, xx->en and en->xx: each sentence retrieves its translation."""
    tasks: list[RetrievalTask] = []
    for lang in (default_langs(root) if langs is None else dict.fromkeys(langs)):
        code = file_code(lang, root)
        name = TATOEBA_TO_ISO1.get(code, code)
        other, eng = load_pairs(lang, root)
        other_side = {f"{code}:{i}": text for i, text in enumerate(other)}
        eng_side = {f"eng-{code}:{i}": text for i, text in enumerate(eng)}
        empty = sum(not text for text in other + eng)
        warnings = [f"tatoeba.{code}-eng: {empty} empty line(s)"] if empty else []
        stem = tatoeba_dir(root) / f"tatoeba.{code}-eng"
        files = (stem.with_name(f"{stem.name}.{code}"), stem.with_name(f"{stem.name}.eng"))
        tasks += [_bitext_task(other_side, eng_side, name, "en", warnings, files),
                  _bitext_task(eng_side, other_side, "en", name, warnings, files)]
    return tasks


def _bitext_task(queries: dict[str, str], targets: dict[str, str], query_lang: str, doc_lang: str,
                 warnings: list[str], files: tuple[Path, ...]) -> RetrievalTask:
    # Both sides are in the same line order, so the i-th query's translation is the i-th target.
    qrels = {qid: {did: 1} for qid, did in zip(queries, targets)}
    return RetrievalTask(
        suite="tatoeba", dataset="tatoeba", split="test",
        corpus={did: {"title": "", "text": text} for did, text in targets.items()},
        queries=dict(queries), qrels=qrels, setting="bitext", query_lang=query_lang, doc_lang=doc_lang,
        ranking="full", metrics=METRICS, warnings=list(warnings), files=files,
    )
