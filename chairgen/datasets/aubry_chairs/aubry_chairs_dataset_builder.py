"""aubry_chairs: the rendered chairs of Aubry et al. (CVPR 2014), preprocessed as in section 3.4.

Input (downloaded, or from `manual_dir`): `rendered_chairs.tar` or its extracted tree
`rendered_chairs/<32-hex id>/renders/image_KKK_pPPP_tTTT_rRRR.png` (RGB on white; p =
elevation, t = azimuth in degrees, r = camera distance). Each model gets ONE square crop box,
the union of the non-white bounding boxes of all its views plus a small border, so the object
keeps its scale across the turntable; outside the image the box is padded with white; the crop
is resized to the config's size. The mask marks pixels that differ from white by more than
`mask_threshold` (largest channel difference, of 255) at the source resolution, area-averaged
to the output size and kept where at least half an output pixel is covered.

Optional near-duplicate removal (`*_dedup` configs): see `model_descriptors` and
`select_models`; the kept list is written beside the data as `kept_models.txt`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from chairgen.datasets import common

URL = "https://www.di.ens.fr/willow/research/seeing3Dchairs/data/rendered_chairs.tar"
RENDER_RE = re.compile(r"^image_(\d{3})_p(\d{3})_t(\d{3})_r(\d{3})\.png$")
MODEL_RE = re.compile(r"^[0-9a-f]{32}$")
NAMES_MAT = "all_chair_names.mat"
PAPER_NUM_MODELS = 809  # section 3.4: 1393 models, 809 after removing near-duplicates
DESCRIPTOR_SIZE = 32
# Canonical views for the near-duplicate descriptor: lowest elevation, azimuths nearest to
# these angles (front, three-quarter, side), so that models are compared in three poses.
DESCRIPTOR_AZIMUTHS = (0.0, 45.0, 90.0)

FIX_TREE = (f"re-extract rendered_chairs.tar (download: {URL}) so that every model folder "
            "holds renders/image_KKK_pPPP_tTTT_rRRR.png, or remove the offending entry")


@dataclasses.dataclass(eq=False)
class AubryConfig(common.SizedConfig):
  """Preprocessing options; `image_size` is the output side in pixels.

  border_fraction: border added on each side of the per-model box, as a fraction of its
    longer side ("a small border", section 3.4).
  mask_threshold: a pixel is on the object when its largest channel difference from white
    (255) exceeds this value.
  dedup_threshold: keep a model only if its descriptor distance (mean squared difference of
    canonical silhouettes, in [0, 1]: about the fraction of silhouette pixels that differ) to
    every kept model exceeds this; None = no fixed threshold.
  dedup_target_count: instead of a fixed threshold, pick the threshold whose greedy pass keeps
    the number of models closest to this (809 = the paper's count).
  """

  border_fraction: float = 0.05
  mask_threshold: int = 10
  dedup_threshold: float | None = None
  dedup_target_count: int | None = None


class View(NamedTuple):
  path: epath.Path
  elevation: int
  azimuth: int


class Model(NamedTuple):
  name: str
  views: tuple[View, ...]  # in view_index order


# ----------------------------------------------------------------------------------------------
# Layout.


def parse_render_name(path: epath.Path) -> View:
  """View of `image_KKK_pPPP_tTTT_rRRR.png` (p = elevation, t = azimuth, degrees)."""
  m = RENDER_RE.match(path.name)
  if m is None:
    raise common.input_error(
        path, "unexpected file name in renders/ (expected image_KKK_pPPP_tTTT_rRRR.png)",
        FIX_TREE)
  return View(path, elevation=int(m.group(2)), azimuth=int(m.group(3)))


def _read_names_mat(path: epath.Path) -> list[str]:
  """`folder_names` of all_chair_names.mat (a MATLAB cell array of strings)."""
  import scipy.io  # pylint: disable=g-import-not-at-top

  try:
    mat = scipy.io.loadmat(os.fspath(path))
    cells = np.asarray(mat["folder_names"], dtype=object).ravel()
    return [str(np.asarray(c).ravel()[0]) if np.asarray(c).size else "" for c in cells]
  except Exception as e:  # scipy raises many types for a bad .mat
    raise common.input_error(path, f"cannot read folder_names ({type(e).__name__}: {e})",
                             FIX_TREE) from e


def find_models(root: epath.Path) -> list[Model]:
  """Validated models under `root` (the `rendered_chairs/` folder), sorted by name.

  Every model must hold the same (elevation, azimuth) grid; the view index is
  `elevation_index * num_azimuths + azimuth_index` over that grid, sorted by angle.
  """
  model_dirs = []
  for entry in common.visible_entries(root):
    if entry.is_dir():
      if not MODEL_RE.match(entry.name):
        raise common.input_error(
            entry, "unexpected folder (model folders are named by 32 lowercase hex digits)",
            FIX_TREE)
      model_dirs.append(entry)
    elif entry.name != NAMES_MAT:
      logging.warning("aubry_chairs: ignoring unexpected file %s", entry)
  if not model_dirs:
    raise common.input_error(root, "no model folders (<32-hex id>/renders/*.png) found",
                             FIX_TREE)
  if (root / NAMES_MAT).exists():
    present = {d.name for d in model_dirs}
    missing = [n for n in _read_names_mat(root / NAMES_MAT) if n and n not in present]
    if missing:
      raise common.input_error(
          root / missing[0], f"listed in {NAMES_MAT} but missing ({len(missing)} of the "
          "listed models are missing; the extraction is incomplete)", FIX_TREE)

  parsed = []
  for d in model_dirs:
    renders = d / "renders"
    if not renders.is_dir():
      raise common.input_error(renders, "missing renders/ folder", FIX_TREE)
    views = [parse_render_name(p) for p in common.visible_entries(renders)]
    if not views:
      raise common.input_error(renders, "renders/ folder is empty", FIX_TREE)
    parsed.append((d.name, views))

  elevations = sorted({v.elevation for _, vs in parsed for v in vs})
  azimuths = sorted({v.azimuth for _, vs in parsed for v in vs})
  grid = [(e, a) for e in elevations for a in azimuths]
  models = []
  for name, views in parsed:
    by_angle = {}
    for v in views:
      key = (v.elevation, v.azimuth)
      if key in by_angle:
        raise common.input_error(
            v.path, f"same elevation/azimuth as {by_angle[key].path.name}", FIX_TREE)
      by_angle[key] = v
    missing = [k for k in grid if k not in by_angle]
    if missing:
      raise common.input_error(
          root / name / "renders", f"{len(missing)} of {len(grid)} views missing, e.g. "
          f"elevation {missing[0][0]}, azimuth {missing[0][1]} (every model must have the "
          "same views)", FIX_TREE)
    models.append(Model(name, tuple(by_angle[k] for k in grid)))
  return models


def find_source(path: epath.Path) -> tuple[str, epath.Path] | None:
  """('tree', rendered_chairs dir) or ('tar', archive) found in `path`; None if neither."""
  if not path.is_dir():
    return None
  if (path / "rendered_chairs").is_dir():
    return "tree", path / "rendered_chairs"
  if (path / "rendered_chairs.tar").is_file():
    return "tar", path / "rendered_chairs.tar"
  if any(MODEL_RE.match(p.name) and p.is_dir() for p in path.iterdir()):
    return "tree", path  # manual_dir is the rendered_chairs folder itself
  return None


# ----------------------------------------------------------------------------------------------
# Preprocessing.


def _read_rgb(path: epath.Path) -> np.ndarray:
  """uint8[H, W, 3] on white (images with alpha are composited on white first)."""
  rgb, alpha = common.rgb_and_alpha(common.read_png(path, FIX_TREE))
  return rgb if alpha is None else common.composite_on_white(rgb, alpha)


def preprocess_model(model: Model, config: AubryConfig
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
  """[(uint8[S, S, 3], bool[S, S])] per view: one square crop box for the whole model."""
  rgbs = [_read_rgb(v.path) for v in model.views]
  fgs = [common.foreground(rgb, config.mask_threshold) for rgb in rgbs]
  box = common.union_box(common.bounding_box(fg) for fg in fgs)
  if box is None:
    raise common.input_error(
        model.views[0].path.parent, "every render is blank (nothing differs from white by "
        f"more than mask_threshold={config.mask_threshold})",
        "remove this model folder or check the renders")
  box = common.square_box(box, config.border_fraction)
  return [common.crop_resize(rgb, fg, box, config.image_size) for rgb, fg in zip(rgbs, fgs)]


def canonical_view_indices(model: Model) -> list[int]:
  """Indices of the descriptor views: lowest elevation, azimuths nearest DESCRIPTOR_AZIMUTHS."""
  low = min(v.elevation for v in model.views)
  candidates = [i for i, v in enumerate(model.views) if v.elevation == low]

  def angular(a, b):
    return abs((a - b + 180.0) % 360.0 - 180.0)

  return [min(candidates, key=lambda i: angular(model.views[i].azimuth, target))
          for target in DESCRIPTOR_AZIMUTHS]


def model_descriptor(model: Model, mask_threshold: int) -> np.ndarray:
  """float32[3 * 32 * 32]: silhouettes of the canonical views, each cropped to its own box.

  Silhouettes ignore colour, so colour-only variants coincide, and each view's own tight
  square crop makes the descriptor independent of scale and position.
  """
  parts = []
  for i in canonical_view_indices(model):
    fg = common.foreground(_read_rgb(model.views[i].path), mask_threshold)
    box = common.bounding_box(fg)
    if box is None:
      parts.append(np.zeros((DESCRIPTOR_SIZE, DESCRIPTOR_SIZE), np.float32))
      continue
    crop = common.crop_square(fg.astype(np.float32), common.square_box(box, 0.0), 0.0)
    parts.append(common.resize_coverage(crop, DESCRIPTOR_SIZE))
  return np.concatenate([p.ravel() for p in parts])


def pairwise_distances(desc: np.ndarray) -> np.ndarray:
  """float32[N, N] mean squared difference between the rows of float32[N, D].

  For silhouettes (coverage in [0, 1], nearly binary) this is about the fraction of
  descriptor pixels on which two models disagree.
  """
  desc = desc.astype(np.float64)
  sq = (desc * desc).sum(axis=1)
  d2 = sq[:, None] + sq[None, :] - 2.0 * desc @ desc.T
  np.fill_diagonal(d2, 0.0)
  return (np.maximum(d2, 0.0) / desc.shape[1]).astype(np.float32)


def greedy_keep(dist: np.ndarray, threshold: float) -> list[int]:
  """Indices kept when visiting in order and dropping any within `threshold` of a kept one."""
  kept: list[int] = []
  for i in range(dist.shape[0]):
    if not kept or dist[i, kept].min() > threshold:
      kept.append(i)
  return kept


def select_models(dist: np.ndarray, threshold: float | None, target_count: int | None
                  ) -> tuple[list[int], float]:
  """(kept indices, threshold used): a fixed threshold, or the one closest to a count.

  With `target_count`, the threshold is bisected over [0, max distance] (the kept count
  falls as the threshold grows) and the threshold whose count is closest is returned.
  """
  if threshold is not None:
    return greedy_keep(dist, threshold), float(threshold)
  if target_count is None:
    raise ValueError("give dedup_threshold or dedup_target_count")
  lo, hi = 0.0, float(dist.max()) + 1e-6
  best = (greedy_keep(dist, lo), lo)
  for _ in range(40):
    mid = 0.5 * (lo + hi)
    kept = greedy_keep(dist, mid)
    if abs(len(kept) - target_count) < abs(len(best[0]) - target_count):
      best = (kept, mid)
    if len(kept) == target_count:
      break
    if len(kept) > target_count:
      lo = mid
    else:
      hi = mid
  return best[0], float(best[1])


def write_selection(out_dir: epath.Path, models: Sequence[Model], kept: Sequence[int],
                    dist: np.ndarray, threshold: float, config: AubryConfig) -> None:
  """`kept_models.txt` (one name per line) and `removed_models.tsv` beside the data."""
  out_dir.mkdir(parents=True, exist_ok=True)
  header = [
      f"# aubry_chairs/{config.name}: near-duplicate filtering kept {len(kept)} of "
      f"{len(models)} models.",
      f"# descriptor: silhouettes of views at azimuths ~{DESCRIPTOR_AZIMUTHS} (lowest "
      f"elevation), {DESCRIPTOR_SIZE}x{DESCRIPTOR_SIZE}; distance: mean squared difference.",
      f"# threshold: {threshold:.6f} (dedup_threshold={config.dedup_threshold}, "
      f"dedup_target_count={config.dedup_target_count}); greedy, in name order.",
  ]
  (out_dir / "kept_models.txt").write_text(
      "\n".join(header + [models[i].name for i in kept]) + "\n")
  kept_arr = np.asarray(kept)
  kept_set = set(kept)
  rows = ["model_name\tnearest_kept_model\tdistance"]
  for i in range(len(models)):
    if i not in kept_set:
      j = int(kept_arr[np.argmin(dist[i, kept_arr])])
      rows.append(f"{models[i].name}\t{models[j].name}\t{dist[i, j]:.6f}")
  (out_dir / "removed_models.tsv").write_text("\n".join(rows) + "\n")


# ----------------------------------------------------------------------------------------------
# Builder.


def _configs() -> list[AubryConfig]:
  configs = []
  for size in (64, 128, 256):
    configs.append(AubryConfig(
        name=str(size), image_size=size,
        description=f"All models, {size}x{size} px."))
  for size in (64, 128, 256):
    configs.append(AubryConfig(
        name=f"{size}_dedup", image_size=size, dedup_target_count=PAPER_NUM_MODELS,
        description=(f"Near-duplicates removed (threshold chosen to keep about "
                     f"{PAPER_NUM_MODELS} models, as the paper), {size}x{size} px.")))
  return configs


class Builder(common.TurntableBuilder):
  """Aubry et al.'s rendered chairs: 62 views (31 azimuths x elevations 20, 30) per model."""

  URL = URL
  BUILDER_CONFIGS = _configs()
  DEFAULT_BUILDER_CONFIG_NAME = "128"
  HOMEPAGE = "https://www.di.ens.fr/willow/research/seeing3Dchairs/"
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Optional: without a manual_dir the builder downloads {URL}.
  Otherwise place in manual_dir either `rendered_chairs.tar`, or the extracted
  `rendered_chairs/` folder (`rendered_chairs/<32-hex id>/renders/image_KKK_pPPP_tTTT_r096.png`,
  e.g. written by `tools/make_turntables.py --layout=aubry`), or point manual_dir at the
  `rendered_chairs/` folder itself.
  """

  def _source_root(self, dl_manager: tfds.download.DownloadManager) -> epath.Path:
    """The `rendered_chairs/` folder: from manual_dir, else downloaded and extracted."""
    manual, explicit = common.given_manual_dir(dl_manager, self.requested_manual_dir)
    found = find_source(manual)
    if found is None and explicit:
      fix = ("put rendered_chairs.tar or the extracted rendered_chairs/ folder there, or "
             "leave --manual_dir out to download it")
      common.require_dir(manual, "manual_dir", fix)
      names = ", ".join(p.name for p in common.visible_entries(manual)[:5])
      raise common.input_error(manual, "manual_dir holds neither rendered_chairs.tar nor a "
                               f"rendered_chairs/ folder (found: {names})", fix)
    if found is None:
      found = ("tar", epath.Path(dl_manager.download(self.URL)))
    kind, path = found
    if kind == "tar":
      target = (epath.Path(dl_manager.download_dir) / "extracted"
                / f"aubry_rendered_chairs_{path.stat().length}")
      extracted = common.safe_extract_tar(
          path, target, fix=f"download rendered_chairs.tar again from {URL}")
      found = find_source(extracted)
      if found is None or found[0] != "tree":
        raise common.input_error(path, "archive has no rendered_chairs/ folder",
                                 f"download it again from {URL}")
      path = found[1]
    return path

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config: AubryConfig = self.builder_config
    models = find_models(self._source_root(dl_manager))
    if config.dedup_threshold is not None or config.dedup_target_count is not None:
      desc = np.stack(list(common.ordered_map(
          lambda m: model_descriptor(m, config.mask_threshold), models,
          common.default_num_threads())))
      dist = pairwise_distances(desc)
      kept, threshold = select_models(dist, config.dedup_threshold, config.dedup_target_count)
      write_selection(epath.Path(self.data_dir), models, kept, dist, threshold, config)
      models = [models[i] for i in kept]
    return {"train": self._generate_examples(models)}

  def _generate_examples(self, models: Sequence[Model]) -> Iterator[tuple[str, dict]]:
    config: AubryConfig = self.builder_config
    processed = common.ordered_map(
        lambda m: preprocess_model(m, config), models, common.default_num_threads())
    for model_index, (model, views) in enumerate(zip(models, processed)):
      for view_index, (view, (image, mask)) in enumerate(zip(model.views, views)):
        yield f"{model.name}_{view_index:03d}", common.make_example(
            image=image, mask=mask, model_index=model_index, model_name=model.name,
            class_name="chair", azimuth=view.azimuth, elevation=view.elevation,
            view_index=view_index)
