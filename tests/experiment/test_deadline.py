"""--until: parsing the deadline, which cells fit before it, and a grid run that leaves the rest for later;
--fill: the time no cell fits in goes to the next one, whose saved training the next run's plan counts."""

import time
from datetime import datetime

import pytest

from bench import interrupts
from bench.cli import main
from bench.costs import Pace
from bench.experiment import parse_experiment, run_experiment
from bench.experiment.deadline import FILL_MIN, MARGIN, Deadline, DeadlineError, fitting, parse_until, stop_at, work_left
from bench.experiment.plan import Step, plan
from support.experiments import grid, write
from support.training import quiet

NOW = datetime(2026, 12, 5, 18, 30)


@pytest.mark.parametrize("text, expected", [
    ("21:15", datetime(2026, 12, 5, 21, 15)),
    ("2026-12-06 01:00", datetime(2026, 12, 6, 1, 0)),
    ("2026-12-06T01:00", datetime(2026, 12, 6, 1, 0)),
    ("2h30m", datetime(2026, 12, 5, 21, 0)),
    ("90m", datetime(2026, 12, 5, 20, 0)),
    ("1.5h", datetime(2026, 12, 5, 20, 0)),
    ("45s", datetime(2026, 12, 5, 18, 30, 45)),
])
def test_until_takes_a_clock_time_a_date_and_time_or_a_duration(text, expected):
    assert parse_until(text, now=NOW).at == expected.timestamp()


@pytest.mark.parametrize("text, message", [
    ("17:00", "already past (now 18:30)"),
    ("3x", "expected a time (21:15"),
    ("", "expected a time"),
    ("25:00", "expected a time"),
])
def test_a_bad_or_past_until_says_what_to_give(text, message):
    with pytest.raises(DeadlineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_until(text, now=NOW)


def test_a_cell_fits_only_with_the_margin_to_spare_and_an_unmeasured_one_is_started():
    deadline = Deadline(at=1000.0, text="x")
    assert deadline.fits(100 / MARGIN, now=900.0)
    assert not deadline.fits(100 / MARGIN + 1, now=900.0)
    assert deadline.fits(None, now=999.0)
    assert deadline.fits(0, now=2000.0)  # nothing left to do: even past the deadline


def test_fitting_takes_the_next_cell_that_fits_when_one_does_not():
    deadline = Deadline(at=100.0, text="x")
    # a: 50 s (62.5 with the margin) fits; b: 60 s no longer fits in the 50 s left; c: 20 s does.
    assert fitting([("a", 50.0), ("b", 60.0), ("c", 20.0)], deadline, now=0.0) == (["a", "c"], ["b"])


def test_the_work_left_of_a_cell_counts_only_what_has_a_pace():
    pace = Pace(seconds_per_pair=0.5, seconds_per_task={(True, "xquad-r"): 2.0}, checkpoints=1, runs=1)
    steps = [Step("s", "train", "m", cell=0, pairs=10),
             Step("s", "evaluate", "m", "xquad-r", cell=0, remaining={"xquad-r": 3}),
             Step("s", "evaluate", "m", "mlqa-r", cell=0, remaining={"mlqa-r": 4}),  # never scored: no pace
             Step("s", "train", "n", cell=1, pairs=10, done=True),
             Step("s", "evaluate", "n", "mlqa-r", cell=1, remaining={"mlqa-r": 4})]
    assert work_left(steps, 0, pace) == 5.0 + 6.0
    assert work_left(steps, 1, pace) is None
    assert work_left(steps, 2, pace) == 0


def test_the_stop_at_the_deadline_is_the_one_ctrl_c_makes():
    with pytest.raises(interrupts.Interrupted):
        with interrupts.handled(["experiment", "x"]), stop_at(Deadline(time.time() + 0.2, "1s")):
            time.sleep(5)
    assert "stopped by --until 1s" in interrupts.progress.line()


def test_cells_that_would_not_finish_are_left_for_a_later_run(tiny_model_dir, data_dir, tmp_path):
    models = str(tmp_path / "models")
    run_experiment(parse_experiment(grid(tiny_model_dir)), models_dir=models, log=quiet)  # measures a pace
    raw = grid(tiny_model_dir)
    raw["stages"][0]["seeds"] = [1, 2]
    experiment = parse_experiment(raw)
    shown = []
    # Seed 1 is done (nothing left: it fits any deadline); seed 2 needs seconds that 10 ms do not give.
    later = run_experiment(experiment, models_dir=models, log=shown.append, until=Deadline(time.time() + 0.01, "x"))
    assert later == ["hybrid-a0.5-tiny-bert-mlqa-r-s2-2steps", "xx-mono-tiny-bert-mlqa-r-s2-2steps"]
    assert any(line.startswith("[later] xx-mono-tiny-bert-mlqa-r-s2-2steps: needs about") for line in shown)
    assert [s.model for s in plan(experiment, models) if s.action == "train" and not s.done] == later
    assert run_experiment(experiment, models_dir=models, log=quiet, until=Deadline(time.time() + 3600, "1h")) == []
    assert all(step.done for step in plan(experiment, models))


def test_fill_starts_the_first_cell_left_when_none_fits(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    from bench.experiment import run as grid_run

    models = str(tmp_path / "models")
    experiment = parse_experiment(grid(tiny_model_dir))
    real = grid_run.work_left  # every cell not done needs far more than the hour left
    monkeypatch.setattr(grid_run, "work_left",
                        lambda steps, cell, pace: 0 if cell is None or real(steps, cell, pace) == 0 else 10 ** 6)
    cells = ["hybrid-a0.5-tiny-bert-mlqa-r-s1-2steps", "xx-mono-tiny-bert-mlqa-r-s1-2steps"]
    deadline = Deadline(time.time() + 3600, "1h")
    assert run_experiment(experiment, models_dir=models, log=quiet, until=deadline) == cells
    # Less than FILL_MIN left: loading the model would take most of it, so nothing starts.
    assert run_experiment(experiment, models_dir=models, log=quiet, fill=True,
                          until=Deadline(time.time() + FILL_MIN / 2, "5m")) == cells
    assert not any(s.done for s in plan(experiment, models) if s.cell is not None)
    shown = []
    assert run_experiment(experiment, models_dir=models, log=shown.append, until=deadline, fill=True) == []
    # in order, the second once the first ended with time to spare
    assert [line.split(":")[0] for line in shown if line.startswith("[fill]")] == [f"[fill] {c}" for c in cells]
    assert all(step.done for step in plan(experiment, models))


def test_the_plan_counts_the_training_a_cut_run_saved(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    from bench.train import resume

    models = str(tmp_path / "models")
    raw = grid(tiny_model_dir)
    raw["stages"][0]["trainers"] = ["hybrid"]
    experiment = parse_experiment(raw)
    monkeypatch.setattr(resume, "SAVE_SECONDS", 0.0)
    real_save = resume.ResumePoint.save

    def save_then_stop(self, state):  # as a stop at --until right after step 1
        real_save(self, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(resume.ResumePoint, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(experiment, models_dir=models, log=quiet)
    monkeypatch.setattr(resume.ResumePoint, "save", real_save)
    train = next(s for s in plan(experiment, models) if s.action == "train")
    assert (train.resumes_at, train.pairs, train.done) == (1, 1 * 4, False)
    assert "resumes at step 1" in train.describe()
    pace = Pace(seconds_per_pair=0.5, seconds_per_task={}, checkpoints=1, runs=1)
    assert work_left([train], 0, pace) == 0.5 * 4  # one step of 4 pairs left, not two
    run_experiment(experiment, models_dir=models, log=quiet)
    train = next(s for s in plan(experiment, models) if s.action == "train")
    assert (train.done, train.resumes_at) == (True, 0)


def test_the_command_line_checks_until_before_any_work(tiny_model_dir, tmp_path, capsys):
    path = str(write(tmp_path, grid(tiny_model_dir)))
    assert main(["experiment", path, "--until", "soon"]) == 2
    assert "--until 'soon': expected a time" in capsys.readouterr().err
    assert main(["experiment", path, "--until", "2h", "--executor", "local"]) == 2
    assert "--until is for a grid run in this process" in capsys.readouterr().err
    assert main(["experiment", path, "--fill"]) == 2
    assert "--fill fills the time left before --until WHEN; give --until too" in capsys.readouterr().err


def test_a_dry_run_says_which_cells_would_start(tiny_model_dir, data_dir, tmp_path, capsys):
    path = str(write(tmp_path, grid(tiny_model_dir)))
    assert main(["experiment", path, "--dry-run", "--until", "2h", "--models-dir", str(tmp_path / "m")]) == 0
    text = capsys.readouterr().err
    # Nothing measured yet: every cell would start, and the stop at the deadline bounds them.
    assert "--until 2h (" in text and "would start 2 cell(s)\n  hybrid-a0.5-tiny-bert-mlqa-r-s1-2steps" in text
    assert not (tmp_path / "m").exists()
