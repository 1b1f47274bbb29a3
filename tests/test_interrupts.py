"""bench.interrupts: a deferred block notes the first signal and stops at its own safe point; the watchdog gives
it its longer grace and cuts that short at a second signal. The watchdog is driven through the wakeup pipe, as
the C-level handler does while the main thread sits in a native call and runs no Python handler."""

import os
import signal
import time

import pytest

from bench import interrupts


@pytest.fixture
def forced(monkeypatch) -> list[int]:
    """The watchdog's forced exits, recorded instead of ending the test process."""
    calls: list[int] = []
    monkeypatch.setattr(interrupts, "_force_exit", lambda signum, argv: calls.append(signum))
    return calls


def as_if_in_native_code(signum: int) -> None:
    """What the C-level handler writes to the wakeup pipe, without the Python handler running."""
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
    os.write(fd, bytes([signum]))


def wait_until(condition, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_a_deferred_block_notes_the_signal_and_stops_at_its_safe_point(capsys):
    # default_int_handler, or SIG_IGN in a process started in the background by a shell without job control
    before = signal.getsignal(signal.SIGINT)
    steps = []
    with pytest.raises(interrupts.Interrupted) as caught:
        with interrupts.handled(["train"]):
            with interrupts.deferred(30.0, "finishing the step") as stop:
                for step in range(5):
                    if step == 1:
                        os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.05)  # the handler runs here and does not raise
                    steps.append(step)
                    if stop.requested:
                        raise stop.stop()
    assert steps == [0, 1]  # step 1 finished; step 2 never started
    assert caught.value.status == 130
    assert "SIGINT: finishing the step (signal again to stop at once)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored after the block


def test_a_second_signal_raises_at_once():
    reached = []
    with pytest.raises(interrupts.Interrupted):
        with interrupts.handled(["train"]):
            with interrupts.deferred(30.0, "finishing the step"):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                reached.append("after the first")
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)
                reached.append("after the second")
    assert reached == ["after the first"]


def test_a_request_still_open_when_the_block_ends_raises_there():
    with pytest.raises(interrupts.Interrupted):
        with interrupts.handled(["train"]):
            with interrupts.deferred(30.0, "finishing the step"):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
            pytest.fail("the block's end did not raise")


def test_outside_handled_nothing_is_deferred():
    with interrupts.deferred(30.0, "finishing the step") as stop:
        assert interrupts._deferral is None and not stop.requested


def test_the_watchdog_gives_a_deferred_block_its_grace(monkeypatch, forced):
    monkeypatch.setattr(interrupts, "GRACE", 0.2)
    with interrupts.handled(["train"]):
        with interrupts.deferred(1.5, "finishing the step"):
            as_if_in_native_code(signal.SIGINT)
            assert not wait_until(lambda: forced, 0.8)  # past GRACE, within the block's grace
            assert wait_until(lambda: forced, 2.0)
    assert forced == [signal.SIGINT]


def test_a_second_signal_cuts_the_watchdogs_grace_to_the_normal_one(monkeypatch, forced):
    monkeypatch.setattr(interrupts, "GRACE", 0.2)
    with interrupts.handled(["train"]):
        with interrupts.deferred(30.0, "finishing the step"):
            as_if_in_native_code(signal.SIGTERM)
            assert not wait_until(lambda: forced, 0.5)
            as_if_in_native_code(signal.SIGTERM)
            assert wait_until(lambda: forced, 1.0)
    assert forced == [signal.SIGTERM]


def test_without_a_deferred_block_the_watchdog_waits_the_normal_grace(monkeypatch, forced):
    monkeypatch.setattr(interrupts, "GRACE", 0.2)
    with interrupts.handled(["run"]):
        as_if_in_native_code(signal.SIGINT)
        assert wait_until(lambda: forced, 1.0)
