"""One Orbax CheckpointManager for the train state and the input iterator together.

A checkpoint holds two items: `state` (the TrainState pytree) and `data` (the grain iterator's
position), so that resuming continues with exactly the batches an uninterrupted run would
have seen. Orbax writes each step into a temporary folder and renames it when complete, so a
crash mid-save never leaves a checkpoint that looks whole.
"""

from __future__ import annotations

import os
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"


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


def restore(manager: ocp.CheckpointManager, abstract_state: Any, data_iterator: Any = None,
            step: int | None = None) -> tuple[Any, int]:
  """Restores `step` (default: the latest) into the shapes/shardings of `abstract_state`.

  `data_iterator`, when given, is moved to the saved position in place.
  Returns (state, step).
  """
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(
        f"no checkpoint under {manager.directory}: train first (python -m experiments.train)")
  items = {"state": ocp.args.StandardRestore(abstract_state)}
  if data_iterator is not None:
    items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
  restored = manager.restore(step, args=ocp.args.Composite(**items))
  return restored["state"], step


def restore_params(workdir: str, abstract_params: Any, step: int) -> Any:
  """Restores only `state.params` of a checkpoint (for inference): no optimizer moments.

  A partial restore: Orbax reads the parameter arrays and skips `opt_state` and `step`, so
  loading a run costs a third of the bytes of resuming it and needs no optimizer.
  """
  directory = checkpoint_dir(workdir)
  with ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(create=False)
                             ) as manager:
    restore_args = ocp.checkpoint_utils.construct_restore_args(abstract_params)
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item={"params": abstract_params}, restore_args={"params": restore_args},
        partial_restore=True)))
  return restored["state"]["params"]


def abstract_like(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) of a pytree of arrays, for restoring into."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
