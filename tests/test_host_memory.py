"""chairgen.host_memory: freed XLA:CPU buffers stay mapped (no page faults in steady state)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from chairgen import host_memory

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs a jitted op with a 64 MB temporary (a cumulative sum of x * 2) many times and reports the
# minor page faults of each call after the warm-up: glibc maps (and the kernel zeroes) blocks
# that large anew on every malloc unless host_memory keeps freed memory.  The tuned heap still
# grows now and then while it settles (a call that extends it faults its new pages; which calls
# do depends on the worker threads' timing), so the test warms up well and compares the median
# call.
_FAULTS_SCRIPT = r"""
import json, resource, sys
from chairgen import host_memory
mode = host_memory.configure(sys.argv[1])
import jax, jax.numpy as jnp
x = jnp.ones((4096, 4096), jnp.float32)
f = jax.jit(lambda x: jnp.cumsum(x * 2.0, axis=0)[-1])
for _ in range(int(sys.argv[2])):
  f(x).block_until_ready()
faults = []
for _ in range(int(sys.argv[3])):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  f(x).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"mode": mode, "faults": faults}))
"""


def _run(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
  full_env = {k: v for k, v in os.environ.items() if k != host_memory.ENV_VAR}
  full_env.update({"PYTHONPATH": _REPO, "JAX_PLATFORMS": "cpu", **(env or {})})
  return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                        env=full_env, timeout=300, check=False)


def _faults(mode: str, warmup: int) -> dict:
  proc = _run(_FAULTS_SCRIPT, mode, str(warmup), "15")
  assert proc.returncode == 0, proc.stderr
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  result["median"] = float(np.median(result["faults"]))
  return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_tuned_allocator_stops_page_faults_of_large_buffers():
  # The tuned heap takes up to ~30 calls to settle here; the system one never does.
  system, tuned = _faults("system", warmup=2), _faults("tuned", warmup=40)
  assert system["mode"] == "system" and tuned["mode"] == "tuned"
  pages = 64 * 2**20 / 4096
  assert system["median"] > 0.5 * pages, system   # temporaries faulted in anew
  assert tuned["median"] < 0.05 * pages, tuned    # and reused when tuned


def test_configure_after_jax_started_warns_and_changes_nothing():
  code = ("import warnings, jax.numpy as jnp\n"
          "from chairgen import host_memory\n"
          "jnp.ones(3).block_until_ready()\n"
          "with warnings.catch_warnings(record=True) as w:\n"
          "  warnings.simplefilter('always')\n"
          "  print(host_memory.configure('tuned'), host_memory.applied())\n"
          "print('WARNED' if any('before the first JAX computation' in str(x.message)"
          " for x in w) else 'SILENT')\n")
  proc = _run(code)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.split() == ["system", "None", "WARNED"]


@pytest.mark.parametrize("platforms, expected", [("cpu", "tuned"), ("cuda", "system")])
def test_auto_tunes_only_for_the_cpu(platforms, expected):
  code = "from chairgen import host_memory\nprint(host_memory.configure('auto'))\n"
  proc = _run(code, env={"JAX_PLATFORMS": platforms})
  assert proc.returncode == 0, proc.stderr
  expected = expected if sys.platform.startswith("linux") else "system"
  assert proc.stdout.strip() == expected


def test_env_var_selects_the_mode_and_bad_values_are_rejected():
  code = "from chairgen import host_memory\nprint(host_memory.configure())\n"
  proc = _run(code, env={host_memory.ENV_VAR: "system"})
  assert proc.stdout.strip() == "system", proc.stderr
  proc = _run(code, env={host_memory.ENV_VAR: "fast"})
  assert proc.returncode != 0 and "CHAIRGEN_HOST_ALLOCATOR='fast'" in proc.stderr
  with pytest.raises(ValueError, match="choose one of"):
    host_memory.configure("fast")
