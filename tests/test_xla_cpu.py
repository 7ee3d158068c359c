"""chairgen.xla_cpu: oneDNN flags per ISA, never over the user's own XLA_FLAGS."""

import os
import subprocess
import sys

import pytest

from chairgen import xla_cpu

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_auto_turns_onednn_on_only_for_avx512_on_the_cpu():
  on = " ".join(xla_cpu.FLAGS)
  assert xla_cpu.flags_for("auto", {"avx2", "avx512f"}, True, "") == on
  assert xla_cpu.flags_for("auto", {"avx2", "fma"}, True, "") == ""        # not measured there
  assert xla_cpu.flags_for("auto", {"avx512f"}, False, "") == ""           # a GPU or TPU run
  assert xla_cpu.flags_for("on", set(), False, "--a=1") == f"--a=1 {on}"
  assert xla_cpu.flags_for("off", {"avx512f"}, True, "--a=1") == "--a=1"
  mine = "--xla_cpu_use_onednn=false"
  assert xla_cpu.flags_for("on", {"avx512f"}, True, mine) == mine         # the user's flag wins
  with pytest.raises(ValueError, match="CHAIRGEN_ONEDNN='fast'"):
    xla_cpu.flags_for("fast", set(), True, "")


def test_configure_sets_the_flags_before_jax_starts_and_warns_after():
  code = ("import os, warnings\n"
          "from chairgen import xla_cpu\n"
          "assert xla_cpu.configure()\n"
          "import jax, jax.numpy as jnp\n"
          "x = jnp.arange(12.0).reshape(3, 4)\n"
          "assert float(jax.jit(lambda a: (a @ a.T).sum())(x)) == float((x @ x.T).sum())\n"
          "print(os.environ['XLA_FLAGS'])\n"
          "os.environ.pop('XLA_FLAGS')\n"
          "with warnings.catch_warnings(record=True) as w:\n"
          "  warnings.simplefilter('always')\n"
          "  assert not xla_cpu.configure('on')\n"
          "assert 'after JAX' in str(w[0].message)\n")
  env = dict(os.environ, CHAIRGEN_ONEDNN="on", JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "--xla_cpu_use_onednn=true" in result.stdout
