"""Numeric precision of encoding and training: fp32 (the reference) or bf16 mixed precision.

bf16 here means torch autocast: weights, optimiser state, pooling, normalisation, losses and stored
embeddings stay fp32; only the autocast-eligible ops (matmuls, linear layers, attention) run in bf16.
It is an explicit option, recorded in run records and run ids (`<key>+bf16`), and refused where the
hardware would only emulate it slowly. fp16 is not offered: on CPU torch has no fast fp16 kernels, and
on GPUs bf16 needs no loss scaling."""

from __future__ import annotations

import contextlib

from bench.machine import cpu_flags

PRECISIONS = ("fp32", "bf16")
DEFAULT_PRECISION = "fp32"
# Any of these CPU flags means oneDNN has native bf16 kernels (AVX-512 BF16, or AMX tiles).
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


class PrecisionError(ValueError):
    """A precision that is unknown or not supported on the chosen device."""


def _device_type(device: str | None) -> str:
    return "cuda" if str(device or "cpu").startswith("cuda") else "cpu"


def available(device: str | None = "cpu") -> list[str]:
    """The precisions that run natively on `device` here."""
    return [p for p in PRECISIONS if p == "fp32" or bf16_problem(device) is None]


def bf16_problem(device: str | None) -> str | None:
    """Why bf16 would not run natively on `device`, or None when it does."""
    if _device_type(device) == "cuda":
        import torch

        if not torch.cuda.is_available():
            return "no CUDA device is available"
        if not torch.cuda.is_bf16_supported(including_emulation=False):
            return f"the GPU {torch.cuda.get_device_name(torch.device(device))} has no native bf16 support"
        return None
    flags = cpu_flags()
    if not any(flag in flags for flag in CPU_BF16_FLAGS):
        return (f"this CPU lacks {' and '.join(CPU_BF16_FLAGS)} (see lscpu): bf16 would run as a slow "
                "emulation")
    return None


def check_precision(precision: str, device: str | None = "cpu") -> str:
    """`precision` when it is known and runs natively on `device`; else a PrecisionError saying what works."""
    if precision not in PRECISIONS:
        hint = (" (fp16 is not offered: CPUs have no fast fp16 kernels, and bf16 needs no loss scaling)"
                if precision in ("fp16", "float16", "half") else "")
        raise PrecisionError(f"unknown precision {precision!r}{hint}; use one of: "
                             f"{', '.join(available(device))} (available on {_device_type(device)} here)")
    if precision == "bf16":
        problem = bf16_problem(device)
        if problem:
            raise PrecisionError(f"--precision bf16 is not supported here: {problem}; "
                                 f"available on {_device_type(device)}: {', '.join(available(device))}")
    return precision


def autocast(precision: str, device: str | None = "cpu"):
    """The context that runs a forward (and its backward) in `precision`: a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=_device_type(device), dtype=torch.bfloat16)


def sentence_embeddings(model, features: dict, precision: str, device: str | None = "cpu"):
    """What SentenceTransformer.forward computes, with only its first module (the transformer) under autocast:
    the token embeddings come back to fp32 before pooling and normalisation, so averaging many tokens adds no
    bf16 rounding and whatever is built on the embeddings (similarities, losses, heads) runs in fp32. Encoding
    and training both call this, so the two treat bf16 alike."""
    first, *rest = model.children()
    with autocast(precision, device):
        features = first(features)
    features = {k: v.float() if getattr(v, "is_floating_point", lambda: False)() else v for k, v in features.items()}
    for module in rest:
        features = module(features)
    return features["sentence_embedding"]


def cast_linear_weights(model, precision: str) -> int:
    """For inference under autocast: store every nn.Linear's weight and bias in `precision` once. Autocast would
    cast them from fp32 on every call (a copy per layer and batch, about a fifth of bf16 encoding time here);
    the cast is the same round-to-nearest-even either way, so the vectors are bitwise those of plain autocast
    (tests check). Never for training: the optimiser keeps fp32 master weights. Returns the layers cast."""
    if precision == "fp32":
        return 0
    import torch

    dtype, cast = torch.bfloat16, 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.weight.data = module.weight.data.to(dtype)
            if module.bias is not None:
                module.bias.data = module.bias.data.to(dtype)
            cast += 1
    return cast
