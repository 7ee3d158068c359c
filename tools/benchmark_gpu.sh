#!/usr/bin/env bash
# The GPU table of docs/performance.md in one run (minutes): the train step at 128 px batch 128
# and 256 px batch 32, float32 and bfloat16, model.kernels 'auto' (XLA's own convolutions on a
# GPU) against 'jax' (cpu_kernels' Winograd and sub-pixel GEMMs); images/s, compile time,
# TFLOP/s and MFU, XLA's buffers and the device's peak memory, the paper's schedule at that rate;
# the input pipeline's and T_θ's images/s; then each layer alone and a profile of the bf16 step.
#
#   bash tools/benchmark_gpu.sh OUTDIR [PYTHON]
#
# SIZES (SIZExBATCH,...; default 128x128,256x32), PROFILE (SIZExBATCH of the per-layer timing and
# the profile; default 128x128) and BENCHMARK_ARGS (more tools/benchmark.py flags, which win)
# change the defaults, e.g. for a quick run on the CPU (tests/test_benchmark.py does that).
#
# Writes OUTDIR/: gpu.txt (nvidia-smi), benchmark_gpu.json and benchmark.log (tools/benchmark.py),
# layers_128_bf16.txt (tools/benchmark_layers.py), profile_128_bf16.txt and its perfetto trace
# profile_128_bf16.json.gz (tools/profile_step.py). Each part has a time limit (8.5 min in
# all) and a failed part does not stop the next; the exit status is the benchmark's. The JSON
# is written after each size ("complete": false until the last), the text unbuffered, so a
# part cut short keeps what it finished.
#
# On a machine without network whose image has JAX for CUDA, flax, optax and orbax but not the
# rest of chairgen's dependencies, bring their wheels (pure Python or manylinux) and install
# them first, e.g. for Python 3.12:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d WHEELS \
#     ml-collections grain array-record dm-pix tensorflow-datasets portpicker dm-tree \
#     immutabledict simple-parsing docstring-parser tensorflow-metadata termcolor toml \
#     importlib_resources googleapis-common-protos
#   pip wheel --no-deps -w WHEELS promise          # an sdist only
#   (there) pip install --no-index --no-deps --target /tmp/site WHEELS/*.whl
#           PYTHONPATH=/tmp/site bash tools/benchmark_gpu.sh OUTDIR python3
set -uo pipefail
out=${1:?usage: bash tools/benchmark_gpu.sh OUTDIR [PYTHON]}
py=${2:-python}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit \
  --format=csv > "$out/gpu.txt" 2>&1 || echo "nvidia-smi failed" >> "$out/gpu.txt"
"$py" -c "import jax; print('jax', jax.__version__, jax.devices())" || exit 1

profile=${PROFILE:-128x128}
size=${profile%x*}
batch=${profile#*x}
# shellcheck disable=SC2086  # BENCHMARK_ARGS: words on purpose
timeout 330 "$py" tools/benchmark.py --skip_torch --sizes="${SIZES:-128x128,256x32}" \
  --dtypes=float32,bfloat16 --extra=kernels=jax,dtype=bfloat16+kernels=jax \
  --steps=30 --rounds=3 --warmup=5 --pause_s=0.2 --json="$out/benchmark_gpu.json" \
  ${BENCHMARK_ARGS:-} 2>&1 | tee "$out/benchmark.log"
status=${PIPESTATUS[0]}

timeout 90 "$py" tools/benchmark_layers.py --batch="$batch" --image_size="$size" \
  --kernels=xla,jax --dtype=bfloat16 --repeats=10 > "$out/layers_${size}_bf16.txt" 2>&1 \
  || echo "benchmark_layers failed or timed out" >> "$out/layers_${size}_bf16.txt"
timeout 90 "$py" tools/profile_step.py --size="$size" --batch="$batch" --dtype=bfloat16 \
  --top=25 --trace_out="$out/profile_${size}_bf16.json.gz" > "$out/profile_${size}_bf16.txt" \
  2>&1 || echo "profile_step failed or timed out" >> "$out/profile_${size}_bf16.txt"
exit "$status"
