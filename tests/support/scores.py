"""Tidy score rows built by hand."""

from __future__ import annotations

import pandas as pd

from bench.results import TIDY_COLUMNS

def tidy(values: dict[tuple[str, str], float]) -> pd.DataFrame:
    """Tidy rows for (model, metric) -> value; the model named "base" is untrained."""
    rows = []
    for (model, metric), value in values.items():
        row = dict.fromkeys(TIDY_COLUMNS, "")
        row.update(model=model, run_id=model, trainer="none" if model == "base" else "hybrid", dataset="xquad-r",
                   setting="mono", query_lang="en", doc_lang="en", metric=metric, value=value, experiment="smoke",
                   n_queries=10, created_at="2026-01-01T00:00:00+00:00")
        rows.append(row)
    return pd.DataFrame(rows)
