"""Keeps freed host memory mapped, so XLA:CPU stops page-faulting its buffers in every step.

XLA:CPU allocates an executable's temporaries (hundreds of MB for the 128 px train step) and
YNNPACK's workspaces with malloc, on its worker threads, once per execution.  glibc serves
blocks that large with a fresh mmap and gives them back with munmap on free, so every step the
kernel maps and zeroes them again: a fifth of the step in page faults and system time on the
2-core development machine (the measurements are in docs/performance.md).  With one malloc
arena that neither mmaps nor trims, the freed blocks stay mapped and the next step reuses
them: no page faults.

The price: the process keeps its peak heap (the next step needs it again anyway) and all
threads share one arena (contention only matters for many threads doing many small
allocations, which the train loop does not).  `configure()` must run before JAX starts its
CPU client: threads keep the arena they first allocated from, and non-main arenas mmap large
blocks whatever the settings.  `chairgen.cli.start` calls it first thing in the experiments'
entry points, and the benchmarks call it themselves; notebooks call it before their first JAX
computation.

CHAIRGEN_HOST_ALLOCATOR selects the behaviour: 'auto' (default: tune when JAX will run on the
CPU, that is JAX_PLATFORMS says cpu or no accelerator plugin is installed), 'tuned' (always)
or 'system' (leave malloc alone).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
import os
import sys
import warnings

ENV_VAR = "CHAIRGEN_HOST_ALLOCATOR"
CHOICES = ("auto", "tuned", "system")

# mallopt parameters (glibc malloc.h) and the values set.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
# mallopt takes an int: freed memory at the top of the heap is returned to the system only
# beyond 2 GiB (more than the 128 px step's temporaries).
SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
# Distributions whose presence means JAX will pick an accelerator by default.
_ACCELERATOR_PLUGINS = ("jax-cuda12-plugin", "jax-cuda13-plugin", "jax-rocm60-plugin",
                        "jax-rocm7-plugin", "libtpu", "libtpu-nightly")

_applied: str | None = None


def _jax_backend_started() -> bool:
  if "jax" not in sys.modules:
    return False
  from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
  return xla_bridge.backends_are_initialized()


def _runs_on_cpu() -> bool:
  platforms = os.environ.get("JAX_PLATFORMS", "")
  if "jax" in sys.modules:
    import jax  # pylint: disable=g-import-not-at-top
    platforms = jax.config.jax_platforms or platforms
  if platforms:
    return platforms.split(",")[0].strip() == "cpu"
  for name in _ACCELERATOR_PLUGINS:
    try:
      importlib.metadata.distribution(name)
      return False
    except importlib.metadata.PackageNotFoundError:
      pass
  return True


def _mallopt():
  """glibc's mallopt, or None (other C libraries, other systems)."""
  if not sys.platform.startswith("linux"):
    return None
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return libc.mallopt
  except (OSError, AttributeError):
    return None


def configure(mode: str | None = None) -> str:
  """Applies `mode` (default: $CHAIRGEN_HOST_ALLOCATOR or 'auto'): returns what is in effect.

  Returns 'tuned' or 'system'.  Idempotent.  Warns (and changes nothing) when JAX's backend
  has already started, since the settings would no longer reach its threads.
  """
  global _applied
  mode = mode or os.environ.get(ENV_VAR, "auto")
  if mode not in CHOICES:
    raise ValueError(f"{ENV_VAR}={mode!r}: choose one of {CHOICES}")
  if _applied is not None:
    return _applied
  want = mode == "tuned" or (mode == "auto" and _runs_on_cpu())
  mallopt = _mallopt() if want else None
  if want and mallopt is None:
    want = False          # not glibc: nothing to tune
  if want and _jax_backend_started():
    warnings.warn(
        "chairgen.host_memory.configure() ran after JAX's backend started, so XLA:CPU keeps "
        "re-mapping its buffers every step (slower on the CPU); call it before the "
        "first JAX computation, or start Python with GLIBC_TUNABLES=glibc.malloc.arena_max=1"
        ":glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647", stacklevel=2)
    return "system"
  if want:
    for param, value in SETTINGS:
      if mallopt(param, value) != 1:
        raise OSError(f"mallopt({param}, {value}) failed")
  _applied = "tuned" if want else "system"
  return _applied


def applied() -> str | None:
  """'tuned' or 'system' once `configure` has run, else None."""
  return _applied
