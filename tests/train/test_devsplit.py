"""The dev split held out from the training questions, its scoring, and the mtl sweep that uses it."""

import json

import pandas as pd
import pytest

from bench.cli import main
from bench.data.lareqa import load_lareqa
from bench.data.pairs import training_examples
from bench.train.devsplit import score_dev, split_dev
from bench.train.run import train
from bench.train.sweep import GRID, SweepOptions, best, run_sweep
from support.training import LANGS, manifest, options, quiet

FRACTION = 0.4  # the fixture's 18 question ids form 6 paragraph groups; the hash holds out one of them


def test_the_split_is_deterministic_and_holds_out_whole_paragraphs(data_dir):
    data = load_lareqa("mlqa-r", langs=LANGS)
    train_data, dev = split_dev(data, FRACTION)
    again = split_dev(load_lareqa("mlqa-r", langs=LANGS), FRACTION)[1]
    assert dev.ids == again.ids and dev.record() == again.record()
    assert 0 < len(dev.ids) < 18 and dev.train_ids + len(dev.ids) == 18
    assert dev.ids == ["mlqa-r-0-0", "mlqa-r-0-1", "mlqa-r-0-2"]  # one paragraph's three questions
    assert {q.id for q in train_data.questions}.isdisjoint(dev.ids)
    # No dev candidate is a positive or a hard negative of any training pair.
    dev_texts = {c.text for c in dev.candidates.values()}
    examples = training_examples(train_data)
    assert examples and not any(ex.positive in dev_texts or ex.negative in dev_texts for ex in examples)
    assert {c.paragraph for c in dev.candidates.values()} == {data.candidates[q.answer].paragraph
                                                              for q in dev.questions}
    # Every version of a held-out id is held out.
    assert len(dev.questions) == sum(len(data.versions[qid]) for qid in dev.ids)


@pytest.mark.parametrize("fraction, message", [(0.0, "must be in"), (0.001, "holds out 0 of 18")])
def test_a_split_with_nothing_on_one_side_is_refused(data_dir, fraction, message):
    with pytest.raises(ValueError, match=message):
        split_dev(load_lareqa("mlqa-r", langs=LANGS), fraction)


def test_training_with_a_dev_split_leaves_its_questions_out(tiny_model_dir, data_dir, tmp_path):
    path = train(options(tiny_model_dir, tmp_path / "models", dev_fraction=FRACTION, steps=2), log=quiet)
    m = manifest(path)
    assert path.name.endswith("-2steps-dev0.4")
    assert m["dev_split"]["question_ids"] == 3 and m["dev_split"]["train_question_ids"] == 15
    assert m["options"]["dev_fraction"] == FRACTION
    full = manifest(train(options(tiny_model_dir, tmp_path / "models", steps=2), log=quiet))
    assert m["data"]["pairs"] < full["data"]["pairs"] and full["dev_split"] is None


def test_dev_scores_are_lareqa_map_per_setting(tiny_model_dir, data_dir):
    from sentence_transformers import SentenceTransformer

    _, dev = split_dev(load_lareqa("mlqa-r", langs=LANGS), FRACTION)
    scores = score_dev(SentenceTransformer(str(tiny_model_dir), device="cpu"), dev)
    assert set(scores) == {"mono", "cross", "multi"} and all(0 < v <= 1 for v in scores.values())

    class Oracle:
        """Encodes a question and its answer sentence to the same one-hot vector: every mAP is 1."""

        prompts: dict = {}

        def encode(self, texts, **kwargs):
            import numpy as np

            column = {qid: i for i, qid in enumerate(dev.ids)}
            index = {}
            for q in dev.questions:
                index[q.text] = index[dev.candidates[q.answer].text] = column[q.id]
            out = np.zeros((len(texts), len(column) + 1), dtype=np.float32)
            for i, text in enumerate(texts):
                out[i, index.get(text, len(column))] = 1.0  # a sentence that answers nothing: orthogonal
            return out

    assert score_dev(Oracle(), dev) == {"mono": 1.0, "cross": 1.0, "multi": 1.0}


def test_a_sweep_without_a_dev_split_is_refused(tmp_path, capsys):
    assert main(["sweep", "mtl", "--dev-fraction", "0", "--out", str(tmp_path / "sweep")]) == 2
    assert "dev split held out from the training set's questions" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()
    assert main(["sweep", "hybrid", "--out", str(tmp_path / "sweep")]) == 2
    assert "hybrid has none" in capsys.readouterr().err
    assert main(["sweep", "--configs", "nope"]) == 2
    assert "unknown sweep configuration(s) nope" in capsys.readouterr().err


def test_the_sweep_trains_scores_and_resumes(tiny_model_dir, data_dir, tmp_path):
    names = tuple(name for name, _ in GRID[:2])
    sweep = SweepOptions(base=str(tiny_model_dir), langs=LANGS, dev_fraction=FRACTION, steps=2, batch_size=6, threads=1,
                         configs=names, out=str(tmp_path / "sweep"), models_dir=str(tmp_path / "models"))
    table = run_sweep(sweep, log=quiet)
    rows = pd.read_csv(table)
    assert list(dict.fromkeys(rows["config"])) == ["untrained-base", *names]
    assert set(rows["setting"]) == {"mono", "cross", "multi", "mean"} and (rows["dev_questions"] == 3).all()
    assert best(table)["config"] in names
    first = rows[rows["config"] == names[0]].iloc[0]
    assert (first["w_lid"], first["reversal"], first["w_translation"]) == (1.0, 0.1, 0.5)
    mean = rows[(rows["config"] == names[0]) & (rows["setting"] == "mean")]["value"].item()
    parts = rows[(rows["config"] == names[0]) & (rows["setting"] != "mean")]["value"]
    assert mean == pytest.approx(parts.mean(), abs=1e-6)
    # Checkpoints are removed once scored; their manifests are kept beside the table.
    assert not any((tmp_path / "models").iterdir())
    kept = json.loads((table.parent / "manifests" / f"{names[0]}.json").read_text())
    assert kept["dev_split"]["question_ids"] == 3
    # A second run finds every configuration done and trains nothing.
    messages = []
    run_sweep(sweep, log=messages.append)
    assert messages == [f"{name}: in {table} already" for name in names]  # and the base is not scored again
    assert pd.read_csv(table).equals(rows)
