"""DDP helpers: join the process group torchrun or accelerate set up, check that the ranks drew the same batch
kinds, average gradients over the ranks."""

from __future__ import annotations

import os


def distributed_context() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun / accelerate's environment; joins the process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1:
        import torch
        import torch.distributed as dist

        if torch.cuda.is_available():
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return rank, world, local


def check_ranks_agree(kinds: list, world: int) -> bool | None:
    """Under DDP, check once at the end that every rank drew the same batch kinds at the same steps
    (the samplers guarantee it; this guards against a sampler that does not). None without DDP."""
    if world == 1:
        return None
    import torch.distributed as dist

    gathered: list = [None] * world
    dist.all_gather_object(gathered, kinds)
    if any(other != gathered[0] for other in gathered[1:]):
        raise RuntimeError("ranks drew different batch kinds at the same step; the sampler is not rank-consistent")
    return True


def all_reduce_mean(tensors: list, world: int) -> None:
    """Average gradients (or logged values) over the ranks, in one flat buffer."""
    import torch
    import torch.distributed as dist

    if world == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()

