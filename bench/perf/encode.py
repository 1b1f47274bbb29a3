"""Encoder throughput: our encoder (length-sorted token-budget batches) beside sentence-transformers' own
model.encode on the same texts, in each precision, as a share of the matmul peak in that precision."""

from __future__ import annotations

import time
from dataclasses import asdict

from bench.perf.options import Log, PerfOptions, median, ratio


def encoder_flops(config, lengths_sum: int, lengths_sq_sum: int) -> float:
    """FLOPs of a BERT-like encoder: every token passes 4 h x h attention projections and two h x i
    feed-forward matrices per layer (2 FLOPs per multiply-add); attention scores and their weighted sum
    cost 2 x 2 x length^2 x h per sequence and layer. Embedding look-ups, norms and softmax are left out."""
    layers, hidden = config.num_hidden_layers, config.hidden_size
    per_token = 2 * layers * (4 * hidden * hidden + 2 * hidden * config.intermediate_size)
    return per_token * lengths_sum + 4 * layers * hidden * lengths_sq_sum


def encode_throughput(name: str, texts: list[str], options: PerfOptions, peak_gflops: float | None, log: Log,
                      precision: str = "fp32") -> dict:
    """Medians over reps. sentence-transformers' model.encode runs under the same autocast (its weights fp32,
    cast per call) so that the two differ only in batching and the once-cast weights."""
    import torch

    from bench.models.registry import resolve_model, with_max_seq_length, with_precision
    from bench.precision import autocast
    from bench.retrieval.dense.encode import DenseEncoder

    spec = with_precision(with_max_seq_length(resolve_model(name), options.encode_seq_length), precision)
    encoder = DenseEncoder(spec, batch_size=options.batch_size, cache=False, device="cpu")
    reference = encoder.model if precision == "fp32" else _sentence_transformer(encoder)
    config = encoder.model[0].auto_model.config
    encoder.embed(texts[:8], "document")  # warm-up: first-call allocations
    runs, st_seconds = [], []
    for rep in range(options.reps):
        before = asdict(encoder.stats)
        encoder.embed(texts, "document")
        stats = {k: v - before[k] for k, v in asdict(encoder.stats).items()}
        runs.append(stats)
        start = time.perf_counter()
        with torch.inference_mode(), autocast(precision, "cpu"):
            reference.encode_document(texts, batch_size=options.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        st_seconds.append(time.perf_counter() - start)
        log(f"  {name} {precision} rep {rep + 1}/{options.reps}: ours {stats['seconds']:.1f} s, "
            f"sentence-transformers encode {st_seconds[-1]:.1f} s")
    seconds = median([r["seconds"] for r in runs])
    last = runs[-1]  # token counts are the same every rep
    flops_real = encoder_flops(config, last["real_tokens"], last["real_sq_tokens"])
    flops_padded = encoder_flops(config, last["padded_tokens"], last["padded_sq_tokens"])
    result = {
        "model": name, "precision": precision, "max_seq_length": options.encode_seq_length, "passages": len(texts),
        "batch_size": options.batch_size, "batches": last["batches"], "threads": encoder.threads,
        "seconds": round(seconds, 3), "seconds_per_rep": [round(r["seconds"], 3) for r in runs],
        "passages_per_second": round(len(texts) / seconds, 2),
        "real_tokens": last["real_tokens"], "padded_tokens": last["padded_tokens"],
        "padding_fraction": round(1 - last["real_tokens"] / last["padded_tokens"], 4),
        "tokens_per_second": round(last["real_tokens"] / seconds, 1),
        "gflops_real_tokens": round(flops_real / seconds / 1e9, 2),
        "gflops_padded_tokens": round(flops_padded / seconds / 1e9, 2),
        "sentence_transformers_encode_seconds": round(median(st_seconds), 3),
        "speedup_vs_sentence_transformers_encode": ratio(median(st_seconds), seconds),
    }
    if peak_gflops:
        result["matmul_peak_fraction"] = round(result["gflops_padded_tokens"] / peak_gflops, 3)
        result["matmul_peak_fraction_real_tokens"] = round(result["gflops_real_tokens"] / peak_gflops, 3)
    return result


def _sentence_transformer(encoder):
    """A plain copy of the encoder's model (fp32 weights): our bf16 encoder has cast its Linear weights."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(encoder.location, device="cpu")
    model.max_seq_length = encoder.max_seq_length
    return model.eval()
