"""Training objectives: what one step computes from its batches.

An objective maps ``{role: Batch}`` to named loss terms ``{name: (weight, loss)}``; the step minimises the
weighted sum. Retrieval terms use sentence-transformers' MultipleNegativesRankingLoss (InfoNCE over the
batch's positives and hard negatives, cosine, scale 20 by default) on embeddings computed here, so that
one batch's embeddings also feed the auxiliary heads of `mtl`.

Prompts: when the base model has a "query" prompt and a document prompt ("document", "passage" or
"corpus", the order sentence-transformers' encode_document checks), training prepends them as the
runner does at encoding time (multilingual-e5: "query: " / "passage: ").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from bench.data.pairs import Example
from bench.precision import DEFAULT_PRECISION, sentence_embeddings
from bench.train.heads import LanguageClassifier, translation_ranking_loss
from bench.train.options import MtlWeights
from bench.train.samplers import Batch

DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus")


def model_prompts(model) -> tuple[str, str]:
    """(query prompt, document prompt) of a SentenceTransformer; "" where it has none."""
    prompts = getattr(model, "prompts", None) or {}
    query = prompts.get("query") or ""
    document = next((prompts[name] for name in DOCUMENT_PROMPT_NAMES if prompts.get(name)), "")
    return query, document


@dataclass
class Objective:
    """The model, its retrieval loss and (for mtl) its heads; computes embeddings with prompts."""

    model: object  # SentenceTransformer
    examples: Sequence[Example]
    translation: Sequence[Example] = ()
    scale: float = 20.0
    weights: MtlWeights = field(default_factory=MtlWeights)
    classifier: LanguageClassifier | None = None
    precision: str = DEFAULT_PRECISION

    def __post_init__(self):
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        self.mnrl = MultipleNegativesRankingLoss(self.model, scale=self.scale)
        self.query_prompt, self.document_prompt = model_prompts(self.model)
        self.device = self.model.device

    def embed(self, texts: Sequence[str], prompt: str) -> Tensor:
        """Pooled embeddings in fp32. In bf16 only the encoder (the first module: the transformer) runs under
        autocast; pooling, normalisation and so the similarity matrix, the losses and the heads downstream
        run in fp32, as the master weights do."""
        features = self.model.preprocess(list(texts), prompt=prompt or None)
        features = {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in features.items()}
        return sentence_embeddings(self.model, features, self.precision, str(self.device))

    def retrieval_loss(self, batch: Batch, source: Sequence[Example] | None = None
                       ) -> tuple[Tensor, list[tuple[Tensor, list[str]]]]:
        """MNRL on (anchor, positive[, negative]) columns; also the embeddings with their languages."""
        rows = [(source or self.examples)[i] for i in batch.indices]
        anchors = self.embed([ex.query for ex in rows], self.query_prompt)
        columns = [anchors, self.embed([ex.positive for ex in rows], self.document_prompt)]
        langs = [[ex.query_lang for ex in rows], [ex.doc_lang for ex in rows]]
        if all(ex.negative is not None for ex in rows):
            columns.append(self.embed([ex.negative for ex in rows], self.document_prompt))
            langs.append([ex.doc_lang for ex in rows])
        loss = self.mnrl.compute_loss_from_embeddings(columns, None)
        return loss, list(zip(columns, langs))

    def translation_loss(self, batch: Batch) -> Tensor:
        rows = [self.translation[i] for i in batch.indices]
        source = self.embed([ex.query for ex in rows], self.query_prompt)
        target = self.embed([ex.positive for ex in rows], self.query_prompt)
        return translation_ranking_loss(source, target, scale=self.scale)


Terms = dict[str, tuple[float, Tensor]]


def retrieval_objective(obj: Objective, batches: dict[str, Batch]) -> Terms:
    """One batch, one InfoNCE loss (xx-mono, xy, hybrid, x-x, en-en)."""
    loss, _ = obj.retrieval_loss(batches["retrieval"])
    return {"retrieval": (1.0, loss)}


def mtl_objective(obj: Objective, batches: dict[str, Batch]) -> Terms:
    """w_mono * MNRL(mono batch) + w_cross * MNRL(cross batch) + w_lid * LID(adversarial, through the
    gradient-reversal layer, on every embedding of both batches) + w_translation * translation ranking
    (parallel pairs batch)."""
    w = obj.weights
    mono, mono_embs = obj.retrieval_loss(batches["mono"])
    cross, cross_embs = obj.retrieval_loss(batches["cross"])
    terms: Terms = {"mono": (w.mono, mono), "cross": (w.cross, cross)}
    if obj.classifier is not None:
        embs = torch.cat([e for e, _ in mono_embs + cross_embs])
        langs = [lang for _, ls in mono_embs + cross_embs for lang in ls]
        lid, accuracy = obj.classifier.loss(embs, langs)
        terms["lid"] = (w.lid, lid)
        terms["lid_accuracy"] = (0.0, torch.tensor(accuracy))
    if "translation" in batches:
        terms["translation"] = (w.translation, obj.translation_loss(batches["translation"]))
    return terms


# The objectives trainers name (bench.train.trainers.TrainerSpec.objective).
OBJECTIVES = {"retrieval": retrieval_objective, "mtl": mtl_objective}
