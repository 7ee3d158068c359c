"""Morphs between pairs of styles and how evenly they change: Figure 6, section 4.3.

Each morph interpolates the one-hot style input linearly from style a to style b over
`num_frames` frames at one view. With d_i the mean squared difference between frames i and
i+1 (images on white, [0, 1]), a smooth morph spreads its change evenly over the steps, while
one that snaps from a to b puts most of it into a few. Per morph:

  step_cv        = std(d) / mean(d)    (0 for perfectly even steps)
  max_step_ratio = max(d) / mean(d)    (1 for perfectly even steps, num_frames - 1 for a jump)

Metrics: their means over the pairs (lower is smoother), and total_change = mean Σ d_i.
Picture `morph`: one row per pair, every `show_every`-th frame. Arrays: frames (uint8
[P, F, S, S, 3]), step_differences (f64 [P, F - 1]).
"""

from __future__ import annotations

import numpy as np

from chairgen import imaging
from chairgen import sampling
from chairgen import style_space
from chairgen.evaluators import Result


step_differences = style_space.step_differences   # d_i, f64[F - 1]


def step_statistics(d: np.ndarray) -> dict[str, float]:
  """step_cv, max_step_ratio and total_change of one morph's step differences."""
  mean = max(d.mean(), 1e-12)
  return {"step_cv": float(d.std() / mean), "max_step_ratio": float(d.max() / mean),
          "total_change": float(d.sum())}


class Evaluator:

  def __init__(self, pairs=(), num_frames: int = 32, azimuth: float = 30.0,
               elevation: float = 20.0, show_every: int = 4):
    pairs = [tuple(int(s) for s in p) for p in pairs]
    if not pairs or any(len(p) != 2 or p[0] == p[1] for p in pairs):
      raise ValueError(f"pairs must be a non-empty list of [style_a, style_b] with a != b, "
                       f"got {pairs!r}")
    if num_frames < 3:
      raise ValueError(f"num_frames must be >= 3, got {num_frames}")
    self.pairs, self.num_frames = pairs, int(num_frames)
    self.azimuth, self.elevation, self.show_every = float(azimuth), float(elevation), show_every

  def run(self, trained, rng) -> Result:
    f = self.num_frames
    styles = np.concatenate([sampling.morph_styles(trained.num_styles, a, b, f)
                             for a, b in self.pairs])
    out = trained.generate(styles, np.full(len(styles), self.azimuth),
                           np.full(len(styles), self.elevation), rng=rng)
    frames = out.composite.reshape((len(self.pairs), f) + out.composite.shape[1:])
    diffs = np.stack([step_differences(m) for m in frames])
    stats = [step_statistics(d) for d in diffs]
    shown = sorted(set(range(0, f, self.show_every)) | {f - 1})
    return Result(
        metrics={k: float(np.mean([s[k] for s in stats])) for k in stats[0]},
        images={"morph": imaging.image_grid(frames[:, shown])},
        arrays={"frames": imaging.to_uint8(frames), "step_differences": diffs},
        info={"per_pair": [dict(s, pair=list(p)) for s, p in zip(stats, self.pairs)]})
