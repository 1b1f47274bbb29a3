"""MIRACL v1.0 dev: monolingual passage retrieval in 18 languages, nDCG@10 and Recall@100.

The mirror holds topics (`<root>/miracl/topics/topics.miracl-v1.0-<lang>-dev.tsv`, `qid<TAB>query`)
and qrels (`<root>/miracl/qrels/qrels.miracl-v1.0-<lang>-dev.tsv`, TREC `qid Q0 docid rel`), but not
the passage collections (32.9M passages for English alone). The corpus is read from a folder in the
layout of the Hugging Face dataset `miracl/miracl-corpus`: `miracl-corpus-v1.0-<lang>/docs-*.jsonl.gz`
with records {"docid", "title", "text"}; plain `.jsonl` is accepted too. The corpus is streamed
(bench.data.corpus.JsonlCorpus): an index of ids and offsets, never the texts, is held in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bench.data.corpus import JsonlCorpus
from bench.data.task import DataError, RetrievalTask
from bench.paths import data_root

# The 16 "known" languages (training data released) and the 2 "surprise" ones (dev/test only).
MIRACL_KNOWN_LANGS = ("ar", "bn", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "zh")
MIRACL_SURPRISE_LANGS = ("de", "yo")
MIRACL_LANGS = MIRACL_KNOWN_LANGS + MIRACL_SURPRISE_LANGS
METRICS = ("ndcg@10", "recall@100")
CORPUS_HINT = ("the MIRACL corpus is not in the offline mirror: download the Hugging Face dataset "
               "miracl/miracl-corpus (folders miracl-corpus-v1.0-<lang>/docs-*.jsonl.gz) and pass its folder "
               "with --corpus DIR")
LAYOUT = 'MIRACL records are {"docid", "title", "text"}'


def _miracl_dir(root: Path | None) -> Path:
    return (Path(root) if root else data_root()) / "miracl"


def topics_path(lang: str, root: Path | None = None) -> Path:
    return _miracl_dir(root) / "topics" / f"topics.miracl-v1.0-{lang}-dev.tsv"


def qrels_path(lang: str, root: Path | None = None) -> Path:
    return _miracl_dir(root) / "qrels" / f"qrels.miracl-v1.0-{lang}-dev.tsv"


def available_langs(root: Path | None = None) -> list[str]:
    """Languages with dev topics under the root."""
    paths = (_miracl_dir(root) / "topics").glob("topics.miracl-v1.0-*-dev.tsv")
    return sorted(p.name.removeprefix("topics.miracl-v1.0-").removesuffix("-dev.tsv") for p in paths)


def check_lang(lang: str, root: Path | None = None) -> None:
    have = available_langs(root)
    if lang not in have:
        where = _miracl_dir(root) / "topics"
        if not have:
            raise DataError(f"no MIRACL topics under {where}; set BENCH_DATA to a folder holding "
                            f"miracl/topics/ and miracl/qrels/")
        raise DataError(f"no MIRACL dev topics for {lang!r} under {where}; available: {', '.join(have)}")


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    yield lineno, line.rstrip("\n")
    except FileNotFoundError:
        raise DataError(f"missing file {path}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None


def load_topics(lang: str, root: Path | None = None) -> dict[str, str]:
    """query id -> query text."""
    check_lang(lang, root)
    path = topics_path(lang, root)
    topics: dict[str, str] = {}
    for lineno, line in _lines(path):
        qid, tab, text = line.partition("\t")
        if not tab or not qid.strip():
            raise DataError(f"{path}:{lineno}: expected 'qid<TAB>query', got {line[:80]!r}")
        if qid in topics:
            raise DataError(f"{path}:{lineno}: duplicate query id {qid!r}")
        topics[qid] = text.strip()
    if not topics:
        raise DataError(f"{path} holds no topics (empty file): nothing could be scored")
    return topics


def load_qrels(lang: str, root: Path | None = None) -> dict[str, dict[str, int]]:
    """query id -> doc id -> grade; grade 0 judgements are kept (judged non-relevant)."""
    check_lang(lang, root)
    path = qrels_path(lang, root)
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in _lines(path):
        cols = line.split()
        if len(cols) != 4 or not cols[3].lstrip("-").isdigit():
            raise DataError(f"{path}:{lineno}: expected TREC qrels 'qid Q0 docid rel', got {line[:80]!r}")
        qrels.setdefault(cols[0], {})[cols[2]] = int(cols[3])
    if not qrels:
        raise DataError(f"{path} holds no judgements (empty file): nothing could be scored")
    return qrels


def _jsonl_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.jsonl"), *folder.glob("*.jsonl.gz")])


def corpus_files(corpus_dir: Path, lang: str, single_lang: bool) -> list[Path]:
    """The corpus files of lang: `miracl-corpus-v1.0-<lang>/` inside corpus_dir, else (for a run over
    one language only) JSONL files directly in corpus_dir."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise DataError(f"corpus folder {corpus_dir} does not exist; {CORPUS_HINT}")
    sub = corpus_dir / f"miracl-corpus-v1.0-{lang}"
    if sub.is_dir():
        if files := _jsonl_files(sub):
            return files
        raise DataError(f"{sub} holds no .jsonl or .jsonl.gz files; {CORPUS_HINT}")
    direct = _jsonl_files(corpus_dir)
    if direct and single_lang:
        return direct
    if direct:
        raise DataError(f"{corpus_dir} holds JSONL files directly, which can serve one language only; for "
                        f"several, put each in {corpus_dir}/miracl-corpus-v1.0-<lang>/")
    raise DataError(f"no MIRACL corpus for {lang!r} in {corpus_dir}: expected {sub.name}/docs-*.jsonl.gz; "
                    f"{CORPUS_HINT}")


def corpus_langs(corpus_dir: Path) -> list[str]:
    """Languages with a `miracl-corpus-v1.0-<lang>` folder in corpus_dir."""
    prefix = "miracl-corpus-v1.0-"
    return sorted(p.name.removeprefix(prefix) for p in Path(corpus_dir).glob(prefix + "*") if p.is_dir())


def load_corpus(files: Iterable[Path]) -> JsonlCorpus:
    """doc id -> {"title", "text"} from MIRACL JSONL (optionally gzipped) files, streamed: a JsonlCorpus keeps
    an index of ids and offsets (cached under $BENCH_CACHE/corpus), not the 32.9M English passages."""
    files = list(files)
    try:
        return JsonlCorpus(files, id_field="docid", layout=LAYOUT)
    except OSError as e:
        raise DataError(f"{e.filename or ', '.join(map(str, files))}: unreadable ({e.strerror or e}); "
                        f"re-download it") from None


def miracl_tasks(langs: Iterable[str] | None = None, corpus_dir: Path | None = None,
                 root: Path | None = None) -> list[RetrievalTask]:
    """One dev task per language. Without langs: the languages that corpus_dir has a folder for."""
    if corpus_dir is None:
        raise DataError(CORPUS_HINT)
    if langs is None:
        chosen = [lang for lang in corpus_langs(corpus_dir) if lang in available_langs(root)]
        if not chosen:
            raise DataError(f"no miracl-corpus-v1.0-<lang> folder in {corpus_dir}; name the corpus language "
                            f"(langs) if its files lie directly there; {CORPUS_HINT}")
    else:
        chosen = list(dict.fromkeys(langs))
    for lang in chosen:
        check_lang(lang, root)
    return [miracl_task(lang, corpus_files(corpus_dir, lang, len(chosen) == 1), root) for lang in chosen]


def miracl_task(lang: str, files: Iterable[Path], root: Path | None = None) -> RetrievalTask:
    """The dev task of one language over the corpus in files."""
    files = list(files)
    topics, qrels = load_topics(lang, root), load_qrels(lang, root)
    corpus = load_corpus(files)
    warnings = []
    textless = sum(1 for q in qrels if q in topics and not topics[q])
    if textless:
        warnings.append(f"{textless} judged {lang} topics have no text (scored as empty queries)")
    unjudged = sum(1 for q in topics if q not in qrels)
    if unjudged:
        warnings.append(f"{unjudged} of {len(topics)} {lang} topics have no qrels (not scored)")
    unknown = sorted(q for q in qrels if q not in topics)
    if unknown:
        warnings.append(f"{len(unknown)} {lang} qrels query ids have no topic (dropped; first {unknown[0]!r})")
    qrels = {q: judged for q, judged in qrels.items() if q in topics}
    judged = [(d, grade) for docs in qrels.values() for d, grade in docs.items()]
    absent = [grade for d, grade in judged if d not in corpus]
    if absent:
        # Kept, as BEIR keeps them: they cannot be retrieved and only lower the scores.
        relevant = sum(1 for grade in absent if grade > 0)
        warnings.append(f"{len(absent)} of {len(judged)} judged {lang} docs ({relevant} relevant) are absent "
                        f"from the corpus ({len(corpus)} docs); a partial corpus lowers the scores")
    return RetrievalTask(
        suite="miracl", dataset="miracl", split="dev", corpus=corpus,
        queries={q: topics[q] for q in qrels}, qrels=qrels, setting="mono", query_lang=lang, doc_lang=lang,
        metrics=METRICS, warnings=warnings, files=(topics_path(lang, root), qrels_path(lang, root), *files),
    )
