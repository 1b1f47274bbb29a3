"""Argument types and options shared by several commands."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def checked_precision(args: argparse.Namespace) -> str:
    """--precision, refused before any work when it is unknown or would not run natively on the device."""
    from bench.precision import check_precision

    device = getattr(args, "device", None)
    if device is None and args.precision != "fp32":
        from bench.retrieval.dense.loading import default_device
        device = default_device()
    return check_precision(args.precision, device)


def add_precision_argument(parser: argparse.ArgumentParser, what: str) -> None:
    from bench.precision import DEFAULT_PRECISION

    parser.add_argument("--precision", default=DEFAULT_PRECISION, metavar="fp32|bf16",
                        help=f"numerics of {what}: fp32 (default, the reference) or bf16 (autocast: bf16 matmuls, "
                        "fp32 weights, pooling and stored vectors; needs avx512_bf16/AMX or a bf16 GPU); bf16 "
                        "results get their own run id <model>+bf16")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def shard_arg(text: str) -> tuple[int, int]:
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N such as 2/4, got {text!r}") from None
    if not (n >= 1 and 1 <= k <= n):
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, got {text!r}")
    return k, n


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="DIR", help="results folder to write (default: $BENCH_RESULTS, "
                        "else outputs/results, gitignored); `--output results` updates the committed results")


@contextmanager
def output_folder(args: argparse.Namespace) -> Iterator[None]:
    """--output for the length of one command: it becomes $BENCH_RESULTS, which every store and subprocess
    reads, and the previous value is put back (main() is also called in-process, by tests)."""
    from bench.paths import environment

    if not getattr(args, "output", None):
        yield
        return
    with environment(BENCH_RESULTS=str(Path(args.output).expanduser().resolve())):
        yield
