"""bench/perf/scale.py, synthetic.py and tiny_model.py: the scale section of `bench perf` on small sizes, its data and model
deterministic, and `--section` / `--skip` selecting sections."""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import pytest

from bench.perf.options import SECTIONS, PerfOptions, sections_skipped

SIZES = (2000, 5000)
STAGES = ("generate", "load", "encode", "faiss-build", "faiss-hnsw-build", "faiss-ivf-build", "search-exact",
          "search-faiss", "search-faiss-hnsw", "search-faiss-ivf")


@pytest.fixture(scope="module")
def scale_run(tmp_path_factory):
    """`bench perf --section scale --scale-sizes 2000 5000 --scale-processes 2`, once for the module."""
    from bench.perf import run_perf

    out = tmp_path_factory.mktemp("perf-out")
    options = PerfOptions(sections=("scale",), scale_sizes=SIZES, scale_processes=2, scale_queries=200, out=out)
    start = time.perf_counter()
    report, summary = run_perf(options, log=lambda message: None)
    return report, summary, out, time.perf_counter() - start


def test_scale_section_runs_alone_and_quickly(scale_run):
    report, summary, out, seconds = scale_run
    # Speed is what `bench perf` reports, never a test's pass mark (about 40 s here on 2 busy cores).
    assert "scale" in report
    for other in ("matmul", "encode", "e2e", "scaling", "train"):
        assert other not in report
    written = json.loads(next(out.glob("perf-*.json")).read_text())
    assert written["scale"] == report["scale"]
    # A partial run keeps its summary in its report and leaves the headline summary.json alone.
    assert written["summary"]["scale"] == summary["scale"]
    assert not (out / "summary.json").exists()


def test_scale_report_keys_and_recalls(scale_run):
    report, summary, _, _ = scale_run
    scale = report["scale"]
    assert [row["docs"] for row in scale["sizes"]] == list(SIZES)
    for row in scale["sizes"]:
        assert tuple(row["stages"]) == STAGES
        for name, stage in row["stages"].items():
            assert stage["seconds"] >= 0 and (name == "generate" or stage["peak_rss_mb"] > 0)
        encode = row["stages"]["encode"]
        assert encode["processes"] == 2 and encode["shards"] == 2 and encode["children"] == 2
        assert encode["children_peak_rss_mb"] > 0 and encode["children_total_rss_mb"] >= encode["children_peak_rss_mb"]
        assert row["exact_source_in_top_10"] > 0.9
        assert row["ann"]["faiss"]["recall_at_10_vs_exact"] == 1.0
        for method in ("faiss-hnsw", "faiss-ivf"):
            assert 0.0 <= row["ann"][method]["recall_at_10_vs_exact"] <= 1.0
        assert row["queries"] == 200 and row["dim"] == 32
    growth = scale["growth"]
    assert growth["size_ratio"] == 2.5 and set(growth["stages"]) == set(STAGES) - {"generate"}
    for r in growth["stages"].values():
        assert r["time_ratio"] > 0 and r["memory_ratio"] > 0
    assert set(summary["scale"]["sizes"]) == {"2000", "5000"}
    assert summary["scale"]["growth"]["size_ratio"] == 2.5
    # the work folders (corpus index, shards, indexes) are gone; the data and the model stay for the next run
    root = Path(scale["model"]).parent
    assert not any((root / "work").glob("*")) and (root / "tiny-model" / "modules.json").is_file()


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_synthetic_corpus_is_deterministic_and_nested(tmp_path):
    from bench.perf.synthetic import corpus_paths, generate

    first = generate(2000, 50, root=tmp_path / "a")
    again = generate(2000, 50, root=tmp_path / "b")
    assert first["generated"] and again["generated"]
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert not generate(2000, 50, root=tmp_path / "a")["generated"]  # reused
    corpus, queries = corpus_paths(2000, 50, tmp_path / "a")
    lines = corpus.read_text().splitlines()
    assert len(lines) == 2000 and len(queries.read_text().splitlines()) == 50
    for line in lines[:50]:
        assert 10 <= len(json.loads(line)["text"].split()) <= 40
    generate(3000, 50, root=tmp_path / "a")  # a larger corpus starts with the smaller one
    assert corpus_paths(3000, 50, tmp_path / "a")[0].read_text().splitlines()[:2000] == lines
    for query in map(json.loads, queries.read_text().splitlines()):
        passage = set(json.loads(lines[int(query["doc"][1:])])["text"].split())
        assert set(query["text"].split()) <= passage


def test_tiny_model_is_deterministic(tmp_path):
    from bench.perf.tiny_model import build_tiny_model

    a, b = build_tiny_model(tmp_path / "a"), build_tiny_model(tmp_path / "b")
    assert _digests(a) == _digests(b) and "model.safetensors" in _digests(a)
    config = json.loads((a / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (2, 32, 30522)


def test_sections_and_skip():
    assert sections_skipped(None) == ("budget", "scale")  # opt-in: a tuning run, tens of minutes
    assert set(sections_skipped(("scale",))) == set(SECTIONS) - {"scale"}
    assert set(sections_skipped(("e2e",), ("mteb",))) == set(SECTIONS) - {"e2e", "warm", "beir", "st-bf16"}
    assert set(sections_skipped(None, ("train",))) == {"budget", "scale", "train"}
    assert PerfOptions().runs("encode") and not PerfOptions().runs("scale")
    with pytest.raises(ValueError, match="unknown perf section"):
        PerfOptions(sections=("nope",))


def test_cli_section_scale(monkeypatch):
    import bench.perf as perf

    seen = []
    monkeypatch.setattr(perf, "run_perf", lambda options, log=print: seen.append(options) or ({}, {}))
    parser = argparse.ArgumentParser()
    perf.add_perf_parser(parser.add_subparsers())
    args = parser.parse_args(["perf", "--section", "scale", "--scale-sizes", "2000", "5000", "--scale-processes",
                              "2"])
    assert args.func(args) == 0
    options = seen[0]
    assert options.runs("scale") and not any(options.runs(s) for s in SECTIONS if s != "scale")
    assert (options.scale_sizes, options.scale_processes) == ((2000, 5000), 2)
    args = parser.parse_args(["perf", "--skip", "train", "mteb"])
    args.func(args)
    assert seen[1].skip == ("budget", "scale", "train", "mteb") and seen[1].runs("e2e")


def test_headline_has_a_scale_block_only_when_the_section_ran():
    from bench.perf import headline

    report = {"machine": {"cores": 2, "cpu_model": "x"}, "options": {"reps": 1}, "created_at": "now"}
    assert "scale" not in headline(report)
