"""The sanity check of a freshly built folder: it must behave like a multilingual retriever before it is
published, since a wrong tensor mapping still loads and runs but embeds garbage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# A relevant passage must beat an unrelated one, and a translation must beat an unrelated sentence.
# multilingual-e5 cosines sit in a narrow high band (unrelated texts score ~0.7), hence the margin.
SANITY_MARGIN = 0.05
SANITY_QUERY = "how much protein should a female eat"
SANITY_RELEVANT = (
    "As a general guideline, the CDC's average requirement of protein for women ages 19 to 70 is "
    "46 grams per day."
)
SANITY_UNRELATED = "The Eiffel Tower was completed in 1889 for the World's Fair in Paris."
SANITY_SENTENCE = "The cat is sleeping on the sofa in the living room."
SANITY_TRANSLATIONS = {
    "de": "Die Katze schläft auf dem Sofa im Wohnzimmer.",
    "zh": "猫正在客厅的沙发上睡觉。",
}
SANITY_UNRELATED_DE = "Die Zentralbank hat die Zinsen im vergangenen Jahr zweimal erhöht."


def sanity_cosines(folder: Path) -> dict[str, float]:
    """Cosines for the sanity pairs, encoding through sentence-transformers like any user would."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    query = model.encode([SANITY_QUERY], prompt_name="query")
    passages = model.encode([SANITY_RELEVANT, SANITY_UNRELATED], prompt_name="document")
    # Symmetric pairs (bitext) use the "query: " prefix on both sides, as the e5 authors advise.
    texts = [SANITY_SENTENCE, *SANITY_TRANSLATIONS.values(), SANITY_UNRELATED_DE]
    symmetric = model.encode(texts, prompt_name="query")
    cosines = {
        "query_relevant": query[0] @ passages[0],
        "query_unrelated": query[0] @ passages[1],
        "en_unrelated_de": symmetric[0] @ symmetric[-1],
    }
    for i, lang in enumerate(SANITY_TRANSLATIONS, start=1):
        cosines[f"en_{lang}_translation"] = symmetric[0] @ symmetric[i]
    norms = np.linalg.norm(np.vstack([query, passages, symmetric]), axis=1)
    return {
        "dimension": float(query.shape[1]),
        "max_norm_error": float(np.abs(norms - 1.0).max()),
        **{name: round(float(value), 4) for name, value in cosines.items()},
    }


def check_sanity(scores: dict[str, float]) -> None:
    """Raise unless the scores look like a working multilingual retriever."""
    problems = []
    if scores["dimension"] != 384 or scores["max_norm_error"] > 1e-4:
        problems.append("embeddings are not 384-d unit vectors")
    if scores["query_relevant"] < scores["query_unrelated"] + SANITY_MARGIN:
        problems.append("the relevant passage does not clearly beat the unrelated one")
    for lang in SANITY_TRANSLATIONS:
        if scores[f"en_{lang}_translation"] < scores["en_unrelated_de"] + SANITY_MARGIN:
            problems.append(f"the {lang} translation does not clearly beat an unrelated sentence")
    if problems:
        raise RuntimeError(
            f"rebuilt multilingual-e5-small failed its sanity check: {problems}; {scores}"
        )
