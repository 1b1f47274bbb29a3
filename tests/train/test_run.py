"""Training end to end on the tiny random model and a small LAReQA-format fixture."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bench.cli import main
from bench.data.pairs import Example
from bench.data.task import DataError
from bench.train.leakage import EvalSet, audit, check_leak, default_eval_data, normalise
from bench.precision import available as available_precisions
from bench.train.run import TrainOptions, make_run_id, train
from bench.train.trainers import TRAINERS
from support.training import LANGS, manifest, options, quiet, weights















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
    times = [seconds for _, seconds in m["timeline"]]
    assert [step for step, _ in m["timeline"]] == [2, 4, 6] and 0 < times[0] <= times[1] <= times[2]
    assert times[2] <= m["train_seconds"] and "seconds" not in m["loss_curve"][0]  # the curve stays deterministic
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
    # Trained at 32 tokens, scored at the base model's own limit (128 for the tiny model): the cut is a
    # training option, kept in the manifest, not in the saved model.
    assert m["max_seq_length"] == {"training": 32, "saved": 128}
    # sentence-transformers 6 keeps the limit in the tokenizer's config (older versions: sentence_bert_config.json).
    assert json.loads((path / "tokenizer_config.json").read_text())["model_max_length"] == 128
    assert "max_seq_length" not in json.loads((path / "sentence_bert_config.json").read_text())
    records = [json.loads(p.read_text()) for p in ResultStore("trained").folder.rglob("*.record.json")]
    assert records and {r["model_max_seq_length"] for r in records} == {128}

    assert main(["list", "trainers"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in TRAINERS)


def test_mtl_trains_heads_and_saves_them_beside_the_encoder(tiny_model_dir, data_dir, tmp_path):
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    # Both heads on, whatever the defaults (chosen by the sweep in results/mtl-sweep/).
    path = train(options(tiny_model_dir, tmp_path / "models", trainer="mtl", steps=3, batch_size=7, w_lid=1.0,
                         reversal=0.1, w_translation=0.5, tatoeba=("de",)), log=quiet)
    m = manifest(path)
    assert path.name == "mtl-tiny-bert-mlqa-r-s1-3steps" and m["alpha"] is None
    assert m["batches"]["counts"] == {"cross:cross": 3, "mono:mono": 3, "translation:cross": 3}
    # Fair by default: the parts share one batch of --batch-size pairs, as the single-batch trainers.
    assert m["batches"]["pairs_per_step"] == {"mono": 3, "cross": 2, "translation": 2}
    assert m["options"]["trainer_revision"] == 2
    assert set(m["loss_curve"][-1]) >= {"mono", "cross", "lid", "lid_accuracy", "translation", "loss"}
    assert m["data"]["tatoeba_langs"] == ["de"]
    assert m["data"]["parallel_pairs"] > 20  # parallel questions + 2 x 10 Tatoeba pairs
    config = json.loads((path / "heads" / "config.json").read_text())
    assert config["weights"]["reversal"] == 0.1 and config["language_classifier"]["languages"] == list(LANGS)
    weights = load_file(str(path / "heads" / config["language_classifier"]["weights"]))
    assert weights["linear.weight"].shape == (len(LANGS), 32)
    # The runner's view: the encoder alone.
    model = SentenceTransformer(str(path), device="cpu")
    assert "heads" not in (path / "modules.json").read_text()
    assert model.encode(["a sentence"]).shape == (1, 32)


def test_mtl_3batch_keeps_a_whole_batch_per_part(tiny_model_dir, data_dir, tmp_path):
    path = train(options(tiny_model_dir, tmp_path / "models", trainer="mtl-3batch", steps=2, w_translation=0.5),
                 log=quiet)
    m = manifest(path)
    assert m["trainer"] == "mtl-3batch" and path.name == "mtl-3batch-tiny-bert-mlqa-r-s1-2steps"
    assert m["batches"]["pairs_per_step"] == {"mono": 4, "cross": 4, "translation": 4}
    assert "trainer_revision" not in m["options"]


def test_mtl_parts_share_the_batch_and_need_two_pairs_each():
    from bench.train.trainers import mtl_parts

    assert mtl_parts(32, translation=True) == {"mono": 11, "cross": 11, "translation": 10}
    assert mtl_parts(32, translation=False) == {"mono": 16, "cross": 16}
    with pytest.raises(ValueError, match="--batch-size 5 leaves fewer than 2 pairs per part.*at least 6"):
        mtl_parts(5, translation=True)


def test_runs_recorded_before_an_option_existed_still_match(tiny_model_dir, data_dir, tmp_path):
    """A manifest written before precision, dev_fraction and the mtl revision existed: a hybrid run matches
    (its heads' weights never mattered), an mtl run does not (it was the three-batch form)."""
    from bench.train.options import identity, same_run

    hybrid = options(tiny_model_dir, tmp_path, steps=2)
    old = {k: v for k, v in identity(hybrid, 0.5).items()}
    old.update(w_mono=1.0, w_cross=1.0, w_lid=1.0, w_translation=0.5, reversal=0.1, head_lr=1e-3)
    assert same_run(old, identity(hybrid, 0.5))
    assert not same_run(old, identity(replace(hybrid, precision="bf16"), 0.5))
    mtl = options(tiny_model_dir, tmp_path, trainer="mtl", steps=2)
    old_mtl = {k: v for k, v in identity(mtl, None).items() if k != "trainer_revision"}
    assert not same_run(old_mtl, identity(mtl, None))


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
    # mtl: both heads on, its three parts sharing the batch (two pairs each).
    extra = dict(batch_size=6, w_lid=1.0, w_translation=0.5) if trainer == "mtl" else {}
    a = train(options(tiny_model_dir, out, trainer=trainer, run_id="a", **extra), log=quiet)
    b = train(options(tiny_model_dir, out, trainer=trainer, run_id="b", **extra), log=quiet)
    c = train(options(tiny_model_dir, out, trainer=trainer, run_id="c", seed=2, **extra), log=quiet)
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


needs_bf16 = pytest.mark.skipif("bf16" not in available_precisions("cpu"),
                                reason="this CPU has no native bf16 (avx512_bf16 / amx_bf16)")


@needs_bf16
@pytest.mark.parametrize("trainer", ["hybrid", "mtl"])
def test_bf16_training_is_deterministic_recorded_and_close_to_fp32(tiny_model_dir, data_dir, tmp_path, trainer):
    out = tmp_path / "models"
    bf16 = options(tiny_model_dir, out, trainer=trainer, precision="bf16", steps=6, batch_size=6, log_every=1)
    a = train(bf16, log=quiet)
    b = train(replace(bf16, run_id="again"), log=quiet)
    fp32 = train(replace(bf16, precision="fp32"), log=quiet)
    assert a.name.endswith("-6steps-bf16") and fp32.name.endswith("-6steps")
    assert manifest(a)["precision"] == "bf16" and manifest(a)["options"]["precision"] == "bf16"
    assert manifest(fp32)["precision"] == "fp32" and "precision" not in manifest(fp32)["options"]
    # Deterministic on CPU for a fixed seed, as fp32 is: bitwise-equal weights and loss curves.
    assert weights(a) == weights(b) and manifest(a)["loss_curve"] == manifest(b)["loss_curve"]
    # Master weights stay fp32 (the checkpoint is saved in fp32) and the run stays close to the fp32 one.
    from safetensors import safe_open

    with safe_open(str(a / "model.safetensors"), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float32"}
    losses = {run: [p["loss"] for p in manifest(run)["loss_curve"]] for run in (a, fp32)}
    assert max(abs(x - y) for x, y in zip(losses[a], losses[fp32])) < 0.02
    assert weights(a) != weights(fp32)  # it did run in bf16


def test_embeddings_feed_the_loss_in_fp32_under_bf16(tiny_model_dir):
    import torch
    from sentence_transformers import SentenceTransformer

    from bench.train.objectives import Objective

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    objective = Objective(model, [], precision="bf16")
    seen = {}
    linear = next(m for m in next(model.children()).modules() if isinstance(m, torch.nn.Linear))
    hook = linear.register_forward_hook(lambda m, i, out: seen.update(dtype=out.dtype))
    try:
        emb = objective.embed(["a sentence", "another sentence"], "")
    finally:
        hook.remove()
    if "bf16" in available_precisions("cpu"):
        assert seen["dtype"] == torch.bfloat16  # the encoder's matmuls ran under autocast ...
    assert emb.dtype == torch.float32  # ... the embeddings that feed the similarity and the losses are fp32


@pytest.mark.parametrize("flags, precision, message", [
    (set(), "bf16", "lacks avx512_bf16 and amx_bf16"),
    ({"avx512_bf16"}, "fp16", "fp16 is not offered"),
])
def test_an_unsupported_precision_is_refused_before_any_work(tiny_model_dir, data_dir, tmp_path, capsys, monkeypatch,
                                                             flags, precision, message):
    import bench.precision

    monkeypatch.setattr(bench.precision, "cpu_flags", lambda: flags)
    out = tmp_path / "models"
    assert main(["train", "--trainer", "hybrid", "--base", str(tiny_model_dir), "--langs", *LANGS, "--steps", "2",
                 "--batch-size", "4", "--device", "cpu", "--out-dir", str(out), "--precision", precision]) == 2
    assert message in capsys.readouterr().err and not out.exists()


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
    (["--trainer", "nope"], "unknown trainer 'nope'; registered: xx-mono, xy, hybrid, x-x, en-en, mtl, mtl-3batch"),
    (["--base", "no-such-model"], "unknown model 'no-such-model'; registered: bm25, minilm-l6, me5-small"),
    (["--base", "bm25"], "cannot train 'bm25'"),
    (["--alpha", "1.5"], r"alpha must be in [0, 1]"),
    (["--trainer", "xy", "--alpha", "0.3"], "--alpha applies to hybrid only"),
    (["--trainer", "xy", "--tatoeba"], "does not use Tatoeba pairs; those that do: mtl, mtl-3batch"),
    (["--dev-fraction", "1.5"], "--dev-fraction must be in (0, 1)"),
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
    from bench.train.objectives import OBJECTIVES

    working = OBJECTIVES["retrieval"]

    def failing(objective, batches):
        if next(iter(batches.values())).step == 1:
            raise RuntimeError("boom")
        return working(objective, batches)

    monkeypatch.setitem(OBJECTIVES, "failing", failing)
    monkeypatch.setitem(TRAINERS, "xy", replace(TRAINERS["xy"], objective="failing"))
    with pytest.raises(RuntimeError, match="boom"):
        train(options(tiny_model_dir, out, trainer="xy", steps=3), log=quiet)
    assert list(out.iterdir()) == []


def test_the_data_check_runs_before_the_model_is_loaded(data_dir, tmp_path):
    # A missing training file is named, and nothing is written.
    with pytest.raises(DataError, match=r"missing file .*zh\.json"):
        train(TrainOptions(trainer="xy", base="me5-small", langs=("en", "zh"), out_dir=str(tmp_path / "m")), log=quiet)
    assert not (tmp_path / "m").exists()
