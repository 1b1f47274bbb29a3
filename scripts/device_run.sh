#!/usr/bin/env bash
# Runs an experiment grid on a lent GPU machine from a bundle made by scripts/device_bundle.py, with the
# machine's own Python, torch and CUDA. WORKERS processes share the GPU, each on its own cores, each taking
# every WORKERS-th cell (`--shard K/WORKERS`); shard 1 also scores the untrained me5-small reference (BM25
# needs Java, which such a machine lacks: score it on the CPU afterwards). Results are packed into $OUT every
# minute, so a run cut off by the lease still returns every finished (model, task) pair.
#   usage: BENCH_GIT_SHA=<sha> [STAGES="7"] bash scripts/device_run.sh BUNDLE EXPERIMENT WORKERS SECONDS
# STAGES (1-based, space-separated) narrows the grid to those stages: the cells too long for the CPU sessions,
# say paper-v2's 3000-step learning-curve runs (4.8 h each on 2 cores, longer than a session).
set -uo pipefail
BUNDLE=$(realpath "$1") EXP=$2 WORKERS=$3 LIMIT=$4
export OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/logs /tmp/data
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export BENCH_DATA=/tmp/data BENCH_CACHE=/tmp/cache BENCH_MODELS=/tmp/models BENCH_RESULTS=/tmp/results
start=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$BUNDLE"/whl/*.whl \
  || { echo "wheel install failed"; exit 1; }
export PYTHONPATH="$BUNDLE/pkgs:/tmp/site:$PWD"
python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall('/tmp/data')" "$BUNDLE/data.tar.xz" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 - <<'PY' || exit 1
import time, torch, transformers, sentence_transformers, pandas, numpy
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "st", sentence_transformers.__version__,
      "transformers", transformers.__version__, "pandas", pandas.__version__, "numpy", numpy.__version__)
start = time.time()
from bench.models.provision import me5_small_path
print("me5-small built at", me5_small_path(), f"in {time.time() - start:.1f} s")
PY
NAME=$(python3 -c "from bench.experiment import load_experiment; print(load_experiment('$EXP').name)") || exit 1
echo "setup took $(( $(date +%s) - start )) s"

pack() {  # results and logs into 5 gzip archives under $OUT, each replaced in one rename
  python3 - "$NAME" <<'PY'
import os, sys, tarfile
from pathlib import Path
name, out, root = sys.argv[1], Path(os.environ["OUT"]), Path(os.environ["BENCH_RESULTS"])
runs = sorted(p for p in (root / name).iterdir() if p.is_dir()) if (root / name).is_dir() else []
skip = lambda info: None if info.name.endswith(".tmp") else info
for part in range(4):
    with tarfile.open(out / f".results-{part}.part", "w:gz", compresslevel=6) as tar:
        for run in runs[part::4]:
            tar.add(run, arcname=str(run.relative_to(root)), filter=skip)
        if part == 0 and (root / name / "experiment.yaml").is_file():
            tar.add(root / name / "experiment.yaml", arcname=f"{name}/experiment.yaml")
    os.replace(out / f".results-{part}.part", out / f"results-{part}.tar.gz")
with tarfile.open(out / ".logs.part", "w:gz") as tar:
    tar.add("/tmp/logs", arcname="logs")
os.replace(out / ".logs.part", out / "logs.tar.gz")
PY
}

cores=$(nproc)
per=$(( (cores - 1) / WORKERS )); [ "$per" -ge 1 ] || per=1
pids=()
for k in $(seq 1 "$WORKERS"); do
  first=$(( (k - 1) * per )); last=$(( first + per - 1 ))
  only=(); [ "$k" -eq 1 ] && only=(--references me5-small)
  # With STAGES, the references (scored on the CPU already) are left out.
  [ -n "${STAGES:-}" ] && { read -ra chosen <<< "$STAGES"; only=(--references --stages "${chosen[@]}"); }
  pin=(); command -v taskset >/dev/null && pin=(taskset -c "$first-$last")
  OMP_NUM_THREADS=$per "${pin[@]}" timeout "$LIMIT" \
    python3 -m bench experiment "$EXP" --shard "$k/$WORKERS" "${only[@]}" --batch-size 256 \
    > "/tmp/logs/worker-$k.log" 2>&1 &
  pids+=($!)
done
rm -f /tmp/stop
( for i in $(seq 3600); do
    sleep 1; [ -e /tmp/stop ] && break
    if (( i % 60 == 0 )); then pack; echo "packed at $(( $(date +%s) - start )) s"; fi
  done ) &
packer=$!
for k in $(seq 1 "$WORKERS"); do
  wait "${pids[$((k - 1))]}"; echo "worker $k exited $? at $(( $(date +%s) - start )) s"
done
touch /tmp/stop; wait "$packer"  # a pack in progress finishes first: it would overwrite the last one
pack
echo "done at $(( $(date +%s) - start )) s"
for k in $(seq 1 "$WORKERS"); do
  echo "== worker $k"; grep -aE "wrote|Error|error|Traceback" "/tmp/logs/worker-$k.log" | tail -8
done
