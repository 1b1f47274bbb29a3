"""The machine's own limits: the best matmul rate in each precision, and what the machine is."""

from __future__ import annotations

import os
import time

from bench.machine import cpu_model, usable_cores


def matmul_peak(threads: int, precision: str = "fp32", sizes: tuple[int, ...] = (1024, 2048), reps: int = 5) -> dict:
    """The best torch.matmul rate at `threads` threads (square matrices, best of reps), with fp32 or bf16
    operands: the ceiling an encoder in that precision can approach."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    torch.set_num_threads(threads)
    best: dict[int, float] = {}
    with torch.inference_mode():
        for n in sizes:
            a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
            torch.matmul(a, b)  # warm-up
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                torch.matmul(a, b)
                times.append(time.perf_counter() - start)
            best[n] = 2 * n ** 3 / min(times) / 1e9
    return {"gflops": round(max(best.values()), 2), "by_size": {str(n): round(g, 2) for n, g in best.items()},
            "threads": threads, "reps": reps, "precision": precision}


def machine() -> dict:
    import torch

    from bench.machine import cpu_flags

    return {"cores": usable_cores(), "cpu_count": os.cpu_count(), "cpu_model": cpu_model(),
            "bf16_flags": sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx")),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}
