"""model_meta.json as mteb's own ModelMeta, so it validates by construction; filled only with what bench knows.

- name `bench/<run id without its @fingerprint>`, revision the checkpoint's weights fingerprint (the part after
  '@'), or mteb's "no_revision_available" for registry models, which carry no revision of their own.
- release_date: the day the results were computed (the newest created_at of the rows): bench's models are not
  released anywhere, and their upstream's release date is not theirs.
- languages: those of the tasks scored. loader None: mteb has no implementation of bench's models.
- Upstream facts (parameters, dimension, license, similarity, prompts, training data) are copied from mteb's
  own entry of the model a bench model is a copy of (`adapted_from`); me5-small is a 4-bit-rounded copy of
  intfloat/multilingual-e5-small. A trained checkpoint adds its LAReQA training set (read from its manifest
  when the checkpoint folder is on this machine, else from its run id) to the base's training datasets; its
  weights are not published, so open_weights and license are None (unknown), as are other unknown fields.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
from mteb.models.model_meta import ModelMeta

from bench.data.lareqa import LAREQA_LANGS, SETTINGS
from bench.export.tasks import LAREQA_PREFIX

UPSTREAM = {"minilm-l6": "sentence-transformers/all-MiniLM-L6-v2", "me5-small": "intfloat/multilingual-e5-small"}
NO_REVISION = "no_revision_available"  # mteb's own folder name for a model without a revision


def model_name(run_id: str) -> str:
    return "bench/" + run_id.split("@", 1)[0].replace("/", "__")


def revision(run_id: str) -> str:
    """Checkpoints carry a weights fingerprint after '@'; registry models have no revision of their own."""
    return run_id.split("@", 1)[1] if "@" in run_id else NO_REVISION


def _upstream(base_model: str) -> ModelMeta | None:
    from mteb.models.model_implementations import MODEL_REGISTRY

    return MODEL_REGISTRY.get(UPSTREAM.get(base_model, base_model))


def _training_data(run_id: str, records: list[dict]) -> str | None:
    """The LAReQA set a checkpoint was trained on: its manifest's train_data, else the run id's data part."""
    for record in records:
        manifest = Path(record.get("model_location") or "") / "manifest.json"
        if record.get("model_location") and manifest.is_file():
            return json.loads(manifest.read_text()).get("train_data")
    found = re.search(r"-(%s)-s\d+-\d+steps" % "|".join(map(re.escape, LAREQA_LANGS)), run_id)
    return found.group(1) if found else None


def _one(records: list[dict], key: str):
    values = {record.get(key) for record in records} - {None}
    return values.pop() if len(values) == 1 else None


def model_meta(run_id: str, rows: pd.DataFrame, records: list[dict], languages: list[str]) -> ModelMeta:
    """rows: every tidy row of the run; records: its run records; languages: those of its tasks (ISO-script)."""
    first = rows.iloc[0]
    base, trainer = str(first["base_model"] or run_id), str(first["trainer"] or "none")
    released = pd.to_datetime(rows["created_at"], utc=True, format="ISO8601").max().date().isoformat()
    common = dict(loader=None, name=model_name(run_id), revision=revision(run_id), release_date=released,
                  languages=languages or None, memory_usage_mb=None, modalities=["text"])
    if base == "bm25":
        return ModelMeta(**common, n_parameters=0, n_embedding_parameters=0, max_tokens=None, embed_dim=None,
                         license=None, open_weights=None, public_training_code=None, public_training_data=None,
                         framework=[], reference="https://github.com/castorini/pyserini", similarity_fn_name=None,
                         use_instructions=False, training_datasets=set(), model_type=["sparse"])
    up = _upstream(base)
    trained = trainer != "none"
    training = set(up.training_datasets or ()) if up is not None and up.training_datasets is not None else None
    if trained:
        data = _training_data(run_id, records)
        if data is None:
            training = None  # trained on something this export cannot name
        else:
            training = (training or set()) | {f"{LAREQA_PREFIX[data]}-{s}" for s in SETTINGS}
    framework = ["Sentence Transformers", "PyTorch"] + (["ONNX"] if _one(records, "model_backend") == "onnx" else [])
    max_tokens = _one(records, "model_max_seq_length")
    return ModelMeta(
        **common,
        n_parameters=up.n_parameters if up else None,
        n_embedding_parameters=up.n_embedding_parameters if up else None,
        max_tokens=max_tokens if max_tokens is not None else (up.max_tokens if up else None),
        embed_dim=up.embed_dim if up else None,
        license=None if trained or up is None else up.license,
        open_weights=None if trained or up is None else up.open_weights,
        public_training_code=None if trained or up is None else up.public_training_code,
        public_training_data=None if trained or up is None else up.public_training_data,
        framework=framework,
        reference=None if trained or up is None else up.reference,
        similarity_fn_name=up.similarity_fn_name if up else None,
        use_instructions=up.use_instructions if up else None,
        training_datasets=training,
        adapted_from=(base if "/" in base else model_name(base)) if trained else (up.name if up else None),
        citation=None if trained or up is None else up.citation,
        model_type=["dense"],
    )
