"""Learning curves (issue 16): stages with `steps:` in the experiment file, their checkpoints as groups of their
own beside the strategy's main group, the figure, and the sentence on whether the strategies' order changes."""

from __future__ import annotations

import json
import re

import pytest
from support.reports import RESAMPLES, Model, write_experiment

from bench.experiment.plan import checkpoint_dir
from bench.experiment.schema import ExperimentError, parse_experiment
from bench.report.data import load_report_data
from bench.report.learning import curve_points, learning_curves
from bench.results import ResultStore

DEFINITION = {
    "name": "curve", "references": ["me5-small"], "base_models": ["me5-small"], "training": {"steps": 10},
    "evaluation": {"lareqa": {}, "beir": {"datasets": ["scifact"]}},
    "stages": [{"trainers": ["hybrid", "mtl"], "seeds": [1], "train_data": ["mlqa-r"]},
               {"name": "curve", "trainers": ["hybrid", "mtl"], "seeds": [1], "train_data": ["mlqa-r"],
                "steps": [5, 10, 40]}],
}


def test_stage_steps_expand_into_cells_and_the_budget_itself_is_the_plain_cell():
    experiment = parse_experiment(DEFINITION)
    cells = experiment.cells()
    assert sorted((c.trainer, c.steps or 10) for c in cells) == [("hybrid", 5), ("hybrid", 10), ("hybrid", 40),
                                                                 ("mtl", 5), ("mtl", 10), ("mtl", 40)]
    assert {c.steps for c in cells} == {5, None, 40}
    names = {checkpoint_dir(experiment, c).name for c in cells}
    assert "hybrid-a0.5-me5-small-mlqa-r-s1-40steps" in names and "mtl-me5-small-mlqa-r-s1-10steps" in names
    for bad in (0, -3, "many", 2.5):
        with pytest.raises(ExperimentError, match="steps"):
            parse_experiment({**DEFINITION, "stages": [{**DEFINITION["stages"][1], "steps": [bad]}]})


def write_curve(mtl_offsets: dict[int, float], variant: str = "") -> None:
    """hybrid at +0.1 at every budget; mtl at the given offset per budget (10 is the file's); `variant` (+bf16)
    is appended to every run id."""
    models = [Model("me5-small", offset=-0.1)]
    for steps, mtl in mtl_offsets.items():
        models += [Model(f"hybrid-a0.5-me5-small-mlqa-r-s1-{steps}steps", "hybrid", 1, 0.5, 0.1, noise=0.0,
                         variant=variant),
                   Model(f"mtl-me5-small-mlqa-r-s1-{steps}steps", "mtl", 1, offset=mtl, noise=0.0, variant=variant)]
    write_experiment("curve", models, definition=DEFINITION)
    for path in ResultStore("curve").folder.glob("*/training_manifest.json"):
        manifest = json.loads(path.read_text())
        manifest["options"]["steps"] = int(re.search(r"-(\d+)steps@", path.parent.name).group(1))
        path.write_text(json.dumps(manifest))


def test_curve_points_are_groups_of_their_own(tmp_path):
    write_curve({5: 0.0, 10: 0.0, 40: 0.0})
    data = load_report_data("curve")
    kinds = dict(zip(data.groups["label"], data.groups["kind"]))
    assert kinds["hybrid α=0.5"] == "trained" and kinds["hybrid α=0.5 (40 steps)"] == "learning-curve"
    assert len(data.trained_groups()) == 2  # the comparisons see the main groups only
    points = curve_points(data, RESAMPLES, 0)
    assert sorted(set(points["steps"])) == [5, 10, 40]
    hybrid = points[(points["label"] == "hybrid α=0.5") & (points["dataset"] == "scifact")]
    mtl = points[(points["label"] == "mtl") & (points["dataset"] == "scifact")]
    assert (hybrid["score"].to_numpy() > mtl["score"].to_numpy()).all()


@pytest.mark.parametrize("offsets, sentence", [({5: 0.0, 10: 0.0, 40: 0.0}, "keep one order at 5, 10, 40 steps"),
                                               ({5: 0.0, 10: 0.0, 40: 0.3}, "the order changes with training length")])
def test_the_report_says_whether_the_order_changes(tmp_path, offsets, sentence):
    write_curve(offsets)
    notes: list[str] = []
    written = learning_curves(load_report_data("curve"), tmp_path, notes, RESAMPLES, 0)
    assert [p.name for p in written] == ["learning_curve_mlqa-r.png"] and written[0].stat().st_size > 0
    scifact = next(n for n in notes if "SciFact" in n)
    assert sentence in scifact


def test_a_strategy_is_one_line_whatever_its_run_ids_carry(tmp_path):
    """The points of a strategy share its main group's label, also when the labels end in a variant (+bf16):
    a label is not cut apart to find the strategy."""
    write_curve({5: 0.0, 10: 0.0, 40: 0.0}, variant="+bf16")
    data = load_report_data("curve")
    assert "hybrid α=0.5 (40 steps) +bf16" in set(data.groups["label"])
    points = curve_points(data, RESAMPLES, 0)
    scifact = points[points["dataset"] == "scifact"]
    assert scifact.groupby("label")["steps"].apply(sorted).to_dict() == {"hybrid α=0.5 +bf16": [5, 10, 40],
                                                                         "mtl +bf16": [5, 10, 40]}
