"""Inference from a trained run, independent of the training loop.

```python
trained = inference.load(workdir)                     # parameters only, latest step
out = trained.generate(style_NxM, azimuth_N, elevation_N, theta_NxT=None,
                       rng=key, replace={"fc5": ...}, capture=("fc4",))
out.rgb, out.mask, out.composite, out.activations["fc4"]
data = trained.data                                   # the run's split and ground truth
data.split.train, data.split.test                     # example ids, as trained on
image, mask = data.ground_truth(style_N, azimuth_N, elevation_N)
```

`load` rebuilds the model from `<workdir>/run_info.json` and restores only the `params` of a
checkpoint (no Adam moments, no optimizer, no import of `chairgen.train`). The data is opened
lazily, from the run's own data config and seed, and checked against the split fingerprint
that training wrote, so a changed dataset fails loudly instead of giving wrong ground truth.

`generate` draws any number of images in fixed-size chunks (padded, sharded over the mesh, which
may span several processes: every process passes the same inputs and gets every image back):
one compilation per structure of `replace` / `capture` / `vae_z`, with replacement arrays
passed as traced arguments. A replacement array that has a batch axis (as many dimensions as
the layer's output) is per-example and is chunked with the batch; one without is broadcast to
every image. Chunk k uses the key `fold_in(rng, k)`, so VAE samples differ between chunks and
between calls with different keys, and the same key reproduces them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from chairgen import augment
from chairgen import checkpoints
from chairgen import distributed
from chairgen import imaging
from chairgen import input_pipeline
from chairgen import mesh as mesh_lib
from chairgen import models
from chairgen import splits
from chairgen.models import activations as activations_lib

RUN_INFO = "run_info.json"
VAE_Z = ("mean", "posterior", "prior")  # z = posterior mean, z ~ q(z|c), z ~ N(0, I)


# ----------------------------------------------------------------------------- run info

def read_run_info(workdir: str) -> dict[str, Any]:
  """The run's `run_info.json`, with an error that says what to do when it is missing."""
  path = os.path.join(workdir, RUN_INFO)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} not found: {workdir!r} is not a chairgen training workdir (or training has "
        "not started yet). Train with `python -m experiments.train --workdir=...` first.")
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path} is not valid JSON ({e}): the run's metadata is corrupt; "
                     "rerun training in that workdir to rewrite it.") from e


def split_fingerprint(split) -> str:
  """A short digest of a split's train and test example ids (written to run_info.json)."""
  h = hashlib.sha256()
  for ids in (split.train, split.test):
    h.update(np.asarray(ids, np.int64).tobytes())
    h.update(b"|")
  return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- data

@dataclasses.dataclass(frozen=True)
class RunSplit:
  """What a run trained and tested on: example ids and the styles of each set."""
  train: np.ndarray          # int64 example ids, sorted
  test: np.ndarray           # int64 example ids, sorted
  train_styles: np.ndarray   # int32 style of each training id
  test_styles: np.ndarray    # int32 style of each test id (-1: a model the net never saw)
  target_styles: np.ndarray  # by_style: styles of the target set (else empty)


class RunData:
  """A run's split and ground-truth views, rebuilt from its data config and seed."""

  def __init__(self, pipeline: input_pipeline.Pipeline, expected_fingerprint: str | None = None,
               what: str = "this run"):
    if expected_fingerprint and split_fingerprint(pipeline.split) != expected_fingerprint:
      raise ValueError(
          f"the data of {what} no longer gives the split it was trained on (fingerprint "
          f"{split_fingerprint(pipeline.split)} != {expected_fingerprint}): the dataset or its "
          "build changed. Point config.data.data_dir at the dataset the run was trained on, "
          "or retrain.")
    self.pipeline = pipeline
    meta = pipeline.metadata
    styles = pipeline.style_lookup[meta.model]
    split = pipeline.split
    self.split = RunSplit(train=split.train, test=split.test, train_styles=styles[split.train],
                          test_styles=styles[split.test],
                          target_styles=np.asarray(pipeline.target_style_ids, np.int32))
    self._styles = styles
    self._index_cache: dict[tuple[int, float, float], int] | None = None

  @property
  def _index(self) -> dict[tuple[int, float, float], int]:
    """(style, azimuth, elevation) -> example id, built on the first lookup (training, which
    makes a RunData for its evaluators, may never need it)."""
    if self._index_cache is None:
      meta = self.pipeline.metadata
      self._index_cache = {
          (int(s), round(float(a), 3), round(float(e), 3)): i
          for i, (s, a, e) in enumerate(zip(self._styles, meta.azimuth, meta.elevation))
          if s >= 0}
    return self._index_cache

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, expected_fingerprint=None,
                  what: str = "this run") -> "RunData":
    pipeline = input_pipeline.create_pipeline(config.data, seed=config.seed)
    return cls(pipeline, expected_fingerprint, what)

  @property
  def image_size(self) -> int:
    return self.pipeline.image_size

  def example_ids(self, style_N, azimuth_N, elevation_N) -> np.ndarray:
    """Example ids of the views (style, azimuth, elevation in degrees); error if one is absent."""
    style, az, el = np.broadcast_arrays(np.asarray(style_N), np.asarray(azimuth_N, np.float64),
                                        np.asarray(elevation_N, np.float64))
    ids = []
    for s, a, e in zip(style.ravel(), az.ravel(), el.ravel()):
      key = (int(s), round(float(a) % 360.0, 3), round(float(e), 3))
      if key not in self._index:
        raise KeyError(f"no ground-truth view of style {key[0]} at azimuth {key[1]:g}, "
                       f"elevation {key[2]:g} in this run's data; views exist only on the "
                       "dataset's grid (see RunData.views_of).")
      ids.append(self._index[key])
    return np.asarray(ids, np.int64)

  def style_classes(self) -> np.ndarray:
    """The class name ('chair', 'table', 'car') of every style, in style order."""
    meta = self.pipeline.metadata
    styles, first = np.unique(self._styles, return_index=True)
    names = np.asarray(splits.CLASS_NAMES, dtype=object)[meta.class_id[first]]
    return names[styles >= 0]

  def views_of(self, style: int) -> np.ndarray:
    """[(azimuth, elevation)] of every stored view of a style, sorted by (elevation, azimuth)."""
    meta = self.pipeline.metadata
    ids = np.flatnonzero(self._styles == style)
    order = np.lexsort((meta.azimuth[ids], meta.elevation[ids]))
    return np.stack([meta.azimuth[ids][order], meta.elevation[ids][order]], axis=1)

  def examples(self, ids) -> dict[str, np.ndarray]:
    """Batch-format examples (uint8 image on white, {0,1} mask, style, view, angles)."""
    return self.pipeline.load_batch(np.asarray(ids, np.int64))

  def keypoints(self, ids) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pixel (x, y) f32[K, 2], visible bool[K]) of stored examples (procedural data only;
    K = 0 elsewhere); names and order are the procedural family's (docs/data.md)."""
    return self.pipeline.load_keypoints(np.asarray(ids, np.int64))

  def ground_truth(self, style_N, azimuth_N, elevation_N) -> tuple[np.ndarray, np.ndarray]:
    """(image on white f32[N, S, S, 3] in [0, 1], mask f32[N, S, S, 1]) of stored views."""
    batch = self.examples(self.example_ids(style_N, azimuth_N, elevation_N))
    return batch["image"].astype(np.float32) / 255.0, batch["mask"].astype(np.float32)


# ----------------------------------------------------------------------------- generation

@dataclasses.dataclass(frozen=True)
class Generated:
  rgb: np.ndarray        # [N, S, S, 3] x·s, object on black, in [0, 1]
  mask: np.ndarray       # [N, S, S, 1] predicted mask probability
  composite: np.ndarray  # [N, S, S, 3] on white, as the paper's figures
  activations: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def apply_kwargs_for(model_config, vae_z: str) -> dict:
  """Model keywords for a way of choosing the VAE's z (see VAE_Z)."""
  if vae_z not in VAE_Z:
    raise ValueError(f"vae_z must be one of {VAE_Z}, got {vae_z!r}")
  if not model_config.get("vae", False):
    if vae_z != "mean":
      raise ValueError(f"vae_z={vae_z!r} needs a VAE (model.vae=True); this net is "
                       "deterministic: replace 'style_fc2' to feed it other style features")
    return {}
  return {"mean": {"deterministic": True}, "posterior": {}, "prior": {"sample_prior": True}
          }[vae_z]


def predict(model, model_config, params, style, view, theta, key, *, replace=None,
            capture=(), vae_z: str = "mean"):
  """(rgb clipped to [0, 1], mask probability, {layer: activation}) for one batch."""
  kwargs = dict(apply_kwargs_for(model_config, vae_z), rngs={"sample": key}, replace=replace)
  if capture:
    outputs, acts = activations_lib.apply(model, {"params": params}, style, view, theta,
                                          capture=tuple(capture), **kwargs)
  else:
    outputs, acts = model.apply({"params": params}, style, view, theta, **kwargs), {}
  return (jnp.clip(outputs["rgb"], 0.0, 1.0), models.mask_probability(outputs, model_config),
          acts)


@dataclasses.dataclass
class Trained:
  """A trained generator: config, module, parameters, and (lazily) the data it was trained on."""
  config: ml_collections.ConfigDict
  model: Any
  params: Any
  num_styles: int
  image_size: int
  step: int
  workdir: str | None = None
  style_names: list[str] | None = None
  run_info: Mapping[str, Any] | None = None
  mesh: jax.sharding.Mesh | None = None
  _data: RunData | None = None

  def __post_init__(self):
    self.mesh = self.mesh or mesh_lib.create_mesh()
    self._compiled: dict[Any, Callable] = {}
    self._layer_shapes: dict[str, tuple[int, ...]] | None = None

  # -- data ----------------------------------------------------------------------------------

  @property
  def data(self) -> RunData:
    """The run's split and ground truth (opens the dataset on first use)."""
    if self._data is None:
      info = self.run_info or {}
      self._data = RunData.from_config(self.config, info.get("split_fingerprint"),
                                       what=self.workdir or "this run")
    return self._data

  @property
  def seed(self) -> int:
    return int(self.config.seed)

  def one_hot(self, style_indices) -> np.ndarray:
    """Style vectors for model indices (rows of the identity)."""
    return input_pipeline.style_encoding(np.asarray(style_indices), self.num_styles)

  # -- generation ----------------------------------------------------------------------------

  def layer_shapes(self) -> dict[str, tuple[int, ...]]:
    """Each named layer's output shape without the batch axis."""
    if self._layer_shapes is None:
      inputs = dummy_inputs(self.num_styles)
      _, acts = jax.eval_shape(
          lambda p: activations_lib.apply(self.model, {"params": p}, *inputs,
                                          rngs={"sample": jax.random.key(0)},
                                          **apply_kwargs_for(self.config.model, "mean")),
          self.params)
      self._layer_shapes = {k: tuple(v.shape[1:]) for k, v in acts.items()}
    return self._layer_shapes

  def generate(self, style_NxM, azimuth_N, elevation_N, theta_NxT=None, *, rng=None,
               replace: Mapping[str, Any] | None = None, capture: Sequence[str] | None = None,
               vae_z: str = "mean", batch_size: int = 64) -> Generated:
    """Draws N images. Style rows are any vectors (one-hot, mixtures); angles in degrees.

    rng: a PRNG key; needed when vae_z is 'posterior' or 'prior' (VAE sampling).
    replace: {layer: array or callable} (see `chairgen.models.activations`); arrays with a
      batch axis of N rows are per-example, others are broadcast.
    capture: layer names whose activations are returned in `Generated.activations`.
    """
    style = np.asarray(style_NxM, np.float32)
    n = len(style)
    if style.ndim != 2 or style.shape != (n, self.num_styles):
      raise ValueError(f"style must have shape [N, {self.num_styles}], got {style.shape}")
    if n == 0:
      raise ValueError("generate needs at least one image (N = 0)")
    view = input_pipeline.view_encoding(np.broadcast_to(azimuth_N, (n,)).astype(np.float32),
                                        np.broadcast_to(elevation_N, (n,)).astype(np.float32))
    theta = (np.asarray(augment.identity_theta(n)) if theta_NxT is None
             else np.asarray(theta_NxT, np.float32))
    if theta.shape != (n, augment.THETA_DIM):
      raise ValueError(f"theta must have shape [N, {augment.THETA_DIM}] = "
                       f"[{n}, {augment.THETA_DIM}], got {theta.shape}")
    if vae_z != "mean" and rng is None:
      raise ValueError(f"vae_z={vae_z!r} samples z: pass rng=jax.random.key(...)")
    apply_kwargs_for(self.config.model, vae_z)  # validates vae_z for this net
    capture = tuple(capture or ())
    activations_lib.check_names(capture, self.model.layer_names(), "capture")
    replace = dict(replace or {})
    activations_lib.check_names(list(replace), self.model.layer_names(), "replace")

    per_example, broadcast, callables = {}, {}, {}
    shapes = self.layer_shapes() if any(not callable(v) for v in replace.values()) else {}
    for name, value in replace.items():
      if callable(value):
        callables[name] = value
        continue
      value = np.asarray(value, np.float32)
      if value.ndim == len(shapes[name]) + 1 and value.shape[0] == n and n > 1:
        per_example[name] = value
      elif value.ndim == len(shapes[name]) + 1 and value.shape[0] not in (1, n):
        raise ValueError(f"replacement for layer {name!r} has {value.shape[0]} rows; "
                         f"expected {n} (one per image) or 1 (shared)")
      else:
        broadcast[name] = value
    fn = self._compiled_forward(tuple(sorted(per_example)), tuple(sorted(broadcast)),
                                tuple(sorted((k, id(v)) for k, v in callables.items())),
                                callables, capture, vae_z)
    key = jax.random.key(0) if rng is None else rng
    replicated = mesh_lib.replicated(self.mesh)
    sharded = mesh_lib.batch_sharded(self.mesh)
    broadcast = jax.tree.map(lambda v: distributed.global_array(v, replicated), broadcast)
    chunk = max(self.mesh.size, (batch_size // self.mesh.size) * self.mesh.size)
    chunk = min(chunk, -(-n // self.mesh.size) * self.mesh.size)
    arrays = {"style": style, "view": np.asarray(view, np.float32), "theta": theta,
              "replace": per_example}
    outputs = []
    for index, start in enumerate(range(0, n, chunk)):
      part = jax.tree.map(lambda v: v[start:start + chunk], arrays)
      size = len(part["style"])
      if size < chunk:  # pad the last chunk so every call has one shape
        part = jax.tree.map(
            lambda v: np.concatenate([v, np.repeat(v[-1:], chunk - size, axis=0)]), part)
      part = jax.tree.map(lambda v: distributed.global_array(v, sharded), part)
      result = fn(self.params, part["style"], part["view"], part["theta"],
                  jax.random.fold_in(key, index), part["replace"], broadcast)
      outputs.append(jax.tree.map(lambda x: x[:size], distributed.to_host(result)))
    rgb, mask, acts = jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)
    return Generated(rgb=rgb, mask=mask, composite=imaging.composite_on_white(rgb, mask),
                     activations=dict(acts))

  def _compiled_forward(self, per_example_names, broadcast_names, callable_ids, callables,
                        capture, vae_z) -> Callable:
    key = (per_example_names, broadcast_names, callable_ids, capture, vae_z)
    if key not in self._compiled:
      def forward(params, style, view, theta, rng, per_example, broadcast):
        replace = dict(callables, **per_example, **broadcast)
        return predict(self.model, self.config.model, params, style, view, theta, rng,
                       replace=replace or None, capture=capture, vae_z=vae_z)
      self._compiled[key] = jax.jit(forward)
    return self._compiled[key]


# ----------------------------------------------------------------------------- loading

def dummy_inputs(num_styles: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(style, view, θ) of one image, for shape inference (init, eval_shape)."""
  return (jnp.zeros((1, num_styles)), jnp.zeros((1, models.variants.VIEW_DIM)),
          augment.identity_theta(1))


def build_model(config: ml_collections.ConfigDict, num_styles: int, image_size: int):
  """The generator of a training config (the one place a config becomes a model)."""
  return models.create_model(config.model, num_styles=num_styles, image_size=image_size,
                             theta_dim=augment.THETA_DIM)


def abstract_params(model, num_styles: int, mesh: jax.sharding.Mesh):
  """ShapeDtypeStructs of the model's parameters, replicated over the mesh."""
  inputs = dummy_inputs(num_styles)
  shapes = jax.eval_shape(
      lambda: model.init({"params": jax.random.key(0), "sample": jax.random.key(1)},
                         *inputs)["params"])
  sharding = mesh_lib.replicated(mesh)
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                      shapes)


def available_steps(workdir: str) -> list[int]:
  """Steps of the complete checkpoints in a workdir, ascending."""
  directory = checkpoints.checkpoint_dir(workdir)
  if not os.path.isdir(directory):
    return []
  with ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(create=False)
                             ) as manager:
    return sorted(manager.all_steps())


def load(workdir: str, step: int | None = None, *, mesh: jax.sharding.Mesh | None = None
         ) -> Trained:
  """Loads the parameters of a trained run, nothing else.

  step=None: the newest complete step that reads (a damaged newer one is skipped with a
  warning); `Trained.step` says which was loaded.
  """
  info = read_run_info(workdir)
  config = ml_collections.ConfigDict(info["config"])
  num_styles, image_size = int(info["num_styles"]), int(info["image_size"])
  if int(info["theta_dim"]) != augment.THETA_DIM:
    raise ValueError(f"{workdir} was trained with θ of size {info['theta_dim']}, this chairgen "
                     f"has {augment.THETA_DIM}: use the chairgen version that trained it.")
  mesh = mesh or mesh_lib.create_mesh()
  model = build_model(config, num_styles, image_size)
  steps = available_steps(workdir)
  if not steps:
    raise FileNotFoundError(
        f"{workdir!r} has no complete checkpoint under {checkpoints.CHECKPOINT_DIR}/: training "
        "has not saved one yet. Train (or resume) with `python -m experiments.train "
        f"--workdir={workdir}` first.")
  if step is not None and step not in steps:
    raise ValueError(f"{workdir!r} has no checkpoint at step {step}; it has steps "
                     f"{steps} (checkpoints keep the last few; pass one of them, or none for "
                     "the latest).")
  params, step = checkpoints.restore_params(workdir, abstract_params(model, num_styles, mesh),
                                            step)
  return Trained(config=config, model=model, params=params, num_styles=num_styles,
                 image_size=image_size, step=int(step), workdir=os.path.abspath(workdir),
                 style_names=info.get("style_names"), run_info=info, mesh=mesh)
