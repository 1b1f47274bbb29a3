"""Fault injection (issue 13): signals, path escapes, empty and damaged inputs, damaged stored results, stale
temp files, flags that do not apply. Each case once failed (a hang, a traceback, a wrong number or a write
outside its folder); these tests keep them from returning."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.paths import PROJECT_ROOT

# ------------------------------------------------------------------------------------------------ signals

TATOEBA_LANGS = {"de": "deu", "fr": "fra", "es": "spa", "it": "ita", "nl": "nld", "pt": "por"}


def write_tatoeba(root: Path, lines: int = 3000, seed: int = 0) -> Path:
    """Synthetic line-aligned Tatoeba pairs: enough text that a BM25 run lasts well past the first signal."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    folder = root / "tatoeba"
    folder.mkdir(parents=True, exist_ok=True)
    for code in TATOEBA_LANGS.values():
        for side in (code, "eng"):
            text = "\n".join(" ".join(rng.choices(words, k=12)) for _ in range(lines)) + "\n"
            (folder / f"tatoeba.{code}-eng.{side}").write_text(text, encoding="utf-8")
    return root


def bench_process(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=PROJECT_ROOT,
                            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_line(stream, needle: str, timeout: float) -> list[str]:
    """Lines of `stream` read until one contains `needle` (or the timeout passes); the rest is drained in the
    background so the child never blocks on a full pipe."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in stream:
            seen.append(line)
            if needle in line:
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    found.wait(timeout)
    return seen


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_ends_a_bm25_run_within_seconds(tmp_path, signum):
    data = write_tatoeba(tmp_path / "data")
    env = {"BENCH_DATA": str(data), "BENCH_RESULTS": str(tmp_path / "results"), "BENCH_CACHE": str(tmp_path / "c")}
    proc = bench_process(["run", "--suite", "tatoeba", "--model", "bm25", "--langs", *TATOEBA_LANGS,
                          "--experiment", "sig"], env)
    try:
        lines = wait_for_line(proc.stdout, "bm25: tatoeba/", timeout=60)
        assert proc.poll() is None, "".join(lines)
        time.sleep(0.5)  # inside the JVM's analysis of the first task
        sent = time.monotonic()
        proc.send_signal(signum)
        status = proc.wait(timeout=15)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.2)
    text = "".join(lines)
    assert status == 128 + signum, text
    assert elapsed < 8
    assert f"interrupted ({signal.Signals(signum).name})" in text
    assert "to resume, run `python -m bench run --suite tatoeba" in text
    assert not list(PROJECT_ROOT.glob("hs_err_pid*.log"))  # the JVM did not crash on the way out
