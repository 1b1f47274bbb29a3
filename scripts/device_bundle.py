"""Pack what a lent GPU machine needs to run an experiment grid offline, within its 64 MiB transfer limit.

    python scripts/device_bundle.py OUT_DIR [--beir scifact nfcorpus arguana]

writes into OUT_DIR:
  data.tar.xz     the LAReQA sets and the BEIR sets from the data mirror (the machine has no ../shared)
  pkgs/           me5-small's two package files, vocabulary-pruned to the texts of those sets
                  (bench/models/prune.py): put on PYTHONPATH, bench builds me5-small from them as usual
  bundle.json     what was kept and verified
The machine's own Python brings torch, transformers and the rest; `scripts/device_run.sh` installs the
two missing wheels (sentence-transformers 6.2, pytrec-eval-terrier) from OUT_DIR/whl and runs the grid.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data.pairs import question_pairs, training_examples  # noqa: E402
from bench.data.suites import SuiteOptions, suite_tasks  # noqa: E402
from bench.experiment import LAREQA_SETS  # noqa: E402
from bench.models import provision  # noqa: E402
from bench.models.prune import prune  # noqa: E402
from bench.paths import data_root  # noqa: E402
from bench.retrieval.dense.encode import document_text  # noqa: E402


def texts_to_encode(beir: list[str]) -> list[str]:
    """Every string the grid can encode or train on, with each of me5-small's prompts."""
    plain: set[str] = set()
    for name in LAREQA_SETS:
        for task in suite_tasks(name, SuiteOptions()):
            plain.update(task.queries.values())
            plain.update(document_text(doc) for doc in task.corpus.values())
        for example in training_examples(name) + question_pairs(name):
            plain.update(example.texts())
    for task in suite_tasks("beir", SuiteOptions(datasets=tuple(beir))):
        plain.update(task.queries.values())
        plain.update(document_text(doc) for doc in task.corpus.values())
    plain.update([provision.SANITY_QUERY, provision.SANITY_RELEVANT, provision.SANITY_UNRELATED,
                  provision.SANITY_SENTENCE, provision.SANITY_UNRELATED_DE, *provision.SANITY_TRANSLATIONS.values()])
    prompts = list(provision.PROMPTS.values())
    return sorted(prompt + text for text in plain for prompt in prompts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--beir", nargs="+", default=["scifact", "nfcorpus", "arguana"])
    args = parser.parse_args()
    start = time.perf_counter()
    texts = texts_to_encode(args.beir)
    print(f"{len(texts)} prompted texts collected in {time.perf_counter() - start:.0f} s")
    pkgs = args.out / "pkgs"
    weights = pkgs / provision.ME5_WEIGHTS[0] / provision.ME5_WEIGHTS[1]
    tokenizer = pkgs / provision.ME5_TOKENIZER[0] / provision.ME5_TOKENIZER[1]
    counts = prune(provision.me5_weights_file(), provision.me5_tokenizer_file(), texts, weights, tokenizer)
    for package in (provision.ME5_WEIGHTS[0], provision.ME5_TOKENIZER[0]):
        (pkgs / package / "__init__.py").write_text('"""Pruned model files for a device run (scripts/device_bundle.py)."""\n')
    print(f"pruned me5-small: {counts}")
    root = data_root()
    members = ["lareqa", *(f"beir/{name}" for name in args.beir)]
    subprocess.run(["tar", "-C", str(root), "-cJf", str(args.out / "data.tar.xz"), *members], check=True,
                   env={"XZ_OPT": "-T0 -6", "PATH": "/usr/bin:/bin"})
    record = {"texts": len(texts), **counts, "data": members, "weights_bytes": weights.stat().st_size,
              "seconds": round(time.perf_counter() - start, 1)}
    (args.out / "bundle.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
