"""summary.json: the headline figures of a `bench perf` report with the targets beside them, and the
report printed and written."""

from __future__ import annotations

import json
from pathlib import Path

from bench.perf.options import NDCG_TOLERANCE, TARGETS, Log, ratio
from bench.perf.train import bf16_speedups


def _wall(e2e: dict, name: str) -> float | None:
    return (e2e.get(name) or {}).get("wall_seconds")


def _memory(e2e: dict, name: str) -> float | None:
    return (e2e.get(name) or {}).get("peak_memory_mb")


def headline(report: dict) -> dict:
    e2e = report.get("e2e") or {}
    encode = {(r["model"], r.get("precision", "fp32")): r for r in report.get("encode", [])}
    me5, me5_bf16 = encode.get(("me5-small", "fp32"), {}), encode.get(("me5-small", "bf16"), {})
    # The headline memory ratio is the run a user of this harness makes: bf16 when it was measured.
    ours = "cold-bf16" if "cold-bf16" in e2e else "cold"
    speedups = bf16_speedups(report.get("train") or {})
    summary = {
        "cold_speedup_vs_beir": ratio(_wall(e2e, "beir"), _wall(e2e, "cold")),
        "cold_speedup_vs_mteb": ratio(_wall(e2e, "mteb"), _wall(e2e, "cold")),
        "cold_speedup_bf16_vs_beir": ratio(_wall(e2e, "beir"), _wall(e2e, "cold-bf16")),
        "cold_speedup_bf16_vs_mteb": ratio(_wall(e2e, "mteb"), _wall(e2e, "cold-bf16")),
        "cold_speedup_bf16_vs_st_bf16": ratio(_wall(e2e, "st-bf16"), _wall(e2e, "cold-bf16")),
        "cold_speedup_bf16_vs_fp32": ratio(_wall(e2e, "cold"), _wall(e2e, "cold-bf16")),
        "peak_memory_ratio_vs_beir": ratio(_memory(e2e, ours), _memory(e2e, "beir")),
        "peak_memory_ratio_fp32_vs_beir": ratio(_memory(e2e, "cold"), _memory(e2e, "beir")),
        "peak_memory_ratio_vs_mteb": ratio(_memory(e2e, ours), _memory(e2e, "mteb")),
        "peak_memory_run": ours,
        "warm_speedup": ratio(_wall(e2e, "cold"), _wall(e2e, "warm")),
        "matmul_peak_fraction": me5.get("matmul_peak_fraction"),
        "matmul_peak_fraction_real_tokens": me5.get("matmul_peak_fraction_real_tokens"),
        "bf16_matmul_peak_fraction": me5_bf16.get("matmul_peak_fraction"),
        "bf16_matmul_peak_fraction_real_tokens": me5_bf16.get("matmul_peak_fraction_real_tokens"),
        "matmul_peak_gflops": {p: row.get("gflops") for p, row in (report.get("matmul") or {}).items()},
        "ndcg_at_10": {name: (e2e.get(key) or {}).get("ndcg@10") for name, key in
                       (("ours", "cold"), ("beir", "beir"), ("mteb", "mteb"))},
        "ndcg_at_10_fp32": (e2e.get("cold") or {}).get("ndcg@10"),
        "ndcg_at_10_bf16": (e2e.get("cold-bf16") or {}).get("ndcg@10"),
        "ndcg_at_10_st_bf16": (e2e.get("st-bf16") or {}).get("ndcg@10"),
        "train_speedup_bf16": speedups.get("hybrid"),
        "train_speedup_bf16_by_trainer": speedups,
        "e2e_model": e2e.get("model"), "e2e_max_seq_length": e2e.get("max_seq_length"),
        "machine": {"cores": report["machine"]["cores"], "cpu_model": report["machine"]["cpu_model"]},
        "reps": report["options"]["reps"], "created_at": report["created_at"],
    }
    scores = [v for v in summary["ndcg_at_10"].values() if v is not None]
    summary["ndcg_agree_within_1e-4"] = (max(scores) - min(scores) <= NDCG_TOLERANCE) if len(scores) > 1 else None
    summary["targets"] = verdicts(summary, report)
    if report.get("scale"):  # only when the section ran
        from bench.perf.scale import summary_block

        summary["scale"] = summary_block(report["scale"])
    return summary


def _closer_to_fp32(summary: dict) -> bool | None:
    fp32, ours, st = summary["ndcg_at_10_fp32"], summary["ndcg_at_10_bf16"], summary["ndcg_at_10_st_bf16"]
    if None in (fp32, ours, st):
        return None
    return abs(ours - fp32) <= abs(st - fp32)


def verdicts(summary: dict, report: dict) -> dict:
    def at_least(value, target):
        return None if value is None else value >= target

    trainers = ((report.get("train") or {}).get("trainers") or {})
    memory = summary["peak_memory_ratio_vs_beir"]
    return {
        "cold_speedup_vs_beir >= 1.3": at_least(summary["cold_speedup_vs_beir"], TARGETS["cold_speedup"]),
        "cold_speedup_vs_mteb >= 1.3": at_least(summary["cold_speedup_vs_mteb"], TARGETS["cold_speedup"]),
        "cold_speedup_bf16_vs_beir >= 1.5": at_least(summary["cold_speedup_bf16_vs_beir"],
                                                     TARGETS["cold_speedup_bf16"]),
        "cold_speedup_bf16_vs_mteb >= 1.5": at_least(summary["cold_speedup_bf16_vs_mteb"],
                                                     TARGETS["cold_speedup_bf16"]),
        "cold_speedup_bf16_vs_st_bf16 >= 1": at_least(summary["cold_speedup_bf16_vs_st_bf16"],
                                                      TARGETS["cold_speedup_bf16_vs_st_bf16"]),
        "bf16 nDCG@10 closer to fp32 than st-bf16": _closer_to_fp32(summary),
        "peak_memory_ratio_vs_beir <= 1": None if memory is None else memory <= 1.0,
        "warm_speedup >= 10": at_least(summary["warm_speedup"], TARGETS["warm_speedup"]),
        "matmul_peak_fraction >= 0.6": at_least(summary["matmul_peak_fraction"], TARGETS["matmul_peak_fraction"]),
        "bf16_matmul_peak_fraction >= 0.6": at_least(summary["bf16_matmul_peak_fraction"],
                                                     TARGETS["matmul_peak_fraction"]),
        "trainer_overhead <= 10% (3-batch mtl apart)": None if not trainers else all(
            row["overhead_vs_plain"] <= TARGETS["trainer_overhead"] for row in trainers.values()
            if not row["more_work_per_step"]),
        "train_speedup_bf16 >= 2": at_least(summary["train_speedup_bf16"], TARGETS["train_speedup_bf16"]),
    }


def print_report(report: dict, summary: dict, log: Log) -> None:
    peaks = ", ".join(f"{p} {row['gflops']}" for p, row in (report.get("matmul") or {}).items())
    log(f"\nmachine: {report['machine']['cores']} cores, {report['machine']['cpu_model']}; "
        f"matmul peak GFLOP/s: {peaks}")
    for r in report.get("encode", []):
        log(f"encode {r['model']} {r.get('precision', 'fp32')} @{r['max_seq_length']}: {r['passages_per_second']} "
            f"passages/s, {r['tokens_per_second']} tokens/s, {r['gflops_padded_tokens']} GFLOP/s padded "
            f"({r['gflops_real_tokens']} real), peak fraction {r.get('matmul_peak_fraction')}, padding "
            f"{r['padding_fraction']:.1%}, {r['speedup_vs_sentence_transformers_encode']}x model.encode")
    e2e = report.get("e2e")
    if e2e:
        log(f"end to end ({e2e['model']}, {e2e['dataset']}, docs {e2e['docs']}, max length "
            f"{e2e['max_seq_length'] or 'model'}):")
        for name, precision in (e2e.get("precision") or {}).items():
            row = e2e[name]
            log(f"  {name:<9} {precision:<4} {row['wall_seconds']:>8.1f} s wall  {row['peak_memory_mb']:>8.0f} MB "
                f"peak  nDCG@10 {row['ndcg@10']:.5f}")
    for row in report.get("scaling", []):
        log(f"scaling {row['docs']:>6} docs: {row['wall_seconds']:.1f} s, {row['peak_memory_mb']:.0f} MB")
    for name, row in ((report.get("train") or {}).get("trainers") or {}).items():
        log(f"train {name:<33} {row['steps_per_second']:.3f} steps/s, overhead {row['overhead_vs_plain']:+.1%}"
            + (" (more work per step by design)" if row["more_work_per_step"] else ""))
    if report.get("budget"):
        from bench.perf.budget import print_budget

        print_budget(report["budget"], log)
    if report.get("scale"):
        from bench.perf.scale import print_scale

        print_scale(report["scale"], log)
    log("summary: " + json.dumps({k: v for k, v in summary.items() if k not in ("targets", "scale")}))
    log("targets: " + json.dumps(summary["targets"]))


# The sections the headline figures come from: summary.json is rewritten only by a run that had them all.
HEADLINE_SECTIONS = ("encode", "e2e", "warm", "beir", "mteb", "st-bf16", "train")


def write_report(report: dict, summary: dict, out: Path, complete: bool = True) -> tuple[Path, Path | None]:
    """The full report (with its summary) as perf-<stamp>.json; summary.json too when the run was `complete`
    (every headline section ran), so that a partial run (--section scale, --skip e2e) never overwrites the
    headline figures with empty ones. Returns (report path, summary path or None)."""
    from bench.results import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    stamp = report["created_at"].replace(":", "").replace("-", "")
    path = out / f"perf-{stamp}.json"
    atomic_write(path, lambda p: p.write_text(json.dumps({**report, "summary": summary}, indent=1)))
    if not complete:
        return path, None
    atomic_write(out / "summary.json", lambda p: p.write_text(json.dumps(summary, indent=1)))
    return path, out / "summary.json"
