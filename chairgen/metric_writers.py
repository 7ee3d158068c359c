"""Metric writers: TensorBoard event files (via tensorboardX, no TensorFlow), a JSON-lines file.

clu.metric_writers imports TensorFlow at import time, so chairgen keeps the same small
interface (`write_scalars`, `write_images`, `flush`, `close`) on top of tensorboardX.
Only process 0 writes; other processes get a writer that drops everything.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

import jax
import numpy as np


class MetricWriter:
  """Writes scalars to `<workdir>/tensorboard` and `<workdir>/metrics.jsonl`."""

  def __init__(self, workdir: str, *, enabled: bool | None = None):
    self._enabled = jax.process_index() == 0 if enabled is None else enabled
    self._tb = None
    self._jsonl = None
    if self._enabled:
      os.makedirs(workdir, exist_ok=True)
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
      self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", encoding="utf-8")

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    if not self._enabled:
      return
    record = {"step": int(step)}
    for name, value in scalars.items():
      value = float(np.asarray(value))
      record[name] = value
      self._tb.add_scalar(name, value, int(step))
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """images: name -> uint8 [H, W, 3]."""
    if not self._enabled:
      return
    for name, image in images.items():
      self._tb.add_image(name, np.asarray(image), int(step), dataformats="HWC")

  def flush(self) -> None:
    if self._enabled:
      self._tb.flush()
      self._jsonl.flush()

  def close(self) -> None:
    if self._enabled:
      self._tb.close()
      self._jsonl.close()
      self._enabled = False


def read_metrics(workdir: str) -> list[dict]:
  """Reads `<workdir>/metrics.jsonl` back (one dict per write)."""
  path = os.path.join(workdir, "metrics.jsonl")
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]
