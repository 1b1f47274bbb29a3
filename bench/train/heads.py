"""Auxiliary heads of the `mtl` trainer, on the shared encoder's pooled embedding.

- :class:`GradientReversal`: identity forward, gradient times -lambda backward (Ganin & Lempitsky 2015).
- :class:`LanguageClassifier`: a linear language-identification head trained through gradient reversal:
  the head learns to tell languages apart while the encoder is pushed to make them indistinguishable
  (language-adversarial training, after Keung et al. 2019).
- :func:`translation_ranking_loss`: in-batch InfoNCE between parallel sentences in two languages, both
  directions (dual-encoder translation ranking, after Chidambaram et al. 2019 / LaBSE). No parameters.

Heads live beside the checkpoint (``<checkpoint>/heads/``: ``config.json`` + ``language_classifier.safetensors``)
and are not sentence-transformers modules, so loading the checkpoint for retrieval gets the encoder alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HEADS_DIRNAME = "heads"


class GradientReversal(torch.autograd.Function):
    """y = x forward; dL/dx = -lambda * dL/dy backward."""

    @staticmethod
    def forward(ctx, x: Tensor, strength: float) -> Tensor:
        ctx.strength = float(strength)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None]:
        return grad_output.neg() * ctx.strength, None


def grad_reverse(x: Tensor, strength: float = 1.0) -> Tensor:
    return GradientReversal.apply(x, strength)


class GradientReversalLayer(nn.Module):
    def __init__(self, strength: float = 1.0):
        super().__init__()
        if strength < 0:
            raise ValueError(f"gradient reversal strength must be non-negative, got {strength}")
        self.strength = float(strength)

    def forward(self, x: Tensor) -> Tensor:
        return grad_reverse(x, self.strength)

    def extra_repr(self) -> str:
        return f"strength={self.strength}"


class LanguageClassifier(nn.Module):
    """Language identification from the pooled embedding, through a gradient-reversal layer."""

    def __init__(self, dim: int, languages: Sequence[str], reversal: float = 1.0):
        super().__init__()
        if len(languages) < 2:
            raise ValueError(f"language identification needs at least 2 languages, got {list(languages)}")
        self.languages = list(languages)
        self.index = {lang: i for i, lang in enumerate(self.languages)}
        self.dim = dim
        self.reverse = GradientReversalLayer(reversal)
        self.linear = nn.Linear(dim, len(self.languages))

    def forward(self, embeddings: Tensor) -> Tensor:
        """Logits (n, languages)."""
        return self.linear(self.reverse(embeddings))

    def labels(self, langs: Sequence[str], device: torch.device | str | None = None) -> Tensor:
        return torch.tensor([self.index[lang] for lang in langs], dtype=torch.long, device=device)

    def loss(self, embeddings: Tensor, langs: Sequence[str]) -> tuple[Tensor, float]:
        """Cross-entropy of the language labels and the head's accuracy (for the loss curve)."""
        logits = self(embeddings)
        target = self.labels(langs, embeddings.device)
        accuracy = (logits.argmax(dim=1) == target).float().mean().item()
        return F.cross_entropy(logits, target), accuracy

    def config(self) -> dict:
        return {"type": "language_classifier", "dim": self.dim, "languages": self.languages,
                "reversal": self.reverse.strength, "input": "pooled, normalised sentence embedding"}


def translation_ranking_loss(source: Tensor, target: Tensor, scale: float = 20.0, symmetric: bool = True) -> Tensor:
    """In-batch InfoNCE over cosine similarities: source i should rank its translation target i first
    among the batch's targets (and, symmetric, target i its source i)."""
    if source.shape != target.shape:
        raise ValueError(f"parallel batches differ in shape: {tuple(source.shape)} vs {tuple(target.shape)}")
    scores = F.normalize(source, dim=-1) @ F.normalize(target, dim=-1).T * scale
    labels = torch.arange(len(scores), device=scores.device)
    loss = F.cross_entropy(scores, labels)
    if symmetric:
        loss = (loss + F.cross_entropy(scores.T, labels)) / 2
    return loss


def save_heads(folder: Path, classifier: LanguageClassifier | None, extra: dict) -> Path:
    """Write ``<folder>/heads/``: config.json (every head's settings, loss weights) and the classifier weights."""
    from safetensors.torch import save_file

    heads = Path(folder) / HEADS_DIRNAME
    heads.mkdir(parents=True, exist_ok=True)
    config = {"note": "auxiliary training heads; not part of the sentence-transformers model", **extra}
    if classifier is not None:
        state = {k: v.detach().cpu().contiguous() for k, v in classifier.state_dict().items()}
        save_file(state, str(heads / "language_classifier.safetensors"))
        config["language_classifier"] = {**classifier.config(), "weights": "language_classifier.safetensors"}
    (heads / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return heads
