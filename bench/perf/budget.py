"""The encoder's padded-token budget per batch, timed: the same texts encoded at several tokens-per-row values
(budget = batch size x tokens per row, see bench/retrieval/dense/batching.py), in each precision, at the model's
own maximum length so that long passages, where the budget matters, are in the slice. A smaller budget means
fewer rows per batch (less matmul efficiency), a larger one bigger attention matrices per batch."""

from __future__ import annotations

from bench.perf.options import Log, PerfOptions, median


def token_budget(options: PerfOptions, texts: list[str], log: Log) -> list[dict]:
    """One row per (precision, tokens per row): median seconds over reps, batches and padding. Reps are
    interleaved across budgets so that a slow spell of the machine does not fall on one budget only."""
    from bench.models.registry import resolve_model, with_precision
    from bench.retrieval.dense.batching import TOKENS_PER_ROW
    from bench.retrieval.dense.encode import DenseEncoder

    rows = []
    for precision in options.precisions:
        encoder = DenseEncoder(with_precision(resolve_model(options.e2e_model), precision),
                               batch_size=options.batch_size, cache=False, device="cpu")
        encoder.embed(texts[:8], "document")  # warm-up: first-call allocations
        seconds: dict[int, list[float]] = {b: [] for b in options.budgets}
        stats: dict[int, dict] = {}
        for rep in range(options.reps):
            for budget in options.budgets:
                encoder.tokens_per_row = budget
                before = encoder.stats.seconds, encoder.stats.batches, encoder.stats.padded_tokens
                encoder.embed(texts, "document")
                seconds[budget].append(encoder.stats.seconds - before[0])
                stats[budget] = {"batches": encoder.stats.batches - before[1],
                                 "padded_tokens": encoder.stats.padded_tokens - before[2]}
            log(f"  budget {precision} rep {rep + 1}/{options.reps}: " + ", ".join(
                f"{b} {seconds[b][-1]:.1f} s" for b in options.budgets))
        fastest = min(median(seconds[b]) for b in options.budgets)
        for budget in options.budgets:
            rows.append({"model": options.e2e_model, "precision": precision, "tokens_per_row": budget,
                         "default": budget == TOKENS_PER_ROW, "passages": len(texts),
                         "batch_size": options.batch_size, "seconds": round(median(seconds[budget]), 3),
                         "seconds_per_rep": [round(s, 3) for s in seconds[budget]],
                         "relative_to_fastest": round(median(seconds[budget]) / fastest, 3), **stats[budget]})
    return rows


def print_budget(rows: list[dict], log: Log) -> None:
    for r in rows:
        log(f"budget {r['model']} {r['precision']} {r['tokens_per_row']:>4} tokens/row"
            f"{' (default)' if r['default'] else '':<10}: {r['seconds']:.1f} s, {r['batches']} batches, "
            f"{r['relative_to_fastest']:.3f}x the fastest")
