"""Result tables as text, markdown, csv or LaTeX, for `run` and `show`."""

from __future__ import annotations

import shutil
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

TABLE_FORMATS = ("text", "markdown", "csv", "latex")


def summary_text(table: pd.DataFrame, fmt: str = "text") -> str:
    """The 0-1 metrics' table, then the rank metrics' (rank distance) under a heading of their own."""
    from bench.eval.runner import split_rank_metrics

    scores, ranks = split_rank_metrics(table)
    parts = [format_table(scores, fmt, 4)] if not scores.empty else []
    if not ranks.empty:
        parts.append(f"rank distance (in ranks, lower is better):\n{format_table(ranks, fmt, 1)}")
    return "\n\n".join(parts)


def format_table(table: pd.DataFrame, fmt: str, digits: int) -> str:
    if fmt == "csv":
        return table.to_csv(float_format=f"%.{digits}f").rstrip("\n")
    if fmt == "latex":
        return table.to_latex(float_format=f"%.{digits}f").rstrip("\n")
    if fmt == "markdown":
        return markdown_table(table, digits)
    # On a terminal, columns (one per run) wrap into blocks that fit its width; piped output stays one table.
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    return table.to_string(float_format=lambda v: f"{v:.{digits}f}", line_width=width)


def markdown_table(table: pd.DataFrame, digits: int) -> str:
    """A GitHub pipe table, written here because pandas' to_markdown needs tabulate, which bench does not ship."""
    import pandas as pd

    flat = table.reset_index()
    header = [str(c) for c in flat.columns]
    # A model without a score for a row is left blank, as in the text table's NaN.
    cells = [["" if pd.isna(v) else f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
             for row in flat.itertuples(index=False)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])
