#!/usr/bin/env bash
# Installs what chairgen needs on a fresh Debian/Ubuntu machine, idempotently:
#  - Mesa's headless EGL (the procedural renderer draws with moderngl on llvmpipe), and a C++
#    compiler (the oneDNN convolution kernels are built with it on first use),
#  - a virtual environment in .venv with chairgen and its test dependencies (the renderer and
#    the explorer included), at the versions of tools/constraints.txt,
#  - with --tensorflow: a second one, .venv-tf, that also holds TensorFlow (the `tensorflow`
#    extra), for the TFDS builders as tf.data users meet them (`tfds.load`, TFDS's
#    DatasetBuilderTestCase). chairgen's runtime never imports TensorFlow; keeping it out of
#    .venv is what lets the main suite assert that.
# Usage: bash tools/setup.sh                (then use .venv/bin/python)
#        bash tools/setup.sh --tensorflow   (then use .venv-tf/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
EXTRAS=test
case "${1:-}" in
  "") ;;
  --tensorflow) VENV=.venv-tf; EXTRAS=test,tensorflow ;;
  *) echo "setup: unknown argument '$1' (expected nothing or --tensorflow)" >&2; exit 2 ;;
esac

need=()
for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri g++; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "setup: installing ${need[*]} (headless OpenGL for the renderer, g++ for oneDNN's kernels)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
# The versions the docs' numbers were measured with (CHAIRGEN_UNPINNED=1: newest releases).
PIN=(-c tools/constraints.txt)
if [ "${CHAIRGEN_UNPINNED:-0}" = 1 ]; then PIN=(); fi
echo "setup: installing chairgen[$EXTRAS] into $VENV${PIN:+ (pinned by tools/constraints.txt)}"
"$VENV/bin/python" -m pip install -q "${PIN[@]}" -e ".[$EXTRAS]"
