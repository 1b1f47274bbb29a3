"""Encoder backends beside the fp32 PyTorch reference. Each changes the numerics, so each is an explicit model
option (`me5-small+int8`, `--backend onnx`) with its own run id and embedding-cache variant, reported beside
the fp32 scores and never swapped in silently.

- "torch": the model as sentence-transformers loads it (fp32). The reference.
- "int8": PyTorch dynamic quantisation of every nn.Linear (int8 weights, activations quantised per batch).
  The embedding matrix, layer norms and attention softmax stay fp32.
- "onnx": the Transformer module exported once to ONNX (fp32) and run by ONNX Runtime; pooling and
  normalisation stay the sentence-transformers modules. The exported graph is kept under
  <cache>/onnx/<fingerprint>.onnx. sentence-transformers' own backend="onnx" needs `optimum`, which is not a
  dependency here; the export below needs only `onnx` and `onnxruntime`.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from bench.models.registry import BACKENDS
from bench.paths import cache_root

logger = logging.getLogger(__name__)

ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown encoder backend {backend!r}; known: {', '.join(BACKENDS)}")
    return backend


def quantize_int8(model):
    """The model with every nn.Linear dynamically quantised to int8 (in place; returns it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


class _LastHiddenState(torch.nn.Module):
    """The Hugging Face model with positional inputs and one output, as the ONNX exporter wants it."""

    def __init__(self, auto_model: torch.nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.auto_model, self.names = auto_model, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.auto_model(**dict(zip(self.names, inputs))).last_hidden_state


class OnnxTransformer:
    """Runs a SentenceTransformer's first (Transformer) module in ONNX Runtime and the remaining modules
    (Pooling, Normalize, ...) in PyTorch: `forward(features)` returns what `model(features)` would."""

    def __init__(self, model, fingerprint: str, threads: int, folder: Path | None = None):
        import onnxruntime as ort

        self.model = model
        self.names = tuple(n for n in ONNX_INPUTS if n in model.preprocess(["probe"]))
        self.path = (folder or cache_root() / "onnx") / f"{fingerprint}-{'-'.join(self.names)}.onnx"
        if not self.path.is_file():
            self._export()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def _export(self) -> None:
        """Export with dynamic batch and sequence axes into a temp file renamed into place."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        probe = self.model.preprocess(["an example sentence to trace the graph", "short"])
        wrapper = _LastHiddenState(self.model[0].auto_model, self.names).eval()
        axes = {n: {0: "batch", 1: "sequence"} for n in (*self.names, "last_hidden_state")}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        logger.info("exporting %s to ONNX", self.path.name)
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, tuple(probe[n] for n in self.names), str(tmp), input_names=list(self.names),
                              output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
        os.replace(tmp, self.path)

    def __call__(self, features: dict) -> dict:
        inputs = {n: features[n].numpy().astype(np.int64, copy=False) for n in self.names}
        features = dict(features)
        features["token_embeddings"] = torch.from_numpy(self.session.run(None, inputs)[0])
        for module in list(self.model)[1:]:
            features = module(features)
        return features
