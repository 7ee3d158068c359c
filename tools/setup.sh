#!/usr/bin/env bash
# Installs what chairgen needs on a fresh Debian/Ubuntu machine, idempotently:
#  - Mesa's headless EGL (the procedural renderer draws with moderngl on llvmpipe),
#  - a virtual environment in .venv with chairgen and its test dependencies.
# Usage: bash tools/setup.sh            (then use .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "setup: installing ${need[*]} (headless OpenGL for the renderer)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
echo "setup: installing chairgen into .venv"
.venv/bin/python -m pip install -q -e '.[test]'
