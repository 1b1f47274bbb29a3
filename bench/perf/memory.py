"""Peak memory of a stage and of a process pool's workers, read from /proc (Linux): the scale section measures
each stage's own high-water mark (VmHWM, reset before the stage through /proc/self/clear_refs) and samples the
pool's workers every SAMPLE_SECONDS."""

from __future__ import annotations

import os
import threading
import time

SAMPLE_SECONDS = 0.2


def reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux 4.0+); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status(pid: int | str) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        for line in open(f"/proc/{pid}/status", encoding="ascii", errors="replace"):
            if line.startswith(("VmHWM:", "VmRSS:", "PPid:")):
                key, value = line.split(":", 1)
                out[key] = float(value.split()[0])
    except OSError:
        pass
    return out


def peak_rss_mb() -> float:
    from bench.perf.worker import peak_rss_mb as own_peak

    return own_peak()


class ChildMemory:
    """Samples this process's pool workers (children started by multiprocessing's spawn) from /proc: the
    largest VmHWM of one worker and the largest sum of their VmRSS at one moment, in MB."""

    def __init__(self, interval: float = SAMPLE_SECONDS):
        self.interval, self.parent = interval, os.getpid()
        self.peak: dict[int, float] = {}
        self.total = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _children(self) -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and _status(entry).get("PPid") == self.parent:
                try:
                    cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
                except OSError:
                    continue
                if b"spawn_main" in cmdline:
                    pids.append(int(entry))
        return pids

    def sample(self) -> None:
        total = 0.0
        for pid in self._children():
            status = _status(pid)
            self.peak[pid] = max(self.peak.get(pid, 0.0), status.get("VmHWM", 0.0) / 1024)
            total += status.get("VmRSS", 0.0) / 1024
        self.total = max(self.total, total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> ChildMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def result(self) -> dict:
        return {"children": len(self.peak),
                "children_peak_rss_mb": round(max(self.peak.values()), 1) if self.peak else None,
                "children_total_rss_mb": round(self.total, 1) if self.peak else None}


class Stages:
    """Per stage: seconds, docs/s (n / seconds) and the peak RSS of this process during it."""

    def __init__(self, n: int):
        self.n, self.rows = n, {}

    def run(self, name: str, work, **extra):
        reset_peak()
        start = time.perf_counter()
        out = work()
        seconds = time.perf_counter() - start
        self.rows[name] = {"seconds": round(seconds, 3), "docs_per_second": round(self.n / seconds, 1) if seconds
                           else None, "peak_rss_mb": peak_rss_mb(), **extra}
        return out
