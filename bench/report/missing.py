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
    from bench.experiment.schema import ExperimentError, expected_sets, parse_experiment

    try:
        experiment = parse_experiment(definition)
    except (ExperimentError, KeyError, TypeError, ValueError):
        return []
    from bench.experiment.plan import eval_spec
    from bench.models.registry import resolve_model

    cells = []
    for reference, cell, sets in expected_sets(experiment):
        if cell is None:
            # A reference's results sit under the run id it is scored as on each set (the experiment's precision
            # and length applied: me5-small+bf16), which is what the report names it by.
            spec = resolve_model(reference)
            run_ids = {d: eval_spec(experiment, spec, d if d in LAREQA else "beir").key for d, _ in sets}
            cells.append({"trainer": "none", "base": reference, "train_data": "", "seed": None, "alpha": None,
                          "steps": None, "sets": sets, "run_ids": run_ids})
        else:
            cells.append({"trainer": cell.trainer, "base": cell.base, "train_data": cell.train_data,
                          "seed": cell.seed, "alpha": cell.alpha, "steps": cell.steps, "sets": sets})
    return cells


def missing_cells(data: ReportData) -> list[str]:
    """'<cell>: <what is missing>' for every evaluation the experiment file lists that has no results."""
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
    out = []
    for cell in expected_grid(data.definition):
        lacking = [(d, st) for d, st in cell["sets"] if (*_cell_key(cell, d), d, st) not in present]
        if lacking:
            out.append(f"{_cell_name(cell)}: {_sets_text(lacking, len(cell['sets']))}")
    return out


def _cell_key(cell: dict, dataset: str) -> tuple:
    """The cell as `present` keys it: a reference by its run id on the dataset, a trained cell by its fields."""
    if cell["trainer"] == "none":
        return ("none", cell["run_ids"][dataset], "", None, None, None)
    return (cell["trainer"], cell["base"], cell["train_data"], cell["seed"], cell["alpha"], cell["steps"])


def _cell_name(cell: dict) -> str:
    if cell["trainer"] == "none":
        return f"{cell['base']} (reference)"
    alpha = f" α={cell['alpha']:g}" if cell["alpha"] is not None else ""
    steps = f", {cell['steps']} steps" if cell["steps"] is not None else ""
    return f"{cell['trainer']}{alpha}, {cell['base']}, trained on {cell['train_data']}, seed {cell['seed']}{steps}"


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
        missing = missing_cells(data)
        total = len(expected_grid(data.definition))
        lines.append(f"The experiment file lists {total} models (references and trained cells); "
                     f"{len(missing)} lack some or all of their evaluations" + (":" if missing else "."))
        lines += [""] + [f"- {m}" for m in missing] if missing else []
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

