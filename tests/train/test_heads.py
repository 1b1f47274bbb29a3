import json
import math

import pytest
import torch
import torch.nn.functional as F

from bench.train.heads import (HEADS_DIRNAME, GradientReversalLayer, LanguageClassifier, grad_reverse, save_heads,
                               translation_ranking_loss)
from bench.train.objectives import model_prompts


@pytest.mark.parametrize("strength", [1.0, 0.5, 0.0])
def test_gradient_reversal_is_identity_forward_and_flips_and_scales_backward(strength):
    x = torch.randn(4, 3, requires_grad=True)
    upstream = torch.randn(4, 3)
    y = grad_reverse(x, strength)
    assert torch.equal(y, x)
    y.backward(upstream)
    assert torch.allclose(x.grad, -strength * upstream)


def test_reversal_layer_rejects_negative_strength():
    with pytest.raises(ValueError, match="non-negative"):
        GradientReversalLayer(-1.0)


def test_language_classifier_learns_while_the_encoder_gets_the_opposite_gradient():
    torch.manual_seed(0)
    langs = ["de", "en", "zh"]
    head = LanguageClassifier(8, langs, reversal=0.5)
    # Embeddings whose language is visible in the first coordinates.
    labels = [langs[i % 3] for i in range(30)]
    base = torch.randn(30, 8) * 0.1
    for i, lang in enumerate(labels):
        base[i, langs.index(lang)] += 1.0

    # Encoder side: the gradient reaching the embeddings is -lambda times the plain classifier's.
    emb = base.clone().requires_grad_(True)
    loss, _ = head.loss(emb, labels)
    loss.backward()
    plain = base.clone().requires_grad_(True)
    F.cross_entropy(head.linear(plain), head.labels(labels)).backward()
    assert torch.allclose(emb.grad, -0.5 * plain.grad, atol=1e-7)

    # Head side: ordinary descent, so the language becomes identifiable.
    optimizer = torch.optim.SGD(head.parameters(), lr=0.5)
    first = None
    for _ in range(50):
        optimizer.zero_grad()
        loss, accuracy = head.loss(base, labels)
        first = first if first is not None else loss.item()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 2 and accuracy == 1.0


def test_language_classifier_needs_two_languages():
    with pytest.raises(ValueError, match="at least 2 languages"):
        LanguageClassifier(8, ["en"])


def test_translation_ranking_loss():
    n, scale = 5, 2.0
    eye = torch.eye(n)
    # Orthonormal parallel pairs: every source scores 1 with its translation and 0 with the others.
    expected = -math.log(math.exp(scale) / (math.exp(scale) + n - 1))
    assert translation_ranking_loss(eye, eye, scale=scale).item() == pytest.approx(expected, rel=1e-5)
    shuffled = eye[torch.tensor([1, 2, 3, 4, 0])]
    assert translation_ranking_loss(eye, shuffled, scale=20.0).item() > 10
    # Scale-invariant inputs (cosine) and both directions by default.
    src, tgt = torch.randn(6, 4), torch.randn(6, 4)
    one_way = translation_ranking_loss(src, tgt, symmetric=False)
    back = translation_ranking_loss(tgt, src, symmetric=False)
    assert translation_ranking_loss(3 * src, tgt).item() == pytest.approx(((one_way + back) / 2).item(), rel=1e-5)
    with pytest.raises(ValueError, match="differ in shape"):
        translation_ranking_loss(torch.randn(3, 4), torch.randn(2, 4))


def test_translation_ranking_gradient_pulls_translations_together():
    torch.manual_seed(1)
    src = torch.randn(8, 16, requires_grad=True)
    tgt = torch.randn(8, 16)
    optimizer = torch.optim.SGD([src], lr=1.0)
    before = F.cosine_similarity(src, tgt).mean().item()
    for _ in range(20):
        optimizer.zero_grad()
        translation_ranking_loss(src, tgt).backward()
        optimizer.step()
    assert F.cosine_similarity(src, tgt).mean().item() > before + 0.3


def _load_language_classifier(checkpoint):
    """The language-ID head saved beside a checkpoint, read back from what save_heads wrote."""
    from safetensors.torch import load_file

    heads = checkpoint / HEADS_DIRNAME
    cfg = json.loads((heads / "config.json").read_text())["language_classifier"]
    classifier = LanguageClassifier(cfg["dim"], cfg["languages"], cfg["reversal"])
    classifier.load_state_dict(load_file(str(heads / cfg["weights"])))
    return classifier


def test_heads_round_trip(tmp_path):
    torch.manual_seed(0)
    head = LanguageClassifier(8, ["de", "en"], reversal=0.2)
    folder = save_heads(tmp_path, head, {"weights": {"lid": 1.0}})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "language_classifier.safetensors"]
    loaded = _load_language_classifier(tmp_path)
    assert loaded.languages == ["de", "en"] and loaded.reverse.strength == 0.2
    x = torch.randn(3, 8)
    assert torch.equal(loaded(x), head(x))


def test_model_prompts():
    class Fake:
        prompts = {"query": "query: ", "passage": "passage: "}

    assert model_prompts(Fake()) == ("query: ", "passage: ")
    Fake.prompts = {"query": "", "document": ""}
    assert model_prompts(Fake()) == ("", "")
    Fake.prompts = {"query": "q: ", "document": "d: ", "passage": "p: "}
    assert model_prompts(Fake()) == ("q: ", "d: ")
