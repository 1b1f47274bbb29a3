"""hybrid at alpha 1 and 0 *is* xx-mono and xy for the same seed: the same batches at every step and bitwise
equal weights. This is what lets an experiment's alpha sweep reuse the xx-mono and xy cells for its ends
(bench/experiments/paper-v2.yaml) instead of training them twice."""

from __future__ import annotations

import pytest

from bench.train.run import train
from bench.train.trainers import TRAINERS
from support.training import manifest, options, quiet, weights


@pytest.mark.parametrize("alpha, twin", [(spec.hybrid_alpha, name) for name, spec in TRAINERS.items()
                                         if spec.hybrid_alpha is not None])
def test_hybrid_at_an_end_of_alpha_trains_exactly_its_twin(tiny_model_dir, data_dir, tmp_path, alpha, twin):
    out = tmp_path / "models"
    hybrid = train(options(tiny_model_dir, out, trainer="hybrid", alpha=alpha, run_id="hybrid"), log=quiet)
    other = train(options(tiny_model_dir, out, trainer=twin, run_id="twin"), log=quiet)
    assert manifest(hybrid)["batches"]["per_step"] == manifest(other)["batches"]["per_step"]
    assert manifest(hybrid)["loss_curve"] == manifest(other)["loss_curve"]
    assert weights(hybrid) == weights(other)


def test_the_ends_of_alpha_are_xx_mono_and_xy():
    assert {name: spec.hybrid_alpha for name, spec in TRAINERS.items() if spec.hybrid_alpha is not None} \
        == {"xx-mono": 1.0, "xy": 0.0}
