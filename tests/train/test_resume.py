"""A training run cut off mid-way continues from its last saved step to the same checkpoint, bit for bit, as an
uninterrupted run (dropout, optimiser, scheduler and batches included); a state saved under other options is not
used; nothing is left behind once the checkpoint is written."""

import pytest

from bench.train import resume
from bench.train.run import train
from support.training import manifest, options, quiet, weights


def _cut_after_save_at(step: int, monkeypatch):
    """Save at every step, and stop the run (as a kill would) right after the save at `step`."""
    monkeypatch.setattr(resume, "SAVE_SECONDS", 0.0)
    real_save = resume.ResumePoint.save

    def save_then_stop(self, state):
        real_save(self, state)
        if state["step"] == step:
            raise KeyboardInterrupt

    monkeypatch.setattr(resume.ResumePoint, "save", save_then_stop)
    return real_save


@pytest.mark.parametrize("trainer", ["hybrid", "mtl"])
def test_a_cut_run_resumes_to_the_same_weights(tiny_model_dir, data_dir, tmp_path, monkeypatch, trainer):
    out = tmp_path / "models"
    # mtl: both heads on, so the language classifier's state travels too. log_every 2 and a cut at step 3 leave
    # a half-filled loss window to carry over.
    extra = dict(batch_size=6, w_lid=1.0, w_translation=0.5) if trainer == "mtl" else {}
    whole = train(options(tiny_model_dir, out, trainer=trainer, run_id="whole", **extra), log=quiet)

    real_save = _cut_after_save_at(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(options(tiny_model_dir, out, trainer=trainer, run_id="cut", **extra), log=quiet)
    assert not (out / "cut").exists() and (out / "cut.resume" / resume.STATE).is_file()
    monkeypatch.setattr(resume.ResumePoint, "save", real_save)

    said = []
    cut = train(options(tiny_model_dir, out, trainer=trainer, run_id="cut", **extra), log=said.append)
    assert any("resuming from" in line and "at step 3" in line for line in said)
    assert weights(cut) == weights(whole)
    assert manifest(cut)["loss_curve"] == manifest(whole)["loss_curve"]
    assert manifest(cut)["batches"]["per_step"] == manifest(whole)["batches"]["per_step"]
    assert manifest(cut)["resumed_at_steps"] == [3] and manifest(whole)["resumed_at_steps"] == []
    # the timeline carries over the cut: the same logged steps, training seconds that only grow
    timeline = manifest(cut)["timeline"]
    assert [step for step, _ in timeline] == [step for step, _ in manifest(whole)["timeline"]]
    assert all(t0 <= t1 for (_, t0), (_, t1) in zip(timeline, timeline[1:]))
    if trainer == "mtl":
        heads = "heads/language_classifier.safetensors"
        assert (cut / heads).read_bytes() == (whole / heads).read_bytes()
    assert not (out / "cut.resume").exists()


def test_a_state_saved_under_other_options_is_not_used(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    out = tmp_path / "models"
    whole = train(options(tiny_model_dir, out, run_id="whole", lr=1e-4), log=quiet)
    real_save = _cut_after_save_at(2, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(options(tiny_model_dir, out, run_id="cut"), log=quiet)  # the default lr
    monkeypatch.setattr(resume.ResumePoint, "save", real_save)

    said = []
    cut = train(options(tiny_model_dir, out, run_id="cut", lr=1e-4), log=said.append)
    assert any("not resuming" in line and "other identity" in line for line in said)
    assert weights(cut) == weights(whole) and manifest(cut)["resumed_at_steps"] == []


@pytest.mark.parametrize("signal_at", [1, 3])  # mid-run, and during the last step (steps=4)
def test_ctrl_c_finishes_the_step_saves_and_the_rerun_loses_nothing(tiny_model_dir, data_dir, tmp_path,
                                                                    monkeypatch, signal_at):
    import os
    import signal

    from bench import interrupts
    from bench.train import samplers

    out = tmp_path / "models"
    whole = train(options(tiny_model_dir, out, run_id="whole"), log=quiet)

    real_batch = samplers.LanguageBatchSampler.batch

    def batch_then_signal(self, step):
        if step == signal_at:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as step `signal_at` starts
        return real_batch(self, step)

    monkeypatch.setattr(samplers.LanguageBatchSampler, "batch", batch_then_signal)
    with pytest.raises(interrupts.Interrupted):
        with interrupts.handled(["train"]):
            train(options(tiny_model_dir, out, run_id="cut"), log=quiet)
    # the step under way was finished and saved: no periodic save (SAVE_SECONDS is 10 minutes) was due
    assert any(f"saved at step {signal_at + 1} of 4" in note for note in interrupts.progress.notes)
    assert not (out / "cut").exists()
    monkeypatch.setattr(samplers.LanguageBatchSampler, "batch", real_batch)

    said = []
    cut = train(options(tiny_model_dir, out, run_id="cut"), log=said.append)
    assert any("resuming from" in line and f"at step {signal_at + 1}" in line for line in said)
    assert weights(cut) == weights(whole)
    assert manifest(cut)["loss_curve"] == manifest(whole)["loss_curve"]
    assert manifest(cut)["resumed_at_steps"] == [signal_at + 1]
    assert not (out / "cut.resume").exists()
