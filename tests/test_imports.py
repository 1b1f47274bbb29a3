"""Every module of the package imports (a broken import fails here, not in the one command that reaches it),
and the ground floor stays torch-free: the protocol, run keys, paths, safety, the experiment schema and the
training options are read by the report and the planner, which must not pay for loading torch."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import bench

MODULES = sorted(m.name for m in pkgutil.walk_packages(bench.__path__, "bench.") if not m.name.endswith("__main__"))
TORCH_FREE = ["bench.protocol", "bench.runkey", "bench.paths", "bench.safety", "bench.digest",
              "bench.experiment.schema", "bench.train.options", "bench.train.trainers", "bench.models.registry",
              "bench.retrieval", "bench.retrieval.dense.cache", "bench.report.missing", "bench.results",
              "bench.reproduce", "bench.cli", "bench.costs", "bench.experiment.plan"]


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name):
    importlib.import_module(name)


def test_the_ground_floor_does_not_load_torch():
    code = ("import sys, importlib\n"
            f"for name in {TORCH_FREE!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'jnius') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
