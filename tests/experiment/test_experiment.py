"""Experiments as data: parsing, the plan, a run that resumes after an interruption, the shipped files."""

import json
import re
from pathlib import Path

import pytest

import bench.experiment as experiment_module
from bench.protocol import HELD_OUT
from bench.cli import main
from bench.experiment import ExperimentError, load_experiment, parse_experiment, plan, run_experiment
from bench.experiment.plan import describe_plan
from bench.results import ResultStore
from support.training import quiet
from support.experiments import grid, write






def test_the_plan_lists_every_step_and_runs_nothing(tiny_model_dir, data_dir, tmp_path, capsys):
    path = write(tmp_path, grid(tiny_model_dir))
    assert main(["experiment", str(path), "--dry-run", "--models-dir", str(tmp_path / "models")]) == 0
    text = capsys.readouterr().err
    # 3 mono + 3 multi tasks on XQuAD-R for the reference and for each of the two checkpoints.
    assert "2 checkpoints, 2 to train, 18 (model, task) evaluations to run" in text
    assert "[todo] train     hybrid-a0.5-tiny-bert-mlqa-r-s1-2steps" in text
    assert not (tmp_path / "models").exists() and not ResultStore("grid").folder.exists()


def test_a_run_trains_evaluates_and_a_rerun_does_nothing(tiny_model_dir, data_dir, tmp_path):
    experiment = parse_experiment(grid(tiny_model_dir), source=write(tmp_path, grid(tiny_model_dir)))
    models = str(tmp_path / "models")
    run_experiment(experiment, models_dir=models, log=quiet)

    rows = ResultStore("grid").load()
    assert set(rows["trainer"]) == {"none", "hybrid", "xx-mono"}
    assert len(rows.groupby(["run_id", "setting", "query_lang"])) == 3 * 6
    folder = ResultStore("grid").folder
    assert (folder / "experiment.yaml").is_file()
    manifests = sorted(folder.glob("*/training_manifest.json"))
    assert [json.loads(p.read_text())["trainer"] for p in manifests] == ["hybrid", "xx-mono"]

    steps = plan(experiment, models)
    assert all(step.done for step in steps)
    stamps = {p: p.stat().st_mtime_ns for p in folder.rglob("*.csv")}
    weights = {p: p.stat().st_mtime_ns for p in Path(models).rglob("model.safetensors")}
    run_experiment(experiment, models_dir=models, log=quiet)
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.csv")} == stamps
    assert {p: p.stat().st_mtime_ns for p in Path(models).rglob("model.safetensors")} == weights


def test_an_interrupted_run_continues_and_loses_nothing(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    experiment = parse_experiment(grid(tiny_model_dir))
    models = str(tmp_path / "models")
    from bench.train import run as train_module

    real_train = train_module.train
    calls = []

    def killed_on_second_training(options, log=print):
        calls.append(options.trainer)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if Ctrl-C'd half way through the grid
        return real_train(options, log=log)

    monkeypatch.setattr(train_module, "train", killed_on_second_training)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(experiment, models_dir=models, log=quiet)
    first = {p: p.stat().st_mtime_ns for p in ResultStore("grid").folder.rglob("*.csv")}
    assert len(first) == 2 * 6  # the reference and the first checkpoint, all of their tasks
    monkeypatch.setattr(train_module, "train", real_train)

    steps = plan(experiment, models)
    done = [s for s in steps if s.done]
    assert [s.model for s in done if s.action == "train"] == ["hybrid-a0.5-tiny-bert-mlqa-r-s1-2steps"]
    # What is left is timed at the pace of what was done: the first checkpoint's training and scoring.
    text = describe_plan(experiment, steps)
    # (the reference's scoring counts only when it did not come from another test's embedding cache)
    assert "time left: about" in text and "pace of the 1 trained checkpoint and " in text
    assert "[todo] train     xx-mono-tiny-bert-mlqa-r-s1-2steps (about" in text
    assert re.search(r"^  .+: 1 of 2 checkpoints to train: about .+, finished about .+ from now$", text, re.M)
    run_experiment(experiment, models_dir=models, log=quiet)
    after = {p: p.stat().st_mtime_ns for p in ResultStore("grid").folder.rglob("*.csv")}
    assert len(after) == 3 * 6 and all(after[p] == t for p, t in first.items())


def test_cells_deduplicate_across_stages_and_alpha_is_hybrid_only(tiny_model_dir):
    raw = grid(tiny_model_dir, stages=[
        {"trainers": ["hybrid", "xy"], "seeds": [1], "train_data": ["mlqa-r"]},
        {"trainers": ["hybrid"], "alphas": [0, 0.5, 1], "seeds": [1], "train_data": ["mlqa-r"]},
    ])
    cells = parse_experiment(raw).cells()
    assert [(c.trainer, c.alpha) for c in cells] == [("hybrid", 0.5), ("xy", None), ("hybrid", 0.0),
                                                     ("hybrid", 1.0)]


@pytest.mark.parametrize("change, message", [
    ({"stages": [{"trainers": ["nope"], "seeds": [1], "train_data": ["mlqa-r"]}]}, "unknown trainer"),
    ({"stages": [{"trainers": ["hybrid"], "alphas": [1.5], "seeds": [1], "train_data": ["mlqa-r"]}]}, "alpha"),
    ({"stages": [{"trainers": ["hybrid"], "seeds": [1], "train_data": ["squad"]}]}, "unknown train_data squad"),
    ({"stages": []}, "no stages"),
    ({"trainig": {}}, "unknown key(s) trainig"),
    ({"training": {"stepz": 3}}, "unknown key(s) stepz"),
    ({"references": ["no-such-model"]}, "unknown model 'no-such-model'"),
    ({"name": ""}, "'name' is required"),
    ({"precision": "fp16"}, "unknown precision 'fp16'; known: fp32, bf16"),
    ({"training": {"precision": "bf16"}}, "precision is a top-level key"),
])
def test_bad_experiment_files_say_what_is_wrong(tiny_model_dir, change, message):
    with pytest.raises(ExperimentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_experiment(grid(tiny_model_dir, **change))


def test_unknown_names_and_files(tmp_path, capsys):
    assert main(["experiment", "nope", "--dry-run"]) == 2
    assert "shipped: paper, paper-v2, smoke" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(ExperimentError, match="not valid YAML"):
        load_experiment(str(tmp_path / "bad.yaml"))
    with pytest.raises(ExperimentError, match="does not exist"):
        load_experiment(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("name", ["paper", "smoke"])
def test_shipped_experiments_parse(name):
    experiment = load_experiment(name)
    assert experiment.name == name and experiment.cells()


def test_paper_grid_runs_in_the_design_priority_order():
    experiment = load_experiment("paper")
    first = experiment.stages[0].cells
    assert {c.trainer for c in first} == {"hybrid", "mtl", "xx-mono", "xy"}
    assert {(c.seed, c.train_data) for c in first} == {(1, "mlqa-r")}
    cells = experiment.cells()
    assert {c.seed for c in cells} == {1, 2, 3} and {c.train_data for c in cells} == {"mlqa-r", "xquad-r"}
    assert {c.trainer for c in cells} == {"hybrid", "mtl", "xx-mono", "xy", "x-x", "en-en"}
    assert sorted(c.alpha for c in cells if c.trainer == "hybrid" and c.seed == 1 and c.train_data == "mlqa-r") \
        == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert experiment.eval_sets() == ["xquad-r", "mlqa-r"] and set(experiment.references) == {"me5-small", "bm25"}
    assert HELD_OUT == {"mlqa-r": "xquad-r", "xquad-r": "mlqa-r"}


def test_only_the_chosen_stages_run(tiny_model_dir, data_dir, tmp_path):
    raw = grid(tiny_model_dir, stages=[
        {"trainers": ["hybrid"], "seeds": [1], "train_data": ["mlqa-r"]},
        {"trainers": ["xy"], "seeds": [1], "train_data": ["mlqa-r"]},
    ])
    experiment = parse_experiment(raw)
    models = tmp_path / "models"
    run_experiment(experiment, models_dir=str(models), log=quiet, stages=[2])
    assert [p.name for p in models.iterdir()] == ["xy-tiny-bert-mlqa-r-s1-2steps"]
    with pytest.raises(ExperimentError, match="has stages 1 to 2; no stage 3"):
        run_experiment(experiment, models_dir=str(models), log=quiet, stages=[3])


def test_shards_split_the_grid_without_overlap(tiny_model_dir, data_dir, tmp_path, capsys):
    raw = grid(tiny_model_dir, stages=[{"trainers": ["hybrid", "xx-mono", "xy"], "seeds": [1],
                                        "train_data": ["mlqa-r"]}])
    raw["evaluation"]["lareqa"]["settings"] = ["mono"]
    experiment = parse_experiment(raw)
    models = tmp_path / "models"
    run_experiment(experiment, models_dir=str(models), log=quiet, shard=(2, 2))
    # Cells are dealt in stage order: shard 2 of 2 takes the second; the references belong to shard 1.
    assert [p.name for p in models.iterdir()] == ["xx-mono-tiny-bert-mlqa-r-s1-2steps"]
    assert set(ResultStore("grid").load()["trainer"]) == {"xx-mono"}
    run_experiment(experiment, models_dir=str(models), log=quiet, shard=(1, 2))
    assert sorted(p.name for p in models.iterdir()) == ["hybrid-a0.5-tiny-bert-mlqa-r-s1-2steps",
                                                        "xx-mono-tiny-bert-mlqa-r-s1-2steps",
                                                        "xy-tiny-bert-mlqa-r-s1-2steps"]
    assert all(step.done for step in plan(experiment, str(models)))
    with pytest.raises(SystemExit):
        main(["experiment", "grid.yaml", "--shard", "3/2", "--dry-run"])
    assert "expected K/N with 1 <= K <= N" in capsys.readouterr().err


def test_dry_run_with_a_shard_prints_only_its_cells(tiny_model_dir, data_dir, tmp_path):
    raw = grid(tiny_model_dir, stages=[{"trainers": ["hybrid", "xx-mono", "xy"], "seeds": [1],
                                        "train_data": ["mlqa-r"]}])
    raw["evaluation"]["lareqa"]["settings"] = ["mono"]
    experiment = parse_experiment(raw)
    shown: list[str] = []
    run_experiment(experiment, models_dir=str(tmp_path / "models"), log=shown.append, dry_run=True, shard=(2, 2))
    text = "\n".join(shown)
    # Shard 2 of 2 holds the second cell only; the references belong to shard 1.
    assert "shard 2/2" in text and "xx-mono-tiny-bert-mlqa-r-s1-2steps" in text
    assert "hybrid" not in text and "xy-tiny" not in text and "references" not in text
    assert "1 checkpoints, 1 to train" in text
    shown.clear()
    run_experiment(experiment, models_dir=str(tmp_path / "models"), log=shown.append, dry_run=True, shard=(1, 2))
    text = "\n".join(shown)
    assert "references" in text and "hybrid" in text and "xy-tiny" in text and "xx-mono" not in text
    assert not (tmp_path / "models").exists()


def test_references_can_be_narrowed_or_skipped(tiny_model_dir, data_dir, tmp_path):
    raw = grid(tiny_model_dir, references=[str(tiny_model_dir), "bm25"])
    raw["evaluation"]["lareqa"]["settings"] = ["mono"]
    experiment = parse_experiment(raw)
    models = str(tmp_path / "models")
    run_experiment(experiment, models_dir=models, log=quiet, stages=[1], references=[str(tiny_model_dir)])
    assert set(ResultStore("grid").load()["model"]) == {"tiny-bert", "hybrid-a0.5-tiny-bert-mlqa-r-s1-2steps",
                                                        "xx-mono-tiny-bert-mlqa-r-s1-2steps"}
    with pytest.raises(ExperimentError, match="has no reference minilm-l6; its references: "):
        run_experiment(experiment, models_dir=models, log=quiet, references=["minilm-l6"])


def test_cells_scored_elsewhere_need_no_checkpoint_here(tiny_model_dir, data_dir, tmp_path):
    raw = grid(tiny_model_dir)
    raw["evaluation"]["lareqa"]["settings"] = ["mono"]
    experiment = parse_experiment(raw)
    run_experiment(experiment, models_dir=str(tmp_path / "gpu-machine"), log=quiet)
    folder = ResultStore("grid").folder
    stamps = {p: p.stat().st_mtime_ns for p in folder.rglob("*.csv")}
    # Another machine, without the checkpoints: the grid is done, nothing is trained or scored again.
    here = tmp_path / "laptop"
    steps = plan(experiment, str(here))
    assert all(step.done for step in steps)
    assert [s.model for s in steps if s.elsewhere] == ["hybrid-a0.5-tiny-bert-mlqa-r-s1-2steps",
                                                       "xx-mono-tiny-bert-mlqa-r-s1-2steps"]
    run_experiment(experiment, models_dir=str(here), log=quiet)
    assert not here.exists() and {p: p.stat().st_mtime_ns for p in folder.rglob("*.csv")} == stamps
    # A cell cut off while being scored keeps its manifest; without the checkpoint it must be trained again.
    next(folder.glob("xx-mono-*")).joinpath("xquad-r__test__mono__en-en.csv").unlink()
    steps = {(s.action, s.model): s for s in plan(experiment, str(here))}
    assert not steps[("train", "xx-mono-tiny-bert-mlqa-r-s1-2steps")].done
    assert steps[("train", "hybrid-a0.5-tiny-bert-mlqa-r-s1-2steps")].done


def test_the_files_precision_reaches_training_and_encoding(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    """A bf16 grid trains its cells in bf16 (-bf16 checkpoints) and scores every dense model in bf16 (+bf16)."""
    import bench.precision
    from bench.train import run as train_module

    monkeypatch.setattr(bench.precision, "cpu_flags", lambda: {"avx512_bf16"})  # as on a bf16 CPU
    raw = grid(tiny_model_dir, precision="bf16")
    raw["stages"][0]["trainers"] = ["hybrid"]
    experiment = parse_experiment(raw)
    assert experiment.precision == "bf16" and load_experiment("paper").precision == "fp32"
    models = str(tmp_path / "models")
    [train_step] = [s for s in plan(experiment, models) if s.action == "train"]
    assert train_step.model == "hybrid-a0.5-tiny-bert-mlqa-r-s1-2steps-bf16"
    seen = []
    monkeypatch.setattr(train_module, "train", lambda options, log=print: seen.append(options) or
                        (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(experiment, models_dir=models, log=quiet, references=[])
    assert seen[0].precision == "bf16"
    from bench.models.registry import resolve_model

    spec = experiment_module.eval_spec(experiment, resolve_model(str(tiny_model_dir)), "xquad-r")
    assert spec.precision == "bf16" and spec.key.startswith("tiny-bert") and spec.key.endswith("+bf16")
    # --precision on the command line (run_experiment's precision) overrides the file.
    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        run_experiment(parse_experiment(grid(tiny_model_dir)), models_dir=models, log=quiet, references=[],
                       precision="bf16")
    assert seen[0].precision == "bf16"


def test_a_bf16_grid_is_refused_before_any_work_without_native_bf16(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    import bench.precision

    monkeypatch.setattr(bench.precision, "cpu_flags", lambda: set())
    experiment = parse_experiment(grid(tiny_model_dir, precision="bf16"))
    with pytest.raises(bench.precision.PrecisionError, match="lacks avx512_bf16") as refused:
        run_experiment(experiment, models_dir=str(tmp_path / "models"), log=quiet, device="cpu")
    assert "experiment grid runs in bf16" in str(refused.value) and "--precision fp32" in str(refused.value)
    assert not ResultStore("grid").folder.exists() and not (tmp_path / "models").exists()


def test_a_stage_may_narrow_the_beir_sets_and_the_report_reads_the_same_expansion():
    from bench.experiment import ExperimentError, expected_sets, parse_experiment
    from bench.report.missing import expected_grid

    raw = {"name": "narrow", "base_models": ["me5-small"], "references": ["bm25"],
           "evaluation": {"lareqa": {"settings": ["mono"]}, "beir": {"datasets": ["scifact", "arguana"]}},
           "stages": [{"trainers": ["xy"], "seeds": [1], "train_data": ["mlqa-r"]},
                      {"trainers": ["hybrid"], "alphas": [0.25], "seeds": [1], "train_data": ["mlqa-r"],
                       "beir_datasets": ["scifact"]}]}
    sets = {(ref, cell.trainer if cell else None): s for ref, cell, s in expected_sets(parse_experiment(raw))}
    assert sets[("bm25", None)] == [("xquad-r", "mono"), ("scifact", "mono"), ("arguana", "mono")]
    assert sets[("", "xy")] == [("xquad-r", "mono"), ("scifact", "mono"), ("arguana", "mono")]
    assert sets[("", "hybrid")] == [("xquad-r", "mono"), ("scifact", "mono")]
    report = {(c["trainer"], c["alpha"]): c["sets"] for c in expected_grid(raw)}
    assert report[("hybrid", 0.25)] == [("xquad-r", "mono"), ("scifact", "mono")]
    with pytest.raises(ExperimentError, match="nfcorpus are not among"):
        parse_experiment({**raw, "stages": [{**raw["stages"][1], "beir_datasets": ["nfcorpus"]}]})


def test_each_stage_says_what_it_needs_and_when_it_is_finished():
    from bench.costs import Pace
    from bench.experiment.plan import Step, stage_left

    pace = Pace(seconds_per_pair=1.0, seconds_per_task={(True, "xquad-r"): 10.0}, checkpoints=1, runs=1)
    steps = [Step("one", "train", "a", done=True, pairs=100), Step("one", "evaluate", "a", "xquad-r", 2, 2, done=True),
             Step("two", "train", "b", pairs=600),
             Step("two", "evaluate", "b", "xquad-r", 3, 1, remaining={"xquad-r": 2}),
             Step("two", "train", "c", done=True, pairs=600)]
    assert stage_left("one", steps, pace) == (0.0, "")
    assert stage_left("two", steps, pace) == (620.0, "1 of 2 checkpoints to train: about 10 min")
