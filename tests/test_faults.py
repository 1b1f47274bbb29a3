"""Fault injection (issue 13): signals, path escapes, empty and damaged inputs, damaged stored results, stale
temp files, flags that do not apply. Each case once failed (a hang, a traceback, a wrong number or a write
outside its folder); these tests keep them from returning."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.paths import PROJECT_ROOT

# ------------------------------------------------------------------------------------------------ signals

TATOEBA_LANGS = {"de": "deu", "fr": "fra", "es": "spa", "it": "ita", "nl": "nld", "pt": "por"}


def write_tatoeba(root: Path, lines: int = 3000, seed: int = 0) -> Path:
    """Synthetic line-aligned Tatoeba pairs: enough text that a BM25 run lasts well past the first signal."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    folder = root / "tatoeba"
    folder.mkdir(parents=True, exist_ok=True)
    for code in TATOEBA_LANGS.values():
        for side in (code, "eng"):
            text = "\n".join(" ".join(rng.choices(words, k=12)) for _ in range(lines)) + "\n"
            (folder / f"tatoeba.{code}-eng.{side}").write_text(text, encoding="utf-8")
    return root


def bench_process(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=PROJECT_ROOT,
                            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_line(stream, needle: str, timeout: float) -> list[str]:
    """Lines of `stream` read until one contains `needle` (or the timeout passes); the rest is drained in the
    background so the child never blocks on a full pipe."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in stream:
            seen.append(line)
            if needle in line:
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    found.wait(timeout)
    return seen


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_ends_a_bm25_run_within_seconds(tmp_path, signum):
    data = write_tatoeba(tmp_path / "data")
    env = {"BENCH_DATA": str(data), "BENCH_RESULTS": str(tmp_path / "results"), "BENCH_CACHE": str(tmp_path / "c")}
    proc = bench_process(["run", "--suite", "tatoeba", "--model", "bm25", "--langs", *TATOEBA_LANGS,
                          "--experiment", "sig"], env)
    try:
        lines = wait_for_line(proc.stdout, "bm25: tatoeba/", timeout=60)
        assert proc.poll() is None, "".join(lines)
        time.sleep(0.5)  # inside the JVM's analysis of the first task
        sent = time.monotonic()
        proc.send_signal(signum)
        status = proc.wait(timeout=15)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.2)
    text = "".join(lines)
    assert status == 128 + signum, text
    assert elapsed < 8
    assert f"interrupted ({signal.Signals(signum).name})" in text
    assert "to resume, run `python -m bench run --suite tatoeba" in text
    assert not list(PROJECT_ROOT.glob("hs_err_pid*.log"))  # the JVM did not crash on the way out


def test_ctrl_c_in_training_finishes_the_step_and_saves_its_state(tmp_path, tiny_model_dir, data_dir):
    out = tmp_path / "models"
    proc = bench_process(["train", "--trainer", "hybrid", "--base", str(tiny_model_dir), "--langs", "de", "en", "es",
                          "--steps", "100000", "--batch-size", "4", "--max-seq-length", "32", "--threads", "1",
                          "--out-dir", str(out), "--run-id", "sig"], {})
    try:
        lines = wait_for_line(proc.stdout, "train sig:", timeout=120)
        assert proc.poll() is None, "".join(lines)
        time.sleep(1.0)  # some steps in
        proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.2)
    text = "".join(lines)
    assert status == 130, text
    assert "SIGINT: finishing this training step and saving its state" in text
    assert "training state saved at step" in text and "to resume, run `python -m bench train" in text
    assert (out / "sig.resume" / "state.pt").is_file() and not (out / "sig").exists()


def test_interrupted_carries_the_signal_status():
    from bench import interrupts

    with pytest.raises(interrupts.Interrupted) as caught:
        with interrupts.handled(["run"]):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
    assert caught.value.status == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored after the block


# ---------------------------------------------------------------------------------------- path escapes

BAD_NAMES = ["..", ".", "/tmp/elsewhere", "a/b", "..\\x", ""]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_experiment_names_cannot_escape_the_results_folder(tmp_path, capsys, name):
    assert main(["run", "--suite", "beir", "--model", "bm25", "--experiment", name]) == 2
    assert "is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("command", [["show"], ["export"], ["report"]])
def test_read_commands_refuse_escaping_names(capsys, command):
    assert main([*command, ".."]) == 2
    assert "is not allowed" in capsys.readouterr().err


def test_report_never_writes_at_the_project_root(tmp_path, monkeypatch, capsys):
    readme = (PROJECT_ROOT / "README.md").read_bytes()
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "proj" / "results"))
    (tmp_path / "proj" / "results").mkdir(parents=True)
    assert main(["report", ".."]) == 2
    assert main(["report", "x", "--out", str(PROJECT_ROOT)]) == 2
    assert (PROJECT_ROOT / "README.md").read_bytes() == readme
    from bench.preflight import report_folder

    assert report_folder("exp", None) == (tmp_path / "proj" / "reports" / "exp").resolve()


@pytest.mark.parametrize("run_id", [".", "..", "../x", "/tmp/abs-run"])
def test_train_run_ids_stay_inside_the_models_folder(tmp_path, capsys, run_id):
    models = tmp_path / "models"
    (models / "kept").mkdir(parents=True)
    assert main(["train", "--trainer", "hybrid", "--base", "minilm-l6", "--out-dir", str(models),
                 "--run-id", run_id, "--force"]) == 2
    assert "is not allowed" in capsys.readouterr().err
    assert (models / "kept").is_dir()


def test_train_refuses_a_file_as_models_root_and_unknown_eval_sets(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["train", "--trainer", "hybrid", "--base", "minilm-l6", "--out-dir", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["train", "--trainer", "hybrid", "--base", "minilm-l6", "--out-dir", str(tmp_path / "m"),
                 "--eval-data", "nosuch"]) == 2
    assert "unknown --eval-data nosuch" in capsys.readouterr().err


def test_experiment_refuses_a_file_as_models_root(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["experiment", "smoke", "--models-dir", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_experiment_file_names_are_checked(tmp_path):
    from bench.experiment import ExperimentError, load_experiment

    path = tmp_path / "bad.yaml"
    path.write_text("name: ..\nbase_models: [minilm-l6]\nstages: [{trainers: [hybrid], seeds: [1], "
                    "train_data: [mlqa-r]}]\n")
    with pytest.raises(ExperimentError, match="is not allowed"):
        load_experiment(str(path))


# -------------------------------------------------------------------------------- flags and names lists


@pytest.mark.parametrize("args, flag", [
    (["--suite", "xquad-r", "--split", "dev"], "--split"),
    (["--suite", "tatoeba", "--settings", "mono"], "--settings"),
    (["--suite", "tatoeba", "--datasets", "scifact"], "--datasets"),
    (["--suite", "beir", "--langs", "de"], "--langs"),
    (["--suite", "xquad-r", "--k", "10"], "--k"),
    (["--suite", "beir", "--model", "bm25", "--max-seq-length", "128"], "--max-seq-length"),
])
def test_flags_that_do_not_apply_are_errors(capsys, args, flag):
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err


@pytest.fixture
def data_env(beir_fixture_dir, monkeypatch):
    monkeypatch.setenv("BENCH_DATA", str(beir_fixture_dir.parent.parent))
    return beir_fixture_dir


def run_tiny(model: Path, *extra: str) -> int:
    return main(["run", "--suite", "beir", "--datasets", "scifact", "--model", str(model), "--experiment", "f",
                 "--no-cache", *extra])


def test_duplicate_names_run_once(data_env, tiny_model_dir, capsys):
    assert main(["run", "--suite", "beir", "--datasets", "scifact", "scifact", "--model", str(tiny_model_dir),
                 str(tiny_model_dir), "--experiment", "f", "--no-cache"]) == 0
    out = capsys.readouterr()
    assert "--datasets names scifact more than once" in out.err and "--model names" in out.err
    from bench.results import ResultStore

    assert len(ResultStore("f").load()) == 4  # one row per metric, not two


def test_k_below_the_deepest_cutoff_is_refused(data_env, tiny_model_dir, capsys):
    assert run_tiny(tiny_model_dir, "--k", "2") == 2
    assert "below scifact's deepest metric cut-off" in capsys.readouterr().err


def test_unsupported_bm25_language_fails_before_any_task(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "data" / "tatoeba"
    folder.mkdir(parents=True)
    for side in ("afr", "eng"):
        (folder / f"tatoeba.afr-eng.{side}").write_text("een twee\ndrie vier\n")
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    assert main(["run", "--suite", "tatoeba", "--model", "bm25", "--langs", "af", "--experiment", "t"]) == 2
    assert "unsupported BM25 language 'af'" in capsys.readouterr().err
    assert not (tmp_path / "results" / "t").exists()


# ---------------------------------------------------------------------------------- empty and bad data


def test_empty_and_degenerate_beir_inputs_name_their_file(beir_variant, fixture_data):
    from bench.data.beir import load_beir_folder
    from bench.data.task import DataError

    cases = [
        (beir_variant(corpus=[]), r"corpus\.jsonl is empty"),
        (beir_variant(qrels={"test": "query-id\tcorpus-id\tscore\n"}), r"test\.tsv holds no judgements"),
        (beir_variant(qrels={"test": ""}), r"test\.tsv holds no judgements"),
        (beir_variant(corpus=[{"_id": "d", "title": 3, "text": "x"}]), r"corpus\.jsonl:1: title is a int"),
        (beir_variant(remove=("corpus.jsonl",)), r"missing file .*corpus\.jsonl"),
    ]
    for folder, message in cases:
        with pytest.raises(DataError, match=message):
            load_beir_folder(folder, "test")
    bad = beir_variant()
    (bad / "queries.jsonl").write_bytes(b'{"_id": "q1", "text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"queries\.jsonl:1: not UTF-8"):
        load_beir_folder(bad, "test")


def test_a_query_without_text_is_a_counted_warning(beir_variant, fixture_data):
    from bench.data.beir import load_beir_folder

    queries = [{"_id": q, "text": None if q == "q1" else t} for q, t in fixture_data["queries"].items()]
    task = load_beir_folder(beir_variant(queries=queries), "test")
    assert task.queries["q1"] == ""
    assert any("1 judged queries have no text" in w for w in task.warnings)


def test_empty_run_input_exits_2_without_traceback(tmp_path, monkeypatch, capsys):
    from conftest import write_beir_folder

    write_beir_folder(tmp_path / "data" / "beir" / "scifact", qrels={"test": "query-id\tcorpus-id\tscore\n"})
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    assert main(["run", "--suite", "beir", "--datasets", "scifact", "--model", "bm25"]) == 2
    err = capsys.readouterr().err
    assert "test.tsv holds no judgements" in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_empty_miracl_corpus_and_tatoeba_side(tmp_path):
    import gzip

    from bench.data.miracl import load_corpus
    from bench.data.tatoeba import load_pairs
    from bench.data.task import DataError

    empty = tmp_path / "docs-0.jsonl.gz"
    with gzip.open(empty, "wt") as f:
        f.write("")
    with pytest.raises(DataError, match="docs-0.jsonl.gz: no documents"):
        load_corpus([empty])
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    (folder / "tatoeba.deu-eng.deu").write_text("")
    (folder / "tatoeba.deu-eng.eng").write_text("")
    with pytest.raises(DataError, match=r"tatoeba\.deu-eng\.deu is empty"):
        load_pairs("de", tmp_path)


def test_a_task_without_documents_or_judged_queries_is_refused():
    from bench.data.task import DataError, RetrievalTask

    with pytest.raises(DataError, match="no documents"):
        RetrievalTask("beir", "x", "test", corpus={}, queries={"q": "t"}, qrels={"q": {"d": 1}})
    with pytest.raises(DataError, match="no judged queries"):
        RetrievalTask("beir", "x", "test", corpus={"d": {"title": "", "text": "t"}}, queries={"q": "t"}, qrels={})


# ------------------------------------------------------------------------------ damaged stored results


def stored_csv(tiny_model_dir: Path) -> Path:
    from bench.results import ResultStore

    paths = sorted(ResultStore("f").folder.rglob("*.csv"))
    assert len(paths) == 1
    return paths[0]


@pytest.mark.parametrize("damage, named", [
    (lambda text: text[: len(text) // 2], "expected a finite number"),
    (lambda text: text.splitlines()[0] + "\n", "a header without scores"),
    (lambda text: text.replace(text.splitlines()[1].split(",")[14], "oops", 1), "'oops'"),
])
def test_damaged_scores_are_named_skipped_and_recomputed(data_env, tiny_model_dir, capsys, damage, named):
    assert run_tiny(tiny_model_dir) == 0
    path = stored_csv(tiny_model_dir)
    path.write_text(damage(path.read_text()))
    capsys.readouterr()
    assert main(["show", "f"]) == 2  # the only result is damaged: nothing to show
    err = capsys.readouterr().err
    assert str(path) in err and named in err and "Traceback" not in err
    assert run_tiny(tiny_model_dir) == 0
    assert "computing it again" in capsys.readouterr().err
    assert main(["show", "f"]) == 0


def test_stray_csv_and_damaged_record_are_named(data_env, tiny_model_dir, capsys):
    from bench.results import ResultStore

    assert run_tiny(tiny_model_dir) == 0
    stray = ResultStore("f").folder / "notes.csv"
    stray.write_text("a,b\n1,2\n")
    record = next(ResultStore("f").folder.rglob("*.record.json"))
    record.write_text("{\"trunc")
    capsys.readouterr()
    assert main(["show", "f", "--timings"]) == 0
    assert main(["export", "f"]) == 0
    err = capsys.readouterr().err
    assert "notes.csv: not a results table" in err and f"{record}: unreadable as JSON" in err


def test_empty_experiment_folder_is_a_message(tmp_path, capsys):
    (tmp_path / "results" / "empty").mkdir(parents=True)
    for command in (["show", "empty", "--timings"], ["report", "empty"], ["export", "empty"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "no" in err and "results" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------- results by inputs


def test_changed_data_and_depth_are_recomputed_and_shown(data_env, tiny_model_dir, capsys):
    assert run_tiny(tiny_model_dir) == 0
    corpus = data_env / "corpus.jsonl"
    corpus.write_text(corpus.read_text().replace("Caffeine", "Theine"))
    capsys.readouterr()
    assert main(["show", "f"]) == 0
    assert "beir/scifact/corpus.jsonl" in capsys.readouterr().err
    assert run_tiny(tiny_model_dir) == 0
    assert "recomputing the stored result: data changed (beir/scifact/corpus.jsonl)" in capsys.readouterr().out
    assert run_tiny(tiny_model_dir, "--k", "200") == 0
    assert "k 1000 -> 200" in capsys.readouterr().out
    assert run_tiny(tiny_model_dir, "--k", "200") == 0
    assert "already done" in capsys.readouterr().out


def test_results_from_before_fingerprints_are_migrated_not_recomputed(data_env, tiny_model_dir, capsys):
    import json

    from bench.fingerprint import migrate
    from bench.results import ResultStore

    assert run_tiny(tiny_model_dir) == 0
    path = next(ResultStore("f").folder.rglob("*.record.json"))
    record = json.loads(path.read_text())
    wanted = record.pop("inputs")
    path.write_text(json.dumps(record))
    assert migrate(ResultStore("f")) == (1, 0)
    migrated = json.loads(path.read_text())
    assert migrated["inputs"] == wanted and migrated["inputs_migrated"]
    path.write_text(json.dumps(record))  # and lazily, by a re-run
    capsys.readouterr()
    assert run_tiny(tiny_model_dir) == 0
    assert "already done" in capsys.readouterr().out
    assert json.loads(path.read_text())["inputs"] == wanted


# ------------------------------------------------------------------------------ temp files and writers


def test_stale_temp_files_are_swept_by_one_rule(tmp_path):
    from bench.safety import STALE_AFTER_S, remove_stale_temps

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    names = {f".task.csv.pid{dead}.x1.tmp": True, f".task.csv.pid{os.getpid()}.x2.tmp": False,
             ".rkw.abc123.tmp": True, ".fresh.abc.tmp": False, "task.csv": False, ".hidden": False}
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / f".idx.pid{dead}.build").mkdir()
    old = time.time() - STALE_AFTER_S - 10
    os.utime(tmp_path / ".rkw.abc123.tmp", (old, old))
    removed = {p.name for p in remove_stale_temps(tmp_path)}
    assert removed == {n for n, stale in names.items() if stale} | {f".idx.pid{dead}.build"}


def test_concurrent_writers_never_show_a_torn_file(tmp_path):
    from bench.safety import atomic_write

    path = tmp_path / "result.csv"
    texts = [str(i) * 200_000 for i in range(4)]
    atomic_write(path, lambda p: p.write_text(texts[0]))
    stop = threading.Event()

    def writer(text: str) -> None:
        while not stop.is_set():
            atomic_write(path, lambda p: p.write_text(text))

    threads = [threading.Thread(target=writer, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    try:
        for _ in range(200):
            assert path.read_text() in texts
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not [p for p in tmp_path.iterdir() if p.name != "result.csv"]


def test_truncated_model_weights_are_a_message(data_env, tiny_model_dir, tmp_path, capsys):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_model_dir, damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert run_tiny(damaged) == 2
    err = capsys.readouterr().err
    assert "could not load model damaged@" in err and "Traceback" not in err


def test_force_does_not_read_the_embedding_cache(data_env, tiny_model_dir):
    import json

    from bench.results import ResultStore

    args = ["run", "--suite", "beir", "--datasets", "scifact", "--model", str(tiny_model_dir), "--experiment", "f"]
    assert main(args) == 0
    assert main([*args, "--force"]) == 0
    record = json.loads(next(ResultStore("f").folder.rglob("*.record.json")).read_text())
    assert record["cached_texts"] == 0 and record["embedding_cache"] is None


def test_check_refuses_escaping_experiment_names(capsys):
    assert main(["check", "--experiment", "../x", "--from-results", "smoke"]) == 2
    assert "is not allowed" in capsys.readouterr().err


def test_watchdog_ends_a_process_stuck_in_a_jni_call(tmp_path):
    """A main thread inside one long JVM call runs no Python signal handler: the watchdog ends the process."""
    script = ("import sys\nfrom bench import interrupts\nfrom bench.retrieval.bm25.jvm import start_jvm\nstart_jvm()\n"
              "from jnius import autoclass\nwith interrupts.handled(['run']):\n    print('sleeping', flush=True)\n"
              "    autoclass('java.lang.Thread').sleep(60000)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        lines = wait_for_line(proc.stdout, "sleeping", timeout=60)
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=20)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.2)
    assert status == 130 and elapsed < 8
    assert "stopped inside a native call" in "".join(lines)



# ------------------------------------------------------------------------------------- embedding cache


def cached_segment(tmp_path):
    import numpy as np

    from bench.retrieval.dense.cache import EmbeddingCache, cache_key

    keys = [cache_key("query: ", f"text {i}") for i in range(4)]
    vectors = np.arange(4 * 8, dtype=np.float32).reshape(4, 8) + 1
    cache = EmbeddingCache(tmp_path, "model", 128, 8)
    segment = cache.put(keys, vectors)
    return cache.folder, segment, keys, vectors


@pytest.mark.parametrize("damage", ["zeroed payload", "reordered keys"])
def test_damaged_cache_segments_are_dropped(tmp_path, caplog, damage):
    import numpy as np

    from bench.retrieval.dense.cache import EmbeddingCache

    folder, segment, keys, vectors = cached_segment(tmp_path)
    npy, key_file = folder / f"{segment}.npy", folder / f"{segment}.keys"
    if damage == "zeroed payload":
        data = npy.read_bytes()
        npy.write_bytes(data[:128] + bytes(len(data) - 128))  # the .npy header is 128 bytes
    else:
        data = key_file.read_bytes()
        key_file.write_bytes(data[32:64] + data[:32] + data[64:])
    fresh = EmbeddingCache(tmp_path, "model", 128, 8)
    assert fresh.get(keys) == {}
    assert "deleted damaged segment" in caplog.text
    assert not npy.exists() and not key_file.exists()
    good = EmbeddingCache(tmp_path, "model", 128, 8)
    good.put(keys, vectors)
    assert np.array_equal(EmbeddingCache(tmp_path, "model", 128, 8).get(keys)[keys[2]], vectors[2])
