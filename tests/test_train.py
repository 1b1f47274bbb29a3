"""Training end to end on the tiny random model and a small LAReQA-format fixture."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bench.cli import main
from bench.data.pairs import Example
from bench.data.task import DataError
from bench.train.leakage import EvalSet, audit, check_leak, default_eval_data, normalise
from bench.train.run import TrainOptions, make_run_id, train
from bench.train.trainers import TRAINERS
from conftest import FIXTURE_CORPUS, TOKENIZER_TEXTS

LANGS = ("de", "en", "es")
SENTENCES = TOKENIZER_TEXTS + [d["text"] for d in FIXTURE_CORPUS]
TAGS = {"en": "", "de": " (de)", "es": " (es)", "zh": " (zh)", "ar": " (ar)"}


def write_lareqa_fixture(root: Path, dataset: str, langs=LANGS, paragraphs: int = 6, sentences: int = 5,
                         questions: int = 3, offset: int = 0, missing: tuple[tuple[str, str], ...] = ()) -> Path:
    """SQuAD-style files <root>/lareqa/<dataset>/<lang>.json with `sentences` and `sentence_breaks`: each
    paragraph holds `sentences` distinct sentences and `questions` questions answered by sentences 1..questions;
    a question id links its versions across languages; `missing` lists (qid, lang) versions left out."""
    folder = root / "lareqa" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        paras = []
        for p in range(paragraphs):
            texts = [SENTENCES[(offset + p * sentences + s) % len(SENTENCES)] + TAGS[lang] for s in range(sentences)]
            context, breaks = "", []
            for text in texts:
                start = len(context) + (1 if context else 0)
                context = f"{context} {text}" if context else text
                breaks.append([start, start + len(text)])
            qas = []
            for k in range(questions):
                qid = f"{dataset}-{p}-{k}"
                if (qid, lang) in missing:
                    continue
                start, _ = breaks[k + 1]
                answer = texts[k + 1].split()[0]
                words = " ".join(texts[k + 1].split()[1:4])
                qas.append({"id": qid, "question": f"Which {words} is meant?{TAGS[lang]}",
                            "answers": [{"answer_start": start, "text": answer}]})
            paras.append({"context": context, "sentences": texts, "sentence_breaks": breaks, "qas": qas})
        doc = {"version": "1.1", "data": [{"title": f"{dataset} fixture", "paragraphs": paras}]}
        (folder / f"{lang}.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    # MLQA-R-like: some questions lack a version; XQuAD-R-like: all versions, partly the same sentences.
    write_lareqa_fixture(root, "mlqa-r", missing=(("mlqa-r-0-0", "es"), ("mlqa-r-1-2", "de")))
    write_lareqa_fixture(root, "xquad-r", paragraphs=3, offset=20)
    tatoeba = root / "tatoeba"
    tatoeba.mkdir()
    (tatoeba / "tatoeba.deu-eng.deu").write_text("\n".join(f"{s} (de)" for s in TOKENIZER_TEXTS[:10]) + "\n")
    (tatoeba / "tatoeba.deu-eng.eng").write_text("\n".join(TOKENIZER_TEXTS[:10]) + "\n")
    monkeypatch.setenv("BENCH_DATA", str(root))
    return root


def options(tiny: Path, out: Path, **kwargs) -> TrainOptions:
    # One thread: the tiny model gains nothing from more, and a busy machine makes them much slower.
    values = dict(trainer="hybrid", base=str(tiny), train_data="mlqa-r", langs=LANGS, steps=4, batch_size=4,
                  max_seq_length=32, log_every=2, out_dir=str(out), threads=1)
    values.update(kwargs)
    return TrainOptions(**values)


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def weights(path: Path) -> bytes:
    return (path / "model.safetensors").read_bytes()


def quiet(*_):
    pass


# --------------------------------------------------------------------------------------------- end to end


def test_cli_train_then_run(tiny_model_dir, data_dir, tmp_path, capsys):
    out = tmp_path / "models"
    code = main(["train", "--trainer", "hybrid", "--base", str(tiny_model_dir), "--train-data", "mlqa-r",
                 "--langs", *LANGS, "--seed", "1", "--steps", "6", "--batch-size", "4", "--max-seq-length", "32",
                 "--log-every", "2", "--threads", "1", "--out-dir", str(out)])
    assert code == 0
    path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert path == out / "hybrid-a0.5-tiny-bert-mlqa-r-s1-6steps"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp folder left
    assert {"modules.json", "model.safetensors", "manifest.json"} <= {p.name for p in path.iterdir()}
    m = manifest(path)
    assert (m["trainer"], m["alpha"], m["seed"], m["base_model"]) == ("hybrid", 0.5, 1, "tiny-bert")
    assert m["options"]["lr"] == 3e-5 and m["options"]["weight_decay"] == 0.01
    assert m["langs"] == list(LANGS) and m["eval_data"] == ["xquad-r", "scifact", "nfcorpus", "arguana"]
    # Leakage: the XQuAD-R fixture shares sentences with the MLQA-R one; BEIR is absent from the fixture.
    assert m["leakage"]["sets"]["xquad-r"]["candidates"]["exact"] > 0
    assert set(m["leakage"]["unavailable"]) == {"scifact", "nfcorpus", "arguana"}
    assert sum(m["batches"]["counts"].values()) == 6 == len(m["batches"]["per_step"])
    assert set(m["batches"]["counts"]) <= {"retrieval:mono", "retrieval:cross"}
    assert [p["step"] for p in m["loss_curve"]] == [2, 4, 6]
    assert m["steps_per_second"] > 0 and m["wall_seconds"] >= m["train_seconds"] > 0
    assert len(m["data"]["fingerprint"]) == len(m["code_fingerprint"]) == 16
    assert m["data"]["prompts"] == {"query": "", "document": ""}
    assert m["versions"]["torch"] and m["heads"] is None

    # The runner loads the checkpoint and labels its rows with the manifest's trainer, alpha and seed.
    code = main(["run", "--suite", "xquad-r", "--model", str(path), "--langs", *LANGS, "--settings", "mono", "cross",
                 "--experiment", "trained"])
    assert code == 0
    from bench.results import ResultStore

    rows = ResultStore("trained").load()
    assert set(rows["trainer"]) == {"hybrid"} and set(rows["alpha"]) == {0.5} and set(rows["seed"]) == {1}
    assert set(rows["base_model"]) == {"tiny-bert"} and len(rows) == 9 * 2  # 3 mono + 6 cross, 2 metrics

    assert main(["list", "trainers"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in TRAINERS)


def test_mtl_trains_heads_and_saves_them_beside_the_encoder(tiny_model_dir, data_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    from bench.train.heads import load_language_classifier

    path = train(options(tiny_model_dir, tmp_path / "models", trainer="mtl", steps=3, tatoeba=("de",)), log=quiet)
    m = manifest(path)
    assert path.name == "mtl-tiny-bert-mlqa-r-s1-3steps" and m["alpha"] is None
    assert m["batches"]["counts"] == {"cross:cross": 3, "mono:mono": 3, "translation:cross": 3}
    assert set(m["loss_curve"][-1]) >= {"mono", "cross", "lid", "lid_accuracy", "translation", "loss"}
    assert m["data"]["tatoeba_langs"] == ["de"]
    assert m["data"]["parallel_pairs"] > 20  # parallel questions + 2 x 10 Tatoeba pairs
    config = json.loads((path / "heads" / "config.json").read_text())
    assert config["weights"]["reversal"] == 0.1 and config["language_classifier"]["languages"] == list(LANGS)
    assert load_language_classifier(path).languages == list(LANGS)
    # The runner's view: the encoder alone.
    model = SentenceTransformer(str(path), device="cpu")
    assert "heads" not in (path / "modules.json").read_text()
    assert model.encode(["a sentence"]).shape == (1, 32)


def test_training_applies_the_models_prompts(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    from bench.train.objectives import Objective
    from bench.train.samplers import Batch

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    model.prompts = {"query": "query: ", "document": "passage: "}
    seen = []
    original = model.preprocess

    def spy(texts, prompt=None, **kwargs):
        seen.append((prompt, list(texts)))
        return original(texts, prompt=prompt, **kwargs)

    model.preprocess = spy
    examples = [Example(f"question {i}", f"answer {i}", f"other {i}", "en", "en", f"q{i}") for i in range(3)]
    objective = Objective(model, examples)
    loss, _ = objective.retrieval_loss(Batch(0, "mono", ("en",), (0, 1, 2)))
    assert loss.requires_grad
    assert [prompt for prompt, _ in seen] == ["query: ", "passage: ", "passage: "]
    assert seen[1][1] == ["answer 0", "answer 1", "answer 2"]


# --------------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("trainer", ["hybrid", "mtl"])
def test_same_seed_same_batches_and_bitwise_equal_weights(tiny_model_dir, data_dir, tmp_path, trainer):
    out = tmp_path / "models"
    a = train(options(tiny_model_dir, out, trainer=trainer, run_id="a"), log=quiet)
    b = train(options(tiny_model_dir, out, trainer=trainer, run_id="b"), log=quiet)
    c = train(options(tiny_model_dir, out, trainer=trainer, run_id="c", seed=2), log=quiet)
    assert manifest(a)["batches"]["per_step"] == manifest(b)["batches"]["per_step"]
    assert weights(a) == weights(b)
    assert manifest(a)["loss_curve"] == manifest(b)["loss_curve"]
    assert manifest(a)["data"]["fingerprint"] == manifest(b)["data"]["fingerprint"]
    assert manifest(a)["batches"]["per_step"] != manifest(c)["batches"]["per_step"]
    assert weights(a) != weights(c)
    assert weights(a) != (tiny_model_dir / "model.safetensors").read_bytes()  # it did train
    if trainer == "mtl":
        heads = "heads/language_classifier.safetensors"
        assert (a / heads).read_bytes() == (b / heads).read_bytes() != (c / heads).read_bytes()


def test_ddp_on_cpu_with_torchrun(tiny_model_dir, data_dir, tmp_path):
    """Two gloo processes: gradients all-reduced, the same kinds on both ranks, rank 0 writes."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "models"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
         "--master-port", str(port), "-m", "bench", "train", "--trainer", "hybrid", "--base", str(tiny_model_dir),
         "--langs", *LANGS, "--steps", "4", "--batch-size", "2", "--max-seq-length", "32", "--out-dir", str(out)],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    path = out / "hybrid-a0.5-tiny-bert-mlqa-r-s1-4steps"
    m = manifest(path)
    assert m["world_size"] == 2 and m["batches"]["kinds_agree_across_ranks"] is True
    assert sorted(p.name for p in out.iterdir()) == [path.name]


# --------------------------------------------------------------------------------------------- leakage


def test_leakage_counts_exact_and_normalised_overlaps():
    examples = [
        Example("What is the capital of France?", "Paris is the capital.", "Lyon is big.", "en", "en", "1"),
        Example("who wrote  HAMLET", "Shakespeare wrote it.", None, "en", "en", "2"),
        Example("Unrelated question?", "Unrelated answer.", "Another sentence!", "en", "en", "3"),
    ]
    ev = EvalSet("set", questions=frozenset({"What is the capital of France?", "Who wrote Hamlet?"}),
                 candidates=frozenset({"Paris is the capital.", "lyon is big", "Another sentence", "Nothing."}))
    report = audit(examples, [ev], {"beir": "absent"})
    entry = report["sets"]["set"]
    assert report["train_texts"] == 8
    # questions: 1 exact ("What is the capital...?"), +1 after normalisation ("who wrote  HAMLET").
    assert entry["questions"] == {"n": 2, "exact": 1, "normalised": 2}
    # candidates: 1 exact ("Paris is the capital."), +2 after normalisation ("Lyon is big.", "Another sentence!").
    assert entry["candidates"] == {"n": 4, "exact": 1, "normalised": 3}
    assert entry["examples"] == 3 and report["unavailable"] == {"beir": "absent"}
    assert normalise("  Who   WROTE, “Hamlet”?! ") == "who wrote hamlet"


def test_training_on_the_evaluation_set_is_refused(tiny_model_dir, data_dir, tmp_path, capsys):
    assert default_eval_data("mlqa-r") == ("xquad-r", "scifact", "nfcorpus", "arguana")
    with pytest.raises(ValueError, match="training on mlqa-r and evaluating on mlqa-r.*--allow-leak"):
        check_leak("mlqa-r", ("mlqa-r", "scifact"), allow_leak=False)
    check_leak("mlqa-r", ("mlqa-r",), allow_leak=True)
    out = tmp_path / "models"
    args = ["train", "--trainer", "xy", "--base", str(tiny_model_dir), "--langs", *LANGS, "--steps", "2",
            "--batch-size", "4", "--threads", "1", "--out-dir", str(out), "--eval-data", "mlqa-r", "xquad-r"]
    assert main(args) == 2
    assert "--allow-leak" in capsys.readouterr().err and not out.exists()
    assert main(args + ["--allow-leak"]) == 0
    m = manifest(out / "xy-tiny-bert-mlqa-r-s1-2steps")
    # Every training text is in the evaluation set it was drawn from.
    assert m["leakage"]["sets"]["mlqa-r"]["candidates"]["exact"] > 0
    assert m["options"]["allow_leak"] is True


# --------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("extra, message", [
    (["--trainer", "nope"], "unknown trainer 'nope'; registered: xx-mono, xy, hybrid, x-x, en-en, mtl"),
    (["--base", "no-such-model"], "unknown model 'no-such-model'; registered: bm25, minilm-l6, me5-small"),
    (["--base", "bm25"], "cannot train 'bm25'"),
    (["--alpha", "1.5"], r"alpha must be in [0, 1]"),
    (["--trainer", "xy", "--alpha", "0.3"], "--alpha applies to hybrid only"),
    (["--trainer", "xy", "--tatoeba"], "does not use Tatoeba pairs; those that do: mtl"),
    (["--batch-size", "500"], "pairs, fewer than one batch of 500"),
    (["--trainer", "en-en", "--langs", "de", "es"], "en-en sampler needs English"),
    (["--trainer", "xy", "--langs", "en"], "language 'en' has no cross-lingual pairs for the xy sampler"),
    (["--train-data", "squad"], "unknown training data 'squad'; known: xquad-r, mlqa-r"),
    (["--langs", "fr"], "unknown language(s) fr for mlqa-r"),
    (["--steps", "0"], "--steps must be at least 1"),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(tiny_model_dir, data_dir, tmp_path, capsys, extra, message):
    out = tmp_path / "models"
    args = {"--trainer": "hybrid", "--base": str(tiny_model_dir), "--steps": "2", "--batch-size": "4",
            "--out-dir": str(out), "--langs": None}
    argv = ["train"]
    for key, value in args.items():
        if key not in extra and value is not None:
            argv += [key, value]
    if "--langs" not in extra:
        argv += ["--langs", *LANGS]
    assert main(argv + extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_an_occupied_output_folder_is_refused_unless_force(tiny_model_dir, data_dir, tmp_path):
    out = tmp_path / "models"
    first = options(tiny_model_dir, out, steps=2)
    target = out / make_run_id("hybrid", str(tiny_model_dir), "mlqa-r", 1, 2, 0.5)
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files that are not a finished run; pass --force"):
        train(first, log=quiet)
    assert (target / "notes.txt").read_text() == "mine"
    assert train(replace(first, force=True), log=quiet) == target
    assert not (target / "notes.txt").exists()
    stamp = (target / "manifest.json").stat().st_mtime_ns
    # The same run again: already there, kept as is.
    messages = []
    assert train(first, log=messages.append) == target
    assert "already holds this run" in messages[-1] and (target / "manifest.json").stat().st_mtime_ns == stamp
    # A different run under the same name: refused, then replaced with --force.
    other = replace(first, lr=1e-4)
    with pytest.raises(ValueError, match="already holds a different run"):
        train(other, log=quiet)
    train(replace(other, force=True), log=quiet)
    assert manifest(target)["options"]["lr"] == 1e-4
    assert sorted(p.name for p in out.iterdir()) == [target.name]


def test_a_failure_leaves_no_half_written_checkpoint(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "models"

    def broken_save(self, path, *args, **kwargs):
        (Path(path) / "model.safetensors").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(SentenceTransformer, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        train(options(tiny_model_dir, out, steps=2), log=quiet)
    assert list(out.iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setenv("BENCH_DATA", str(data_dir))

    # A failure during the steps: nothing is written at all.
    working = TRAINERS["xy"].objective

    def failing(objective, batches):
        if next(iter(batches.values())).step == 1:
            raise RuntimeError("boom")
        return working(objective, batches)

    monkeypatch.setitem(TRAINERS, "xy", replace(TRAINERS["xy"], objective=failing))
    with pytest.raises(RuntimeError, match="boom"):
        train(options(tiny_model_dir, out, trainer="xy", steps=3), log=quiet)
    assert list(out.iterdir()) == []


def test_the_data_check_runs_before_the_model_is_loaded(data_dir, tmp_path):
    # A missing training file is named, and nothing is written.
    with pytest.raises(DataError, match=r"missing file .*zh\.json"):
        train(TrainOptions(trainer="xy", base="me5-small", langs=("en", "zh"), out_dir=str(tmp_path / "m")), log=quiet)
    assert not (tmp_path / "m").exists()
