"""One Orbax CheckpointManager for the train state and the input iterator together.

A checkpoint holds two items: `state` (the TrainState pytree) and `data` (the grain iterator's
position), so that resuming continues with exactly the batches an uninterrupted run would
have seen. Orbax writes each step into a temporary folder and renames it when complete, so a
crash mid-save never leaves a checkpoint that looks whole.

A checkpoint damaged afterwards (a disk fault, a truncated copy) is a different matter: Orbax
then fails deep inside TensorStore. `restore` and `restore_params` turn that into one
`DamagedCheckpointError` naming the step and the file, and, when no step was asked for, fall
back to the newest step that reads, with a warning; training moves the damaged step out of
the way (`<workdir>/checkpoints_damaged/<step>`, kept for inspection) before it saves that
step again.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from absl import logging
import grain
import jax
import orbax.checkpoint as ocp

from chairgen import distributed

CHECKPOINT_DIR = "checkpoints"
DAMAGED_DIR = "checkpoints_damaged"
_T = TypeVar("_T")


class DamagedCheckpointError(RuntimeError):
  """A checkpoint whose files cannot be read; the message names the step, file and fix."""


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)


def create_manager(workdir: str, *, max_to_keep: int = 3, async_save: bool = True
                   ) -> ocp.CheckpointManager:
  """Manager over `<workdir>/checkpoints` keeping the last `max_to_keep` steps."""
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=True, enable_async_checkpointing=async_save)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def save(manager: ocp.CheckpointManager, step: int, state: Any, data_iterator: Any = None,
         *, force: bool = False) -> bool:
  """Saves state (and the iterator position when given) at `step`."""
  items = {"state": ocp.args.StandardSave(state)}
  if data_iterator is not None:
    items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
  return manager.save(step, args=ocp.args.Composite(**items), force=force)


def _damaged(directory: str, step: int, error: Exception) -> DamagedCheckpointError:
  """The one error for an unreadable step: the step, the array and the file, and the fix."""
  text = str(error).strip()
  code = re.match(r"([A-Z_]+):", text)
  array = re.search(r'Error reading "([^"]+)" in OCDBT', text)
  files = re.findall(r'of local file "([^"]+)"', text)
  reason = re.search(r"Requested byte range \S+ \S+ is not valid for value of size \d+", text)
  if array or files:
    detail = (f"{code.group(1) + ' ' if code else ''}reading array "
              f"{array.group(1).split('/')[0] if array else '?'}"
              f"{' from ' + files[-1] if files else ''}"
              f"{' (' + reason.group(0) + ')' if reason else ''}")
  else:
    detail = f"{type(error).__name__}: {(text.splitlines() or [''])[0][:300]}"
  return DamagedCheckpointError(
      f"{os.path.join(directory, str(step))}: the checkpoint of step {step} cannot be read: "
      f"{detail}. Fix: restore that folder from a backup, or load another step (--step=...); "
      "training resumes from the newest step that reads")


def _quiet_closed_loop_callbacks() -> None:
  """Drops the 'Event loop is closed' noise a failed Orbax read leaves behind.

  TensorStore completes the reads still in flight after Orbax has given up and closed its
  event loop; each completion's callback raises RuntimeError('Event loop is closed') in a
  native thread, which Python prints as an unraisable exception, a dozen tracebacks under
  the real error. Installed when a checkpoint is first restored; every other unraisable
  exception still reaches the previous hook.
  """
  previous = sys.unraisablehook
  if getattr(previous, "chairgen_quiet", False):
    return

  def hook(unraisable):
    value = unraisable.exc_value
    if isinstance(value, RuntimeError) and str(value) == "Event loop is closed":
      return
    previous(unraisable)

  hook.chairgen_quiet = True
  sys.unraisablehook = hook


def _newest_readable(directory: str, steps: list[int], read: Callable[[int], _T],
                     step: int | None) -> tuple[_T, int]:
  """read(step) for the requested step, or for the newest step that reads (warning)."""
  _quiet_closed_loop_callbacks()  # before the read: the noise starts while it fails
  if step is not None:
    try:
      return read(step), step
    except Exception as e:  # pylint: disable=broad-except  (TensorStore, Orbax, OS errors)
      raise _damaged(directory, step, e) from None
  damaged = []
  for candidate in sorted(steps, reverse=True):
    try:
      value = read(candidate)
    except Exception as e:  # pylint: disable=broad-except
      damaged.append(_damaged(directory, candidate, e))
      logging.warning("%s", damaged[-1])
      continue
    if damaged:
      message = (f"WARNING: skipped damaged checkpoint step(s) "
                 f"{', '.join(str(d).split(':')[0] for d in damaged)}; using step {candidate}, "
                 "the newest that reads. First error: " + str(damaged[0]))
      print(message, flush=True)
    return value, candidate
  if not damaged:
    raise FileNotFoundError(
        f"no checkpoint under {directory}: train first (python -m experiments.train)")
  raise DamagedCheckpointError(
      f"every checkpoint under {directory} is damaged (steps {sorted(steps)}); the newest: "
      f"{damaged[0]}") from None


def restore(manager: ocp.CheckpointManager, abstract_state: Any, data_iterator: Any = None,
            step: int | None = None) -> tuple[Any, int]:
  """Restores `step` (default: the newest that reads) into the shapes of `abstract_state`.

  `data_iterator`, when given, is moved to the saved position in place.
  Returns (state, step). A requested step that cannot be read raises
  `DamagedCheckpointError`; without one, damaged newer steps are skipped with a warning.
  """
  def read(s: int) -> Any:
    items = {"state": ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
      items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    return manager.restore(s, args=ocp.args.Composite(**items))["state"]

  return _newest_readable(os.fspath(manager.directory), list(manager.all_steps()), read, step)


def set_aside_newer_steps(manager: ocp.CheckpointManager, workdir: str, step: int) -> list[int]:
  """Moves the steps after `step` (damaged ones, skipped by `restore`) out of the manager's
  folder into `<workdir>/checkpoints_damaged/`, so that training can save those steps again.
  Returns the steps moved. Process 0 moves them; the others wait for it."""
  newer = [s for s in manager.all_steps() if s > step]
  if not newer:
    return []
  if distributed.is_primary():
    target = os.path.join(os.path.abspath(workdir), DAMAGED_DIR)
    os.makedirs(target, exist_ok=True)
    for s in newer:
      destination = os.path.join(target, str(s))
      if os.path.exists(destination):
        shutil.rmtree(destination)
      shutil.move(os.path.join(os.fspath(manager.directory), str(s)), destination)
  distributed.wait_for_primary("set aside damaged checkpoints")
  manager.reload()
  return newer


def restore_params(workdir: str, abstract_params: Any, step: int | None) -> tuple[Any, int]:
  """Restores only `state.params` of a checkpoint (for inference): no optimizer moments.

  A partial restore: Orbax reads the parameter arrays and skips `opt_state` and `step`, so
  loading a run costs a third of the bytes of resuming it and needs no optimizer.
  `step=None`: the newest step that reads (damaged newer steps are skipped with a warning).
  Returns (params, step).
  """
  directory = checkpoint_dir(workdir)
  restore_args = ocp.checkpoint_utils.construct_restore_args(abstract_params)
  with ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(create=False)
                             ) as manager:
    def read(s: int) -> Any:
      restored = manager.restore(s, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
          item={"params": abstract_params}, restore_args={"params": restore_args},
          partial_restore=True)))
      return restored["state"]["params"]

    return _newest_readable(directory, list(manager.all_steps()), read, step)


def abstract_like(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) of a pytree of arrays, for restoring into."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
