"""What an experiment file asks for and has no results yet, and which models are partial (a seed lacking some
languages or pairs): the report's 'Missing and partial' section."""

from __future__ import annotations

import pandas as pd

from bench.report.compare import group_scores
from bench.report.data import HELD_OUT, LAREQA, ReportData
from bench.report.tables import DATASET_NAMES, SETTINGS

DEFAULT_BEIR = ("scifact", "nfcorpus", "arguana")


def expected_grid(definition: dict) -> list[dict]:
    """Every (model, dataset) evaluation an experiment file asks for, read leniently (missing keys skipped)."""
    evaluation = definition.get("evaluation") or {}
    lareqa, beir = evaluation.get("lareqa"), evaluation.get("beir")
    settings = list((lareqa or {}).get("settings") or SETTINGS)
    beir_sets = list((beir or {}).get("datasets") or DEFAULT_BEIR) if "beir" in evaluation else []
    bases = list(definition.get("base_models") or [])
    cells = []
    for stage in definition.get("stages") or []:
        alphas = [float(a) for a in (stage.get("alphas") or [0.5])]
        for base in stage.get("base_models") or bases:
            for data in stage.get("train_data") or []:
                for seed in stage.get("seeds") or []:
                    for trainer in stage.get("trainers") or []:
                        for alpha in (alphas if trainer == "hybrid" else [None]):
                            cell = {"trainer": trainer, "base": base, "train_data": data, "seed": int(seed),
                                    "alpha": alpha}
                            held = [HELD_OUT[data]] if lareqa is not None and data in HELD_OUT else []
                            cells.append({**cell, "sets": [(d, s) for d in held for s in settings]
                                          + [(d, "mono") for d in beir_sets]})
    held_all = sorted({HELD_OUT[c["train_data"]] for c in cells if c["train_data"] in HELD_OUT}) if lareqa is not None \
        else []
    for ref in definition.get("references") or []:
        cells.append({"trainer": "none", "base": ref, "train_data": "", "seed": None, "alpha": None,
                      "sets": [(d, s) for d in held_all for s in settings] + [(d, "mono") for d in beir_sets]})
    unique = {}
    for cell in cells:
        unique.setdefault((cell["trainer"], cell["base"], cell["train_data"], cell["seed"], cell["alpha"]), cell)
    return list(unique.values())


def missing_cells(data: ReportData) -> list[str]:
    """'<cell>: <what is missing>' for every evaluation the experiment file lists that has no results."""
    if not data.definition:
        return []
    s = data.scores
    present = set()
    for row in s[["trainer", "base_model", "train_data", "seed", "alpha", "model", "dataset", "setting"]] \
            .drop_duplicates().itertuples():
        if row.trainer == "none":
            present.add(("none", row.model, "", None, None, row.dataset, row.setting))
        else:
            alpha = float(row.alpha) if row.trainer == "hybrid" and pd.notna(row.alpha) else None
            present.add((row.trainer, row.base_model, row.train_data, int(row.seed) if pd.notna(row.seed) else None,
                         alpha, row.dataset, row.setting))
    out = []
    for cell in expected_grid(data.definition):
        key = (cell["trainer"], cell["base"], cell["train_data"], cell["seed"], cell["alpha"])
        lacking = [(d, st) for d, st in cell["sets"] if (*key, d, st) not in present]
        if lacking:
            out.append(f"{_cell_name(cell)}: {_sets_text(lacking, len(cell['sets']))}")
    return out


def _cell_name(cell: dict) -> str:
    if cell["trainer"] == "none":
        return f"{cell['base']} (reference)"
    alpha = f" α={cell['alpha']:g}" if cell["alpha"] is not None else ""
    return f"{cell['trainer']}{alpha}, {cell['base']}, trained on {cell['train_data']}, seed {cell['seed']}"


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

