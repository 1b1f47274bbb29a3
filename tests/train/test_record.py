"""bench/train/record.py: the step-by-step record of a run, as the resume state keeps it and the manifest reads it."""

from bench.train.record import RunRecord


def test_log_closes_the_window_into_one_point_of_means():
    record = RunRecord()
    record.add({"loss": 1.0, "mono": 0.5})
    record.add({"loss": 2.0, "mono": 1.5})
    point = record.log(2, 3e-5)
    assert point == {"step": 2, "loss": 1.5, "mono": 1.0, "lr": 3e-5} and record.curve == [point]
    assert record.window == {} and [step for step, _ in record.timeline] == [2]
    record.add({"loss": 4.0})
    # Under DDP the means of this process become the means over ranks before they are recorded.
    assert record.log(3, 1e-5, mean=lambda means: [m / 2 for m in means])["loss"] == 2.0


def test_a_resume_state_round_trips_and_notes_the_step_resumed_at():
    record = RunRecord(trained_before=10.0)
    record.add({"loss": 0.25})
    record.batches.append({"step": 0, "role": "main", "kind": "mono"})
    state = {"step": 1, **record.state()}
    assert state["train_seconds"] >= 10.0
    again = RunRecord.resumed(state)
    assert (again.curve, again.window, again.batches) == (record.curve, record.window, record.batches)
    assert again.resumes == [1] and again.trained_before == state["train_seconds"]
    assert RunRecord.resumed({**again.state(), "step": 5}).resumes == [1, 5]
