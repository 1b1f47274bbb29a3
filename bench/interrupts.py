"""Ctrl-C and SIGTERM end every command within seconds, with status 130 / 143 and one line saying what was
finished and how to resume.

Two paths. Normally the signal raises `Interrupted` in the main thread at its next Python bytecode, the
command unwinds (finally blocks, temp files removed) and `bench.cli.main` prints the line. But a main thread
inside one long native call (a JVM call through pyjnius, a big matrix product) runs no Python until the call
returns. The C-level handler still writes the signal number to a wakeup pipe, so a watchdog thread sees it;
if the command has not ended `GRACE` seconds later, the watchdog prints the line and ends the process. Files
are only ever published by rename (bench.safety.atomic_write), so cutting a write short loses the write in
flight and nothing else; its temp file is swept by bench.safety.remove_stale_temps on a later run.

The JVM must not take these signals itself: by default it installs its own SIGINT/SIGTERM handlers, whose
shutdown waits on the Python thread sitting in a JNI call (the hang of issue 13). bench.retrieval.bm25.jvm starts it
with -Xrs, leaving the signals to Python.

Some work is worth finishing before stopping: a training step, after which the training state is saved and
the next run resumes there instead of at the last periodic save. Inside `deferred()` the first signal does not
raise; it is noted, the block stops at its next safe point, and the watchdog waits the block's longer grace.
A second signal raises at once, as outside.
"""

from __future__ import annotations

import os
import select
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

GRACE = 4.0  # seconds the main thread gets to unwind before the watchdog ends the process
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by SIGINT or SIGTERM; a KeyboardInterrupt so `except Exception` never eats it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def status(self) -> int:
        return 128 + self.signum


@dataclass
class Progress:
    """What the running command has finished, for the closing line."""

    done: int = 0
    total: int = 0
    unit: str = "(model, task) results"
    where: Path | None = None
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = []
        if self.total:
            parts.append(f"{self.done} of {self.total} {self.unit} finished this run" +
                         (f" and kept in {self.where}" if self.where else ""))
        parts += self.notes
        return "; ".join(parts) or "nothing was finished this run"


progress = Progress()


@dataclass
class Deferral:
    """A block that stops at its own safe points (`deferred`): the first signal is noted in `signum`."""

    grace: float
    what: str
    signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def stop(self) -> Interrupted:
        """The exception to raise at the safe point (further signals are ignored: the exit is under way)."""
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        return Interrupted(self.signum)


_deferral: Deferral | None = None  # the deferred block running now, if any
_handling = False  # inside `handled`: signals are ours to take


def expect(total: int, where: Path | None = None, unit: str = "(model, task) results") -> None:
    """Announce `total` more units of work (called before a batch of tasks starts)."""
    progress.total += total
    progress.unit = unit
    if where is not None:
        progress.where = where


def finished(count: int = 1) -> None:
    progress.done += count


def message(signum: int, argv: list[str] | None = None) -> str:
    command = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    return (f"interrupted ({signal.Signals(signum).name}): {progress.line()}; "
            f"to resume, run `python -m bench {command}` again (finished work is kept and skipped)")


def _force_exit(signum: int, argv: list[str] | None) -> None:
    sys.stderr.write(message(signum, argv) + " (stopped inside a native call)\n")
    sys.stderr.flush()
    os._exit(128 + signum)


@contextmanager
def handled(argv: list[str] | None = None) -> Iterator[None]:
    """SIGINT and SIGTERM raise Interrupted inside the block, with the watchdog behind them.
    Outside the main thread (a test runner's worker) signals cannot be handled: the block runs as is."""
    global progress, _handling
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    progress = Progress()
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    ended = threading.Event()

    def on_signal(signum: int, frame) -> None:
        deferral = _deferral
        if deferral is not None and not deferral.requested:
            deferral.signum = signum
            sys.stderr.write(f"\n{signal.Signals(signum).name}: {deferral.what} (signal again to stop at once)\n")
            sys.stderr.flush()
            return
        # A further signal during unwinding changes nothing: the first one's exit is under way.
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    def watchdog() -> None:
        # The first signal gives the command the grace of the block it is in (a deferred one: its own, longer);
        # a further signal cuts what is left to GRACE.
        first, deadline = None, None
        while not ended.is_set():
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                readable, _, _ = select.select([read_fd], [], [], wait)
                data = os.read(read_fd, 16) if readable else b""
            except OSError:
                return
            if ended.is_set() or (readable and not data):
                return
            signums = [b for b in data if b in SIGNALS]
            if signums:
                grace = _deferral.grace if deadline is None and _deferral is not None else GRACE
                first = first or signums[0]
                deadline = min(deadline or float("inf"), time.monotonic() + grace)
            elif deadline is not None and time.monotonic() >= deadline:
                _force_exit(first, argv)
                return

    previous = {s: signal.getsignal(s) for s in SIGNALS}
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    for s in SIGNALS:
        signal.signal(s, on_signal)
    thread = threading.Thread(target=watchdog, name="bench-interrupt-watchdog", daemon=True)
    thread.start()
    _handling = True
    try:
        yield
    finally:
        _handling = False
        ended.set()
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(write_fd)  # the watchdog's read returns b"" and it ends
        thread.join(timeout=1)
        os.close(read_fd)


@contextmanager
def deferred(grace: float, what: str, when: bool = True) -> Iterator[Deferral]:
    """A block that ends at its own safe points: the first SIGINT / SIGTERM inside it sets `.requested` (and
    says `what` happens next) instead of raising, and the watchdog allows `grace` seconds instead of GRACE.
    The block checks `.requested` at each safe point and raises `.stop()` once it has kept its work; a request
    still open when the block ends raises there. Outside `handled` (no signal handling), or when `when` is false
    (nothing to keep), nothing is deferred."""
    global _deferral
    deferral = Deferral(grace, what)
    if not when or not _handling or _deferral is not None:
        yield deferral
        return
    _deferral = deferral
    try:
        yield deferral
    finally:
        _deferral = None
    if deferral.requested:
        raise deferral.stop()
