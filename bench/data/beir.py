"""BEIR datasets: any folder in BEIR layout, plus the official datasets by name.

Layout (as beir's GenericDataLoader): `corpus.jsonl` ({"_id", "title", "text"}), `queries.jsonl`
({"_id", "text"}), `qrels/<split>.tsv` (header, then `query-id corpus-id score`).
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.data.corpus import JsonlCorpus
from bench.data.task import DataError, RetrievalTask, document, json_record
from bench.paths import data_root

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"


@dataclass(frozen=True)
class BeirDataset:
    name: str
    md5: str  # of the official zip, as published in beir's README
    splits: tuple[str, ...]

    @property
    def url(self) -> str:
        return BEIR_URL.format(name=self.name)


BEIR_DATASETS: dict[str, BeirDataset] = {
    d.name: d
    for d in [
        BeirDataset("scifact", "5f7d1de60b170fc8027bb7898e2efca1", ("train", "test")),
        BeirDataset("nfcorpus", "a89dba18a62ef92f7d323ec890a0d38d", ("train", "dev", "test")),
        BeirDataset("arguana", "8ad3e3c2a5867cdced806d6503f29b99", ("test",)),
        BeirDataset("fiqa", "17918ed23cd04fb15047f73e6c3bd9d9", ("train", "dev", "test")),
        BeirDataset("trec-covid", "ce62140cb23feb9becf6270d0d1fe6d1", ("test",)),
        BeirDataset("scidocs", "38121350fc3a4d2f48850f6aff52e4a9", ("test",)),
        BeirDataset("quora", "18fb154900ba42a600f84b839c173167", ("dev", "test")),
        BeirDataset("webis-touche2020", "46f650ba5a527fc69e0a6521c5a23563", ("test",)),
        BeirDataset("nq", "d4d3d2e48787a744b6f6e691ff534307", ("test",)),
        BeirDataset("hotpotqa", "f412724f78b0d91183a0e86805e16114", ("train", "dev", "test")),
        BeirDataset("dbpedia-entity", "c2a39eb420a3164af735795df012ac2c", ("dev", "test")),
        BeirDataset("fever", "5a818580227bfb4b35bb6fa46d9b6c03", ("train", "dev", "test")),
        BeirDataset("climate-fever", "8b66f0a9126c521bae2bde127b4dc99d", ("test",)),
        BeirDataset("msmarco", "444067daf65d982533ea17ebd59501e4", ("train", "dev", "test")),
    ]
}
# The sets the offline mirror holds: the default of `run --suite beir`.

# A corpus.jsonl larger than this is streamed (bench.data.corpus.JsonlCorpus) instead of read into a dict: the
# big sets (MS MARCO's 8.8M passages, NQ, HotpotQA, FEVER, ...). The mirror's sets (SciFact 8 MB, NFCorpus 6 MB,
# ArguAna 10 MB) and the other small ones stay plain dicts, so nothing changes for them.
STREAM_ABOVE_BYTES = 200 * 2**20


def _read_jsonl(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    """(line number, record) of every non-blank line; DataError naming file and line for anything malformed."""
    if not path.is_file():
        raise DataError(f"missing file {path}: a BEIR folder needs corpus.jsonl, queries.jsonl and qrels/<split>.tsv")
    records = []
    lineno = 0
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    record = json_record(line, path, lineno, required)
                    if not str(record["_id"]).strip():
                        raise DataError(f"{path}:{lineno}: empty _id")
                    records.append((lineno, record))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}:{lineno + 1}: not UTF-8 ({e.reason}); re-save the file as UTF-8") from None
    if not records:
        raise DataError(f"{path} is empty: no records")
    return records


def _unique_by_id(records: list[tuple[int, dict]], path: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for lineno, record in records:
        rid = str(record["_id"])
        if rid in out:
            raise DataError(f"{path}:{lineno}: duplicate _id {rid!r}; ids must be unique")
        out[rid] = record
    return out


def load_corpus(folder: Path, stream_above: int | None = None) -> Mapping[str, dict[str, str]]:
    """doc id -> {"title", "text"}: a plain dict, or, for a corpus.jsonl above `stream_above` bytes (default
    STREAM_ABOVE_BYTES), a JsonlCorpus that streams the file and holds only an index of ids and offsets."""
    path = folder / "corpus.jsonl"
    limit = STREAM_ABOVE_BYTES if stream_above is None else stream_above
    if path.is_file() and path.stat().st_size > limit:
        return JsonlCorpus([path], id_field="_id", layout='BEIR records are {"_id", "title", "text"}')
    records = _unique_by_id(_read_jsonl(path, ("_id", "text")), path)
    return {rid: document(r) for rid, r in records.items()}


def load_queries(folder: Path) -> dict[str, str | None]:
    """query id -> text; None where the text is null (load_beir_folder counts those)."""
    path = folder / "queries.jsonl"
    records = _unique_by_id(_read_jsonl(path, ("_id", "text")), path)
    return {rid: r["text"] for rid, r in records.items()}


def available_splits(folder: Path) -> list[str]:
    return sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))


def load_qrels(folder: Path, split: str) -> dict[str, dict[str, int]]:
    path = folder / "qrels" / f"{split}.tsv"
    if not path.is_file():
        raise DataError(f"unknown split {split!r} for {folder}: no {path}; available splits: {available_splits(folder) or 'none'}")
    qrels: dict[str, dict[str, int]] = {}
    lineno = 0
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            for lineno, row in enumerate(reader, 1):
                if lineno == 1 and row and not row[-1].lstrip("-").isdigit():
                    continue  # header
                if not row:
                    continue
                if len(row) != 3 or not row[2].lstrip("-").isdigit():
                    raise DataError(f"{path}:{lineno}: expected 'query-id<TAB>corpus-id<TAB>score', got {row!r}")
                qid, did, score = row
                qrels.setdefault(qid, {})[did] = int(score)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}:{lineno + 1}: not UTF-8 ({e.reason}); re-save the file as UTF-8") from None
    if not qrels:
        raise DataError(f"{path} holds no judgements (empty or header only): nothing could be scored")
    return qrels


def load_beir_folder(folder: Path, split: str = "test", name: str | None = None) -> RetrievalTask:
    """Load and validate one BEIR-layout folder as a task."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"no dataset folder at {folder}")
    qrels = load_qrels(folder, split)
    corpus = load_corpus(folder)
    queries = load_queries(folder)
    warnings = []
    unknown_queries = sorted(q for q in qrels if q not in queries)
    if unknown_queries:
        raise DataError(f"{folder}/qrels/{split}.tsv names {len(unknown_queries)} query ids absent from "
                        f"queries.jsonl (first: {unknown_queries[0]!r})")
    missing_docs = sum(1 for judged in qrels.values() for d in judged if d not in corpus)
    if missing_docs:
        # Kept, as BEIR does: such judgements can never be retrieved and only lower recall.
        warnings.append(f"{missing_docs} qrels point to documents absent from the corpus")
    textless = [q for q in qrels if not (queries[q] or "").strip()]
    if textless:
        # Kept and scored (an empty query retrieves nothing): dropping them would raise the average.
        warnings.append(f"{len(textless)} judged queries have no text in queries.jsonl (first: {textless[0]!r}); "
                        f"scored as empty queries")
    return RetrievalTask(
        suite="beir", dataset=name or folder.name, split=split, corpus=corpus,
        queries={q: queries[q] or "" for q in qrels}, qrels=qrels, warnings=warnings,
        files=(folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / f"{split}.tsv"),
    )


def beir_folder(name: str, root: Path | None = None, download: bool = True) -> Path:
    """Find a dataset by name under the data root, or download and verify the official zip."""
    if name not in BEIR_DATASETS:
        raise DataError(f"unknown BEIR dataset {name!r}; known: {', '.join(sorted(BEIR_DATASETS))}")
    root = Path(root) if root else data_root()
    folder = root / "beir" / name
    if (folder / "corpus.jsonl").is_file():
        return folder
    if folder.is_dir():  # a damaged copy: downloading over it would hide what is wrong
        raise DataError(f"missing file {folder / 'corpus.jsonl'}: the dataset folder {folder} is incomplete; "
                        f"restore the file or delete the folder to download {name} again")
    if not download:
        raise DataError(f"BEIR dataset {name!r} not found at {folder}; set BENCH_DATA to a folder holding beir/{name}/")
    return download_beir(BEIR_DATASETS[name], root / "beir")


def download_beir(dataset: BeirDataset, dest: Path) -> Path:
    """Download the official zip, check its md5, unpack atomically into dest/<name>."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        archive = Path(tmp) / f"{dataset.name}.zip"
        try:
            urllib.request.urlretrieve(dataset.url, archive)
        except OSError as e:
            raise DataError(f"could not download {dataset.url} ({e}); offline, point BENCH_DATA at a mirror "
                            f"holding beir/{dataset.name}/") from None
        md5 = hashlib.md5(archive.read_bytes()).hexdigest()
        if md5 != dataset.md5:
            raise DataError(f"{dataset.url}: md5 {md5} differs from the published {dataset.md5}; not unpacked")
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        target = dest / dataset.name
        if not target.exists():
            shutil.move(str(Path(tmp) / dataset.name), target)
    return target


def beir_task(name: str, split: str = "test", root: Path | None = None) -> RetrievalTask:
    dataset = BEIR_DATASETS.get(name)
    folder = beir_folder(name, root)
    if dataset and split not in dataset.splits:
        raise DataError(f"unknown split {split!r} for {name}; available: {', '.join(dataset.splits)}")
    return load_beir_folder(folder, split, name=name)
