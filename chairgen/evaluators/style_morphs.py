"""Two-way style morphs, sorted by a measured quality: Figures 12, 13 and 15 (section 5.4).

Pairs are `pairs` ([[a, b], ...]) or `num_pairs` drawn with the evaluator's key from the
training styles; with `classes` [class_a, class_b] (e.g. ['chair', 'table'], Figure 15) a is
drawn among styles of class_a and b among those of class_b. Each morph moves the style input
linearly from one-hot a to one-hot b over `num_frames` frames at one view: the stored training
view nearest to (`azimuth`, `elevation`), so that every frame has training images to compare
with. The quality measure is `style_space.morph_quality` (lower is better):

  jumpiness  0 when the change is spread evenly over the steps, 1 when it happens in one;
  stray      mean RMS distance of the intermediate frames to their nearest training image,
             relative to the RMS distance between the two end frames;
  score      jumpiness + stray.

The same measure of the pixel cross-fade of the two end frames is the baseline, on the same
end frames: a cross-fade is perfectly even (jumpiness 0); were its end frames training images,
its frames would lie at most min(t, 1 - t) D from one (stray <= 0.25), and end frames that are
themselves r from the nearest training image (a blurry net) add up to about r / D to every
frame. A morph that snaps from a to b has stray ≈ that of its end frames and jumpiness ≈ 1.

Metrics: means of jumpiness, stray, score; crossfade_score (the baseline's mean score) and
beats_crossfade (fraction of morphs scoring below their cross-fade). Picture `morphs`: one row
per morph, best on top, `show` frames evenly spaced (first and last included). Arrays: frames
(uint8 [P, show, S, S, 3], rows sorted), pairs, score, jumpiness, stray, crossfade_score (in
the same order), view ([azimuth, elevation]).
"""

from __future__ import annotations

import numpy as np

from chairgen import imaging
from chairgen import sampling
from chairgen import style_space
from chairgen.evaluators import Result


class Evaluator:

  def __init__(self, pairs=(), num_pairs: int = 8, classes=None, num_frames: int = 33,
               show: int = 9, azimuth: float = 34.0, elevation: float = 20.0):
    self.pairs = [tuple(int(s) for s in p) for p in pairs]
    if any(len(p) != 2 or p[0] == p[1] for p in self.pairs):
      raise ValueError(f"pairs must be [[style_a, style_b], ...] with a != b, got {pairs!r}")
    if not self.pairs and num_pairs < 1:
      raise ValueError(f"num_pairs must be >= 1 when no pairs are given, got {num_pairs}")
    if classes is not None and len(classes) != 2:
      raise ValueError(f"classes must be [class_a, class_b] or None, got {classes!r}")
    if num_frames < 3 or not 2 <= show <= num_frames:
      raise ValueError(f"need num_frames >= 3 and 2 <= show <= num_frames, got {num_frames}, "
                       f"{show}")
    self.num_pairs, self.classes = int(num_pairs), classes and tuple(classes)
    self.num_frames, self.show = int(num_frames), int(show)
    self.azimuth, self.elevation = float(azimuth), float(elevation)

  def choose_pairs(self, trained, rng) -> list[tuple[int, int]]:
    """The given pairs, or num_pairs distinct (a, b) drawn with the key (a != b)."""
    if self.pairs:
      return self.pairs
    a_pool = style_space.training_styles(trained, self.classes[0] if self.classes else None)
    b_pool = style_space.training_styles(trained, self.classes[1] if self.classes else None)
    candidates = np.asarray([(a, b) for a in a_pool for b in b_pool if a != b], np.int64)
    if self.classes is None:   # one class: an unordered pair is one morph
      candidates = candidates[candidates[:, 0] < candidates[:, 1]]
    chosen = style_space.choose(rng, np.arange(len(candidates)),
                                min(self.num_pairs, len(candidates)))
    return [tuple(int(s) for s in candidates[i]) for i in chosen]

  def run(self, trained, rng) -> Result:
    bank = style_space.TrainingViews(trained.data)
    az, el = bank.nearest_view(self.azimuth, self.elevation)
    pairs = self.choose_pairs(trained, rng)
    f = self.num_frames
    styles = np.concatenate([sampling.morph_styles(trained.num_styles, a, b, f) for a, b in pairs])
    out = trained.generate(styles, np.full(len(styles), az), np.full(len(styles), el), rng=rng)
    frames = out.composite.reshape((len(pairs), f) + out.composite.shape[1:])
    nearest = bank.nearest(out.composite, az, el).distance.reshape(len(pairs), f)
    ours = [style_space.morph_quality(m, d) for m, d in zip(frames, nearest)]
    fades = [style_space.crossfade(m[0], m[-1], f) for m in frames]
    baseline = [style_space.morph_quality(c, bank.nearest(c, az, el).distance) for c in fades]
    score = np.asarray([q["score"] for q in ours])
    order = np.argsort(score, kind="stable")
    shown = np.unique(np.round(np.linspace(0, f - 1, self.show)).astype(int))
    sorted_frames = frames[order][:, shown]
    fade_score = np.asarray([q["score"] for q in baseline])
    return Result(
        metrics={"jumpiness": float(np.mean([q["jumpiness"] for q in ours])),
                 "stray": float(np.mean([q["stray"] for q in ours])),
                 "score": float(score.mean()), "crossfade_score": float(fade_score.mean()),
                 "beats_crossfade": float(np.mean(score < fade_score)),
                 "num_pairs": float(len(pairs))},
        images={"morphs": imaging.image_grid(sorted_frames)},
        arrays={"frames": imaging.to_uint8(sorted_frames),
                "pairs": np.asarray(pairs, np.int32)[order], "score": score[order],
                "jumpiness": np.asarray([q["jumpiness"] for q in ours])[order],
                "stray": np.asarray([q["stray"] for q in ours])[order],
                "crossfade_score": fade_score[order], "view": np.asarray([az, el])},
        info={"view": [az, el], "pairs_best_first": [list(map(int, pairs[i])) for i in order]})
