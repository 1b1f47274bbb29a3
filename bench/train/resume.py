"""A training run cut off mid-way (a killed session, Ctrl-C, a lost machine) continues from its last saved step
instead of step 0. Every SAVE_SECONDS of training, the loop saves everything the remaining steps depend on
beside the checkpoint's folder, in `<run id>.resume/`: the weights, the optimiser and scheduler state, the
random states (dropout draws from torch's), the loss curve so far and the step. A rerun with the same options
and the same code loads it and takes the remaining steps; the batches are a function of the step (samplers.py),
so the result is the same checkpoint, bit for bit, as an uninterrupted run (tests/train/test_resume.py).

Ctrl-C or SIGTERM during training does not cut a step: the step under way finishes, the state is saved and
the command then stops, so the next run loses nothing.

A state saved under other options or other code is not used (the run starts over and says why), and the folder
is removed once the checkpoint is written. Single-process runs only: a multi-process run starts over."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

SAVE_SECONDS = 600.0  # at most this much training is lost to a kill; a save of me5-small takes a few seconds
# Ctrl-C / SIGTERM during training finish the step under way and save the state (run.py); the watchdog
# (bench/interrupts.py) allows this long for it before it ends the process, losing the steps since the last save.
STOP_GRACE = 120.0  # me5-small on 2 cores: a step ~6 s, a save a few seconds
STATE, META = "state.pt", "meta.json"


class ResumePoint:
    """The resume state of one run: `<target>.resume/` beside the checkpoint folder `target`."""

    def __init__(self, target: Path, identity: dict, code: str):
        self.folder = state_folder(target)
        self.meta = {"identity": identity, "code": code, "torch": _torch_version()}

    def load(self, log=print) -> dict | None:
        """The saved state when it was saved by this very run (options, code, torch), else None."""
        import torch

        saved, differ = self._saved_meta()
        if saved is None:
            return None
        if differ:
            log(f"not resuming from {self.folder}: saved with other {', '.join(differ)}; starting at step 0")
            return None
        state = torch.load(self.folder / STATE, map_location="cpu", weights_only=False)
        log(f"resuming from {self.folder} at step {state['step']}")
        return state

    def progress(self) -> int:
        """The steps a rerun of this very run would skip: its saved state's step, read from the small meta file
        alone (a plan asks this of every cell); 0 when there is no state or another run, code or torch saved it."""
        saved, differ = self._saved_meta()
        return 0 if saved is None or differ else int(saved.get("step", 0))

    def _saved_meta(self) -> tuple[dict | None, list[str]]:
        """(the saved meta, what of this run's meta it differs in); (None, []) when no state is saved."""
        meta_path = self.folder / META
        if not meta_path.is_file() or not (self.folder / STATE).is_file():
            return None, []
        try:
            saved = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            saved = {}
        return saved, [key for key in self.meta if saved.get(key) != self.meta[key]]

    def save(self, state: dict) -> None:
        """Written whole or not at all: a kill during the save leaves the previous state in place."""
        import torch

        from bench.safety import atomic_write

        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, "step": state["step"]}  # for progress(), without loading the weights
        atomic_write(self.folder / STATE, lambda path: torch.save(state, path))
        atomic_write(self.folder / META, lambda path: path.write_text(json.dumps(meta, sort_keys=True)))

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def state_folder(target: Path) -> Path:
    """Where the run whose checkpoint goes to `target` keeps its resume state."""
    return Path(target).with_name(Path(target).name + ".resume")


def random_states() -> dict:
    import numpy as np
    import torch

    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict) -> None:
    import numpy as np
    import torch

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _torch_version() -> str:
    import torch

    return torch.__version__
