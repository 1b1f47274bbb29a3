"""What an experiment file asks for and has no results yet, and which models are partial (a seed lacking some
languages or pairs): the report's 'Missing and partial' section."""

from __future__ import annotations

import pandas as pd

from bench.report.compare import group_scores
from bench.protocol import LAREQA_SETS as LAREQA
from bench.report.data import ReportData
from bench.report.tables import DATASET_NAMES
from bench.train.trainers import uses_alpha


def expected_grid(definition: dict) -> list[dict]:
    """Every model the experiment file asks for, with the (dataset, setting) pairs it is to be scored on, as the
    experiment runner expands the file (bench.experiment.schema.expected_sets); a file it cannot read gives none."""
    from bench.experiment.schema import ExperimentError, expected_sets, parse_experiment, unique_cells

    try:
        experiment = parse_experiment(definition)
    except (ExperimentError, KeyError, TypeError, ValueError):
        return []
    from bench.experiment.plan import eval_spec
    from bench.models.registry import resolve_model

    stage_of = {cell: stage.name for stage, cell in unique_cells(experiment)}
    cells = []
    for reference, cell, sets in expected_sets(experiment):
        if cell is None:
            # A reference's results sit under the run id it is scored as on each set (the experiment's precision
            # and length applied: me5-small+bf16), which is what the report names it by.
            spec = resolve_model(reference)
            run_ids = {d: eval_spec(experiment, spec, d if d in LAREQA else "beir").key for d, _ in sets}
            cells.append({"trainer": "none", "base": reference, "train_data": "", "seed": None, "alpha": None,
                          "steps": None, "sets": sets, "run_ids": run_ids, "stage": "references"})
        else:
            cells.append({"trainer": cell.trainer, "base": cell.base, "train_data": cell.train_data,
                          "seed": cell.seed, "alpha": cell.alpha, "steps": cell.steps, "sets": sets,
                          "stage": stage_of[cell]})
    return cells


def missing_cells(data: ReportData) -> list[str]:
    """'<cell>: <what is missing>' for every evaluation the experiment file lists that has no results."""
    return [f"{_cell_name(cell, [cell['seed']])}: {_sets_text(lacking, len(cell['sets']))}"
            for cell, lacking in cell_progress(data) if lacking]


def cell_progress(data: ReportData) -> list[tuple[dict, list[tuple[str, str]]]]:
    """(cell, the (dataset, setting) pairs it still lacks) for every model the experiment file lists."""
    if not data.definition:
        return []
    s = data.scores
    present = set()
    for row in s[["trainer", "base_model", "train_data", "seed", "alpha", "steps", "model", "dataset", "setting"]] \
            .drop_duplicates().itertuples():
        if row.trainer == "none":
            present.add(("none", row.model, "", None, None, None, row.dataset, row.setting))
        else:
            alpha = float(row.alpha) if uses_alpha(row.trainer) and pd.notna(row.alpha) else None
            present.add((row.trainer, row.base_model, row.train_data, int(row.seed) if pd.notna(row.seed) else None,
                         alpha, int(row.steps) if pd.notna(row.steps) else None, row.dataset, row.setting))
    return [(cell, [(d, st) for d, st in cell["sets"] if (*_cell_key(cell, d), d, st) not in present])
            for cell in expected_grid(data.definition)]


def _cell_key(cell: dict, dataset: str) -> tuple:
    """The cell as `present` keys it: a reference by its run id on the dataset, a trained cell by its fields."""
    if cell["trainer"] == "none":
        return ("none", cell["run_ids"][dataset], "", None, None, None)
    return (cell["trainer"], cell["base"], cell["train_data"], cell["seed"], cell["alpha"], cell["steps"])


def _cell_name(cell: dict, seeds: list[int]) -> str:
    if cell["trainer"] == "none":
        return f"{cell['base']} (reference)"
    alpha = f" α={cell['alpha']:g}" if cell["alpha"] is not None else ""
    steps = f", {cell['steps']} steps" if cell["steps"] is not None else ""
    seeds_text = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    return f"{cell['trainer']}{alpha}, {cell['base']}, trained on {cell['train_data']}, {seeds_text}{steps}"


def progress_lines(data: ReportData) -> list[str]:
    """A table of the grid's progress by stage, then what each stage still lacks, the seeds of one setup that
    lack the same on one line."""
    progress = cell_progress(data)
    stages: dict[str, list] = {}
    for cell, lacking in progress:
        stages.setdefault(cell["stage"], []).append((cell, lacking))
    done = sum(not lacking for _, lacking in progress)
    lines = [f"The experiment file lists {len(progress)} models (references and trained cells); {done} have every "
             "evaluation.", "", "| stage | models | complete | partly scored | not started |",
             "|---|---:|---:|---:|---:|"]
    for stage, cells in stages.items():
        none = sum(len(lacking) == len(cell["sets"]) for cell, lacking in cells)
        partly = sum(0 < len(lacking) < len(cell["sets"]) for cell, lacking in cells)
        lines.append(f"| {stage} | {len(cells)} | {len(cells) - none - partly} | {partly} | {none} |")
    todo = []
    for stage, cells in stages.items():
        setups: dict[tuple, list] = {}
        for cell, lacking in cells:
            if lacking:
                what = _sets_text(lacking, len(cell["sets"]))
                setup = (cell["trainer"], cell["base"], cell["train_data"], cell["alpha"], cell["steps"])
                setups.setdefault((*setup, what), []).append(cell)
        if setups:
            todo += ["", f"{stage}:", ""]
            todo += [f"- {_cell_name(same[0], [c['seed'] for c in same])}: {key[-1]}" for key, same in setups.items()]
    return lines + (["", "Still to do, by stage:", *todo] if todo else [])


def _sets_text(lacking: list[tuple[str, str]], total: int) -> str:
    if len(lacking) == total:
        return "no results at all"
    return "no results on " + ", ".join(f"{DATASET_NAMES.get(d, d)}{' ' + s if d in LAREQA else ''}"
                                        for d, s in lacking)


def missing_section(data: ReportData) -> list[str]:
    lines = []
    if data.definition is None:
        lines.append("No experiment file found (neither `results/<name>/experiment.yaml` nor "
                     "`bench/experiments/<name>.yaml`), so the grid it asks for is unknown; only partial "
                     "evaluations are listed.")
    else:
        lines += progress_lines(data)
    partial = group_scores(data)
    partial = partial[partial["partial"]]
    if len(partial):
        lines += ["", "Partial evaluations (marked † in the tables; hatched in the plots):", ""]
        for r in partial.itertuples():
            what = "pairs" if r.setting == "cross" else "languages"
            lines.append(f"- {data.label(r.group)}: {DATASET_NAMES.get(r.dataset, r.dataset)} {r.setting} {r.metric}, "
                         f"{r.cells} of {r.cells_expected} {what}")
    else:
        lines += ["", "No partial evaluations: every model has every language (pair) of each setting it was scored on."]
    return lines

