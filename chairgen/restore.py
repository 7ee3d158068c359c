"""Loading a trained generator by workdir, for sampling and the paper's experiments.

`load_trained(workdir)` rebuilds the model from `<workdir>/run_info.json` (written by training)
and restores the latest (or a given) checkpoint's parameters, without touching the dataset.
`Trained.generate` is the one way experiments draw images from style, view and θ.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Mapping

import jax
import ml_collections
import numpy as np

from chairgen import augment
from chairgen import checkpoints
from chairgen import imaging
from chairgen import input_pipeline
from chairgen import models
from chairgen import train


@dataclasses.dataclass(frozen=True)
class Generated:
  rgb: np.ndarray        # [N, S, S, 3] x·s, object on black, in [0, 1]
  mask: np.ndarray       # [N, S, S, 1] predicted mask probability
  composite: np.ndarray  # [N, S, S, 3] on white, as the paper's figures


@dataclasses.dataclass
class Trained:
  """A trained generator: config, module, parameters and what they were trained on."""
  config: ml_collections.ConfigDict
  model: Any
  params: Any
  num_styles: int
  image_size: int
  step: int
  workdir: str
  style_names: list[str] | None = None

  @property
  def variables(self) -> dict:
    return {"params": self.params}

  def one_hot(self, style_indices) -> np.ndarray:
    """Style vectors for model indices (rows of the identity)."""
    style_indices = np.asarray(style_indices)
    if np.any(style_indices < 0) or np.any(style_indices >= self.num_styles):
      raise ValueError(f"style indices must lie in [0, {self.num_styles}), got "
                       f"{style_indices.min()}..{style_indices.max()}")
    return np.eye(self.num_styles, dtype=np.float32)[style_indices]

  def generate(self, style_NxM, azimuth_N, elevation_N, theta_NxT=None, *,
               batch_size: int = 64, **apply_kwargs) -> Generated:
    """Draws N images. style rows are any vectors (one-hot, mixtures); angles in degrees.

    apply_kwargs go to the model (e.g. activation replacements, prior sampling).
    """
    style = np.asarray(style_NxM, np.float32)
    n = len(style)
    if style.shape != (n, self.num_styles):
      raise ValueError(f"style must have shape [N, {self.num_styles}], got {style.shape}")
    view = input_pipeline.view_encoding(np.broadcast_to(azimuth_N, (n,)).astype(np.float32),
                                        np.broadcast_to(elevation_N, (n,)).astype(np.float32))
    theta = augment.identity_theta(n) if theta_NxT is None else theta_NxT
    arrays = {"style": style, "view": np.asarray(view, np.float32),
              "theta": np.asarray(theta, np.float32)}
    rgb, mask = train.run_in_chunks(
        lambda style, view, theta: self._predict(style, view, theta, **apply_kwargs),
        arrays, batch_size, 1)
    return Generated(rgb=rgb, mask=mask, composite=imaging.composite_on_white(rgb, mask))

  def _predict(self, style, view, theta, **apply_kwargs):
    """Jitted forward pass; apply_kwargs (replacements, callables) are closed over."""
    predict = functools.partial(train.predict, self.model, self.config.model, **apply_kwargs)
    if apply_kwargs:
      return jax.jit(predict)(self.params, style, view, theta)
    if "_predict_jit" not in self.__dict__:
      self.__dict__["_predict_jit"] = jax.jit(predict)
    return self.__dict__["_predict_jit"](self.params, style, view, theta)


def read_run_info(workdir: str) -> Mapping[str, Any]:
  path = os.path.join(workdir, train.RUN_INFO)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} not found: {workdir!r} is not a chairgen training workdir (or training has "
        "not started yet). Train with `python -m experiments.train --workdir=...` first.")
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def load_trained(workdir: str, step: int | None = None) -> Trained:
  """Rebuilds the model of `workdir` and restores its parameters (latest step by default)."""
  info = read_run_info(workdir)
  config = ml_collections.ConfigDict(info["config"])
  num_styles, image_size = int(info["num_styles"]), int(info["image_size"])
  if int(info["theta_dim"]) != augment.THETA_DIM:
    raise ValueError(f"{workdir} was trained with θ of size {info['theta_dim']}, this chairgen "
                     f"has {augment.THETA_DIM}: use the chairgen version that trained it.")
  model = models.create_model(config.model, num_styles=num_styles, image_size=image_size,
                              theta_dim=augment.THETA_DIM)
  mesh = train.create_mesh()
  abstract = jax.eval_shape(
      lambda: train.create_train_state(config, model, mesh, num_styles, image_size))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract)
  state, step = checkpoints.restore_state_only(workdir, abstract, step)
  return Trained(config=config, model=model, params=state.params, num_styles=num_styles,
                 image_size=image_size, step=int(step), workdir=os.path.abspath(workdir),
                 style_names=info.get("style_names"))
