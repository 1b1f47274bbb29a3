"""The evaluation protocol, each fact stated once (torch-free; everything else imports it from here).

A checkpoint trained on one LAReQA set is scored zero-shot on the other (the held-out rule) and on BEIR;
LAReQA is scored in three settings with mAP over the full ranking, BEIR with pytrec_eval's top-k metrics,
nDCG@10 first. Hybrid batches are monolingual with probability alpha."""

from __future__ import annotations

LAREQA_SETS = ("xquad-r", "mlqa-r")
# The training set -> the LAReQA set its checkpoints are scored on.
HELD_OUT = {"mlqa-r": "xquad-r", "xquad-r": "mlqa-r"}
SETTINGS = ("mono", "cross", "multi")  # LAReQA: same language, other language, every language in one pool

DEFAULT_BEIR = ("scifact", "nfcorpus", "arguana")  # the data mirror's BEIR sets
BEIR_METRICS = ("ndcg@10", "recall@100", "map@100", "mrr@10")  # the first is the main score
LAREQA_METRIC = "map"

DEFAULT_ALPHA = 0.5  # hybrid's probability of a monolingual batch (the paper's choice)


def held_out(train_data: str) -> str:
    """The LAReQA set a checkpoint trained on `train_data` is scored on."""
    if train_data not in HELD_OUT:
        raise ValueError(f"unknown training set {train_data!r}; known: {', '.join(HELD_OUT)}")
    return HELD_OUT[train_data]


def main_metric(suite: str) -> str:
    """The score a table leads with: mAP for LAReQA sets, nDCG@10 for the rest."""
    return LAREQA_METRIC if suite in LAREQA_SETS or suite == "lareqa" else BEIR_METRICS[0]
