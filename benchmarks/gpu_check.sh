#!/usr/bin/env bash
# One GPU pass over every speed benchmark, for the lead's device run (see benchmarks/README.md).
# Run from the repository root on a CUDA machine where python3 has torch (and numpy, scipy,
# sklearn, yaml, tqdm, h5py, matplotlib) but neither POT nor mmalign installed:
#   bash benchmarks/gpu_check.sh
# Writes each benchmark's output to "$OUT/<name>.txt" (OUT defaults to ./gpu_out). Each step
# has its own timeout and a failure does not stop the others; total about 5 minutes.
set -u
OUT="${OUT:-./gpu_out}"
mkdir -p "$OUT"
export PYTHONPATH="src:.${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"
status=0

step() {  # step NAME SECONDS COMMAND...
    local name="$1" limit="$2"
    shift 2
    echo "== $name (limit ${limit}s): $*" | tee "$OUT/$name.txt"
    local start=$SECONDS
    timeout "$limit" "$@" >>"$OUT/$name.txt" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - start))s" | tee -a "$OUT/$name.txt"
    [ "$rc" -eq 0 ] || status=1
}

{ nvidia-smi || true; "$PY" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))"; } >"$OUT/device.txt" 2>&1

step adl_stage 90 "$PY" -m benchmarks.adl_stage --device cuda --threads 1 --repeats 5 --reference-repeats 1
step ot_solver 40 "$PY" -m benchmarks.ot_solver --device cuda --threads 1 --repeats 10
step ot_memory 40 "$PY" -m benchmarks.ot_memory --device cuda --threads 1
step train_step 50 "$PY" -m benchmarks.train_step --device cuda --threads 1 --repeats 10
step inference 40 "$PY" -m benchmarks.inference --device cuda --threads 1 --repeats 3
step imputation_time 40 "$PY" -m benchmarks.imputation_time --device cuda --threads 1 --repeats 10
step run_3_epochs 90 "$PY" -c "import sys; from mmalign.cli import main; sys.exit(main(sys.argv[1:]))" \
    run --device cuda --epochs 3 --out "$OUT/run"
exit "$status"
