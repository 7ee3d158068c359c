"""Training of the up-convolutional generator (paper sections 3.2, 4.1; Appendix A for the VAE).

One train state, one jitted train step with explicit shardings over a `data` mesh axis and a
donated state, one Orbax manager saving the state together with the input iterator. The same
code runs on one CPU, on forced host devices, on a GPU and on a TPU pod (after
`jax.distributed.initialize()`): the batch is sharded over every device of the mesh, the state
is replicated.

A run is a function of its config and seed: the augmentation and VAE noise of step t come from
fold_in(seed, t), and the input order from the seeded grain pipeline, so a resumed run ends
with the same parameters as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Callable, Iterable, Mapping

import jax
from jax.sharding import NamedSharding, PartitionSpec as P
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state as flax_train_state

from chairgen import augment
from chairgen import checkpoints
from chairgen import distributed
from chairgen import evaluators as evaluators_lib
from chairgen import imaging
from chairgen import inference
from chairgen import input_pipeline
from chairgen import losses
from chairgen import metric_writers
from chairgen import optimizer
from chairgen.mesh import DATA_AXIS, create_mesh  # noqa: F401  (re-exported)

RUN_INFO = inference.RUN_INFO


class TrainState(flax_train_state.TrainState):
  """step, params, opt_state (apply_fn and tx are static)."""


# ----------------------------------------------------------------------------- set-up

def create_train_state(config: ml_collections.ConfigDict, model, mesh, num_styles: int,
                       image_size: int) -> TrainState:
  """Initialises parameters (He init inside the model) replicated over the mesh."""
  del image_size  # the model knows its size
  replicated = NamedSharding(mesh, P())
  tx = optimizer.create_optimizer(config.optimizer)

  def init(key):
    style = jnp.zeros((1, num_styles), jnp.float32)
    view = input_pipeline.view_encoding(np.zeros(1, np.float32), np.zeros(1, np.float32))
    theta = augment.identity_theta(1)
    params_key, sample_key = jax.random.split(key)
    variables = model.init({"params": params_key, "sample": sample_key}, style,
                           jnp.asarray(view), theta)
    return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx)

  # rbg keys compile init faster than threefry (docs/performance.md); init runs once per run.
  key = jax.random.key(config.seed, impl="rbg")
  return jax.jit(init, out_shardings=replicated)(key)


def decode_images(batch: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
  """uint8 image on white + {0,1} mask -> float x and s in [0, 1]."""
  return batch["image"].astype(jnp.float32) / 255.0, batch["mask"].astype(jnp.float32)


def prepare_targets(batch: Mapping[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
  """The untransformed targets of eq. (1): x·s (object on black) and s."""
  image, mask = decode_images(batch)
  return image * mask, mask


def make_train_step(config: ml_collections.ConfigDict, model, mesh, num_styles: int
                    ) -> Callable[[TrainState, Mapping[str, jax.Array]], tuple[TrainState, dict]]:
  """Builds the jitted step: augment (T_θ) on device, loss of eq. (1) or the VAE bound, Adam.

  The state is donated and replicated; the batch is sharded along `data`. A non-finite loss,
  gradient or learning rate leaves the state unchanged and sets metrics["finite"] to 0,
  so the host can stop with the last good state and checkpoint intact.
  """
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P(DATA_AXIS))
  base_key = jax.random.key(config.seed)

  def train_step(state: TrainState, batch):
    step_key = jax.random.fold_in(base_key, state.step)
    augment_key, sample_key = jax.random.split(step_key)
    batch_size = batch["image"].shape[0]
    if config.augment.enabled:  # T_θ(x·s) and T_θ(s); apply segments x itself
      theta = augment.sample_theta(augment_key, batch_size, config.augment, step=state.step)
      target_image, target_mask = augment.apply(theta, *decode_images(batch))
    else:
      theta = augment.identity_theta(batch_size)
      target_image, target_mask = prepare_targets(batch)
    style = input_pipeline.style_encoding(batch["style"], num_styles)

    def loss_fn(params):
      outputs = state.apply_fn({"params": params}, style, batch["view"], theta,
                               rngs={"sample": sample_key})
      return losses.compute(outputs, target_image, target_mask, config.loss)

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grad_norm = optax.tree.norm(grads)
    learning_rate = optimizer.learning_rate_schedule(config.optimizer)(state.step)
    # Adam's step is at most ~learning_rate per parameter for finite gradients, so finite loss,
    # gradients and learning rate imply finite updated parameters.  Deciding before the update
    # (not from the updated parameters' norm) lets the update skip itself in the same pass
    # instead of re-reading parameters and both moments (docs/performance.md).
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & jnp.isfinite(learning_rate)
    new_state = optimizer.apply_gradients(state, grads, finite, config.optimizer)
    metrics = dict(metrics, loss=loss, grad_norm=grad_norm,
                   finite=finite.astype(jnp.float32), learning_rate=learning_rate)
    return new_state, metrics

  return jax.jit(train_step, in_shardings=(replicated, batch_sharding),
                 out_shardings=(replicated, replicated), donate_argnums=(0,))


# ----------------------------------------------------------------------------- the loop

def validate_config(config: ml_collections.ConfigDict) -> None:
  """Fails early, naming the field, for settings that would only break deep inside jit."""
  t = config.train
  if t.batch_size <= 0 or config.optimizer.num_steps <= 0:
    raise ValueError("config.train.batch_size and config.optimizer.num_steps must be positive")
  if t.batch_size % jax.device_count():
    raise ValueError(
        f"config.train.batch_size={t.batch_size} is not divisible by the {jax.device_count()} "
        "devices of the mesh; choose a multiple of jax.device_count().")
  if t.batch_size % jax.process_count():
    raise ValueError("config.train.batch_size must be divisible by jax.process_count()")
  for name in ("log_every", "eval_every", "checkpoint_every"):
    if t[name] <= 0:
      raise ValueError(f"config.train.{name} must be positive, got {t[name]}")


def write_run_info(workdir: str, config, pipeline) -> None:
  """What `chairgen.inference.load` needs to rebuild the model, and to check the data."""
  info = {
      "config": json.loads(config.to_json_best_effort()),
      "num_styles": int(pipeline.num_styles),
      "image_size": int(pipeline.image_size),
      "theta_dim": int(augment.THETA_DIM),
      "style_names": list(getattr(pipeline, "style_names", None) or []) or None,
      "num_train": int(pipeline.num_train),
      "num_test": int(pipeline.num_test),
      "split_fingerprint": inference.split_fingerprint(pipeline.split),
  }
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    tmp = os.path.join(workdir, RUN_INFO + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(info, f, indent=2)
    os.replace(tmp, os.path.join(workdir, RUN_INFO))


class _StopOnSignal:
  """Turns SIGTERM (preemption, `kill`) into a request to checkpoint and return.

  A process of a multi-process run leaves SIGTERM to JAX's preemption service, which
  `jax.distributed.initialize` starts: the notice reaches every process, and
  `CheckpointManager.reached_preemption(step)` turns true on all of them at the same step
  (Python's handler would replace the service's, so none is installed then).
  """

  def __init__(self, manager):
    self.requested = False
    self._manager = manager
    self._previous = None

  def __enter__(self):
    if jax.distributed.is_initialized():
      return self
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread: leave signals alone
      self._previous = None
    return self

  def reached(self, step: int) -> bool:
    """Whether to save and stop after `step` (call it after every step, on every process)."""
    self.requested = self.requested or self._manager.reached_preemption(step)
    return self.requested

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


class NonFiniteLossError(FloatingPointError):
  pass


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       hooks: Iterable[Callable[[int, TrainState], None]] = (),
                       mesh: jax.sharding.Mesh | None = None) -> TrainState:
  """Trains until config.optimizer.num_steps, resuming from the latest checkpoint in workdir.

  hooks: called as hook(step, state) after every step (tests use them to interrupt runs).
  Returns the final state.
  """
  validate_config(config)
  workdir = os.path.abspath(workdir)
  mesh = create_mesh() if mesh is None else mesh
  t = config.train
  num_steps = config.optimizer.num_steps

  pipeline = input_pipeline.create_pipeline(config.data, seed=config.seed)
  num_styles, image_size = pipeline.num_styles, pipeline.image_size
  model = inference.build_model(config, num_styles, image_size)
  evals = evaluators_lib.from_config(config.get("evals"))  # fail on a bad entry before training
  state = create_train_state(config, model, mesh, num_styles, image_size)
  train_step = make_train_step(config, model, mesh, num_styles)
  batch_sharding = NamedSharding(mesh, P(DATA_AXIS))
  train_iter = pipeline.train_iterator(t.batch_size)

  manager = checkpoints.create_manager(workdir, max_to_keep=t.max_checkpoints_to_keep)
  if manager.latest_step() is not None:
    state, start_step = checkpoints.restore(manager, checkpoints.abstract_like(state),
                                            train_iter)
    moved = checkpoints.set_aside_newer_steps(manager, workdir, start_step)
    if jax.process_index() == 0:
      if moved:
        print(f"WARNING: moved damaged checkpoint step(s) {moved} to "
              f"{os.path.join(workdir, checkpoints.DAMAGED_DIR)}; they will be retrained",
              flush=True)
      print(f"Resuming from step {start_step} in {workdir}", flush=True)
  else:
    start_step = 0
  write_run_info(workdir, config, pipeline)
  writer = metric_writers.MetricWriter(workdir)
  # One Trained for the whole run, so the evaluators' forward passes compile once.
  trained = inference.Trained(config=config, model=model, params=state.params,
                              num_styles=num_styles, image_size=image_size, step=start_step,
                              workdir=workdir, mesh=mesh, _data=inference.RunData(pipeline))

  def run_evals(step) -> list[str]:
    """Runs the evaluators due at `step`; returns one summary line each."""
    trained.params, trained.step = state.params, step
    lines = []
    for ev in evals:
      every = ev.every or t.eval_every
      if step % every and step != num_steps:
        continue
      result = ev.run(trained)
      writer.write_scalars(step, {f"{ev.name}_{k}": v for k, v in result.metrics.items()})
      writer.write_images(step, {f"{ev.name}/{k}": v for k, v in result.images.items()})
      if jax.process_index() == 0:
        evaluators_lib.write_result(evaluators_lib.eval_dir(workdir, ev.name), ev, step, result)
        if "samples" in result.images:  # the run's picture history
          for name in (f"step_{step:07d}.png", "latest.png"):
            imaging.save_png(os.path.join(workdir, "samples", name), result.images["samples"])
      lines.append(f"{ev.name}: " + (result.info.get("skipped") or ", ".join(
          f"{k} {v:.5g}" for k, v in result.metrics.items() if k != "num_examples")))
    return lines

  progress = _progress_bar(start_step, num_steps, enabled=t.progress_bar)
  say = progress.write if distributed.is_primary() else (lambda line: None)
  pending: list[dict] = []
  last_log = time.perf_counter()
  step = start_step
  try:
    with _StopOnSignal(manager) as stop:
      while step < num_steps:
        batch = input_pipeline.shard_batch(next(train_iter), batch_sharding)
        state, metrics = train_step(state, batch)
        step += 1
        pending.append(metrics)
        for hook in hooks:
          hook(step, state)
        if len(pending) > 1:  # check the previous step while this one runs
          _check_finite(pending[-2], step - 1, manager)
        if step % t.log_every == 0 or step == num_steps:
          _check_finite(pending[-1], step, manager)
          summary = _mean_metrics(pending)
          now = time.perf_counter()
          summary["images_per_second"] = len(pending) * t.batch_size / (now - last_log)
          last_log, pending = now, []
          writer.write_scalars(step, summary)
          progress.set_postfix(loss=f"{summary['loss']:.4g}", refresh=False)
        progress.update(1)
        for line in run_evals(step):
          say(f"step {step}: {line}")
        preempted = stop.reached(step)
        if step % t.checkpoint_every == 0 or step == num_steps or preempted:
          if pending:
            _check_finite(pending[-1], step, manager)
          checkpoints.save(manager, step, state, train_iter, force=preempted)
        if preempted:
          progress.write(f"SIGTERM{_of_processes()}: saved checkpoint at step {step}; rerun the "
                         "same command to resume.")
          break
  finally:
    manager.wait_until_finished()
    manager.close()
    writer.close()
    progress.close()
  return state


def _of_processes() -> str:
  return (f" (process {jax.process_index()} of {jax.process_count()})"
          if jax.process_count() > 1 else "")


def _progress_bar(start: int, total: int, enabled: bool):
  from tqdm import auto as tqdm  # pylint: disable=g-import-not-at-top
  return tqdm.tqdm(total=total, initial=start, unit="step", dynamic_ncols=True,
                   disable=not enabled or jax.process_index() != 0)


def _mean_metrics(metrics: list[dict]) -> dict[str, float]:
  fetched = jax.device_get(metrics)
  return {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}


def _check_finite(metrics: Mapping[str, jax.Array], step: int, manager) -> None:
  if float(metrics["finite"]) > 0.5:
    return
  manager.wait_until_finished()
  last = manager.latest_step()
  where = (f"the last good checkpoint (step {last}) in {manager.directory} is intact"
           if last is not None else "no checkpoint had been written yet")
  raise NonFiniteLossError(
      f"non-finite loss or gradient at step {step} (loss={float(metrics['loss'])}, "
      f"grad_norm={float(metrics['grad_norm'])}); training stopped and {where}. "
      "Lower config.optimizer.learning_rate, check the data for NaNs, then rerun to resume.")
