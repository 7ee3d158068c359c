"""XLA:CPU flags chosen per ISA: oneDNN for matmuls and their element-wise fusions on AVX-512.

The released jaxlib carries oneDNN but leaves it off. On the AVX-512 machine of this project
(AMD EPYC, avx512f + avx512_bf16, 2 cores) turning it on for dot and element-wise fusions
(FLAGS below) made the float32 train step 17 % faster at 64 px × 64 and 9 % at 128 px × 32,
with the same loss to the last digit (docs/performance.md, "oneDNN on AVX-512", with the
commands). It has not been measured on an AVX2-only CPU, so `auto` turns it on only where
avx512f is present; XLA's convolutions are not routed to oneDNN by these flags (chairgen's own
CPU kernels do the convolutions).

CHAIRGEN_ONEDNN selects: 'auto' (default: on when JAX runs on the CPU and the CPU has
avx512f), 'on' or 'off'. Flags the user already put in XLA_FLAGS about oneDNN win. Like
`host_memory.configure`, `configure()` must run before JAX's backend starts (XLA reads
XLA_FLAGS then); `chairgen.cli.start` and the benchmarks call it first thing.
"""

from __future__ import annotations

import os
import warnings

from chairgen import host_memory

ENV_VAR = "CHAIRGEN_ONEDNN"
CHOICES = ("auto", "on", "off")
FLAGS = ("--xla_cpu_use_onednn=true", "--xla_cpu_experimental_onednn_fusion_type=dot,eltwise")


def cpu_flags() -> set[str]:
  """The ISA flags of the first CPU in /proc/cpuinfo (empty elsewhere)."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("flags"):
          return set(line.partition(":")[2].split())
  except OSError:
    pass
  return set()


def flags_for(mode: str, isa: set[str], on_cpu: bool, xla_flags: str) -> str:
  """The XLA_FLAGS value to run with (pure: the decision `configure` applies)."""
  if mode not in CHOICES:
    raise ValueError(f"{ENV_VAR}={mode!r}: choose one of {CHOICES}")
  want = mode == "on" or (mode == "auto" and on_cpu and "avx512f" in isa)
  if not want or "onednn" in xla_flags:
    return xla_flags
  return " ".join([xla_flags, *FLAGS]).strip()


def configure(mode: str | None = None) -> bool:
  """Sets XLA_FLAGS for this process (see the module docstring); True when oneDNN is on."""
  mode = mode or os.environ.get(ENV_VAR, "auto")
  current = os.environ.get("XLA_FLAGS", "")
  new = flags_for(mode, cpu_flags(), host_memory._runs_on_cpu(), current)  # pylint: disable=protected-access
  if new != current:
    if host_memory._jax_backend_started():  # pylint: disable=protected-access
      warnings.warn("chairgen.xla_cpu.configure() ran after JAX's backend started: XLA_FLAGS "
                    "no longer apply; call it before the first JAX computation", stacklevel=2)
      return False
    os.environ["XLA_FLAGS"] = new
  return "xla_cpu_use_onednn=true" in os.environ.get("XLA_FLAGS", "")
