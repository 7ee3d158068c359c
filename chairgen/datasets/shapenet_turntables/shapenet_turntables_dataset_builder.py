"""shapenet_turntables: turntables in the 3D-R2N2 `ShapeNetRendering` layout, from manual_dir.

Layout (per model): `<synset>/<model id>/rendering/NN.png` (RGBA; alpha is the mask),
`renderings.txt` (one PNG name per line) and `rendering_metadata.txt` (one line per PNG, same
order: azimuth, elevation, in-plane rotation, distance, field of view). This is the layout of
3D-R2N2's public renders, of a user's own ShapeNet renders, and of the project's procedural
turntables (`tools/make_turntables.py --layout=r2n2`). Synsets: chair 03001627, table
04379243, car 02958343.

Images are composited on white; the mask is the alpha coverage, area-averaged to the output
size and kept where at least half a pixel is covered. By default the whole frame is resized
(the paper's renders are framed at a fixed camera distance); `crop_per_model=True` applies
the aubry_chairs per-model square crop instead.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from chairgen.datasets import common

SYNSETS = {"chairs": "03001627", "tables": "04379243", "cars": "02958343"}
RENDER_RE = re.compile(r"^\d+\.png$")
FIX_TREE = ("re-render or re-copy this model so that <synset>/<model>/rendering/ holds "
            "NN.png (RGBA), renderings.txt and rendering_metadata.txt (5 numbers per line), "
            "or remove the model folder")
FIX_MANUAL = ("point --manual_dir at a folder holding <synset>/<model>/rendering/ (e.g. "
              "ShapeNetRendering/ of 3D-R2N2, or the output of "
              "tools/make_turntables.py --layout=r2n2); synsets: " +
              ", ".join(f"{k} {v}" for k, v in SYNSETS.items()))


@dataclasses.dataclass(eq=False)
class ShapeNetConfig(common.SizedConfig):
  """families: which synsets (in order; model_index runs over them in this order).

  crop_per_model: crop each model to the union of its views' alpha boxes (see aubry_chairs)
    instead of resizing the whole frame. border_fraction: border for that crop.
  """

  families: tuple[str, ...] = ("chairs",)
  crop_per_model: bool = False
  border_fraction: float = 0.05


class View(NamedTuple):
  path: epath.Path
  azimuth: float
  elevation: float


class Model(NamedTuple):
  family: str
  name: str
  views: tuple[View, ...]  # in renderings.txt order; view_index = position


def _read_lines(path: epath.Path) -> list[str]:
  if not path.is_file():
    raise common.input_error(path, "missing file", FIX_TREE)
  return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_model(family: str, model_dir: epath.Path) -> Model:
  """Parses and checks one `<model>/rendering/` folder (files are decoded later)."""
  rendering = model_dir / "rendering"
  if not rendering.is_dir():
    raise common.input_error(rendering, "missing rendering/ folder", FIX_TREE)
  names = _read_lines(rendering / "renderings.txt")
  meta = _read_lines(rendering / "rendering_metadata.txt")
  if not names:
    raise common.input_error(rendering / "renderings.txt", "lists no images", FIX_TREE)
  if len(meta) != len(names):
    raise common.input_error(
        rendering / "rendering_metadata.txt", f"has {len(meta)} lines but renderings.txt "
        f"lists {len(names)} images", FIX_TREE)
  listed = set(names)
  for p in common.visible_entries(rendering):  # other files (e.g. keypoints) are ignored
    if p.suffix.lower() == ".png" and p.name not in listed:
      raise common.input_error(p, "PNG not listed in renderings.txt", FIX_TREE)
  views = []
  for line_no, (name, line) in enumerate(zip(names, meta), start=1):
    if not RENDER_RE.match(name):
      raise common.input_error(rendering / name, "unexpected file name in renderings.txt "
                               "(expected NN.png)", FIX_TREE)
    if not (rendering / name).is_file():
      raise common.input_error(rendering / name, "listed in renderings.txt but missing",
                               FIX_TREE)
    try:
      values = [float(v) for v in line.split()]
    except ValueError:
      values = []
    if len(values) != 5:
      raise common.input_error(
          rendering / "rendering_metadata.txt", f"line {line_no} is {line!r}, expected 5 "
          "numbers (azimuth elevation in-plane distance fov)", FIX_TREE)
    views.append(View(rendering / name, azimuth=values[0], elevation=values[1]))
  return Model(family, model_dir.name, tuple(views))


def find_models(root: epath.Path, families: Sequence[str]) -> list[Model]:
  """Models of `families` under `root` (or `root/ShapeNetRendering`), by family then name."""
  if (root / "ShapeNetRendering").is_dir() and not any(
      (root / SYNSETS[f]).is_dir() for f in families):
    root = root / "ShapeNetRendering"
  models = []
  for family in families:
    synset_dir = root / SYNSETS[family]
    if not synset_dir.is_dir():
      found = ", ".join(p.name for p in common.visible_entries(root)[:5])
      raise common.input_error(
          synset_dir, f"no {family} (synset {SYNSETS[family]}) folder in manual_dir "
          f"(found: {found or 'nothing'})", FIX_MANUAL)
    model_dirs = [p for p in common.visible_entries(synset_dir) if p.is_dir()]
    if not model_dirs:
      raise common.input_error(synset_dir, "holds no model folders", FIX_MANUAL)
    models.extend(read_model(family, d) for d in model_dirs)
  return models


def preprocess_model(model: Model, config: ShapeNetConfig
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
  """[(uint8[S, S, 3] on white, bool[S, S] mask)] per view."""
  rgbs, alphas = [], []
  for view in model.views:
    rgb, alpha = common.rgb_and_alpha(common.read_png(view.path, FIX_TREE))
    if alpha is None:
      raise common.input_error(view.path, "has no alpha channel (expected RGBA; alpha is "
                               "the segmentation mask)", FIX_TREE)
    rgbs.append(common.composite_on_white(rgb, alpha))
    alphas.append(alpha)
  if config.crop_per_model:
    box = common.union_box(common.bounding_box(a >= 0.5) for a in alphas)
    if box is None:
      raise common.input_error(model.views[0].path.parent, "every render is fully "
                               "transparent", FIX_TREE)
    box = common.square_box(box, config.border_fraction)
  else:
    h, w = rgbs[0].shape[:2]
    box = common.square_box(common.Box(0, 0, h, w), 0.0)
  return [common.crop_resize(rgb, a, box, config.image_size) for rgb, a in zip(rgbs, alphas)]


def _configs() -> list[ShapeNetConfig]:
  sets = {"chairs": ("chairs",), "tables": ("tables",), "cars": ("cars",),
          "chairs_tables": ("chairs", "tables")}
  configs = [
      ShapeNetConfig(name=f"{set_name}_{size}", image_size=size, families=families,
                     description=f"{' + '.join(families)}, {size}x{size} px.")
      for set_name, families in sets.items() for size in (64, 128, 256)
  ]
  # Framed as aubry_chairs frames its chairs (one square box per model over all its views,
  # the same border), so that `aubry_chairs/S+shapenet_turntables/tables_S_cropped` reads
  # chairs and tables at one scale (section 5.3 on real data; docs/datasets.md).
  configs += [
      ShapeNetConfig(name=f"{set_name}_{size}_cropped", image_size=size, families=families,
                     crop_per_model=True,
                     description=f"{' + '.join(families)}, {size}x{size} px, cropped per model "
                                 "as aubry_chairs.")
      for set_name, families in sets.items() for size in (64, 128, 256)
  ]
  return configs


class Builder(common.TurntableBuilder):
  """ShapeNet (or procedural) turntables in the 3D-R2N2 layout, read from manual_dir."""

  BUILDER_CONFIGS = _configs()
  DEFAULT_BUILDER_CONFIG_NAME = "cars_128"
  HOMEPAGE = "https://shapenet.org/"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
  ShapeNet needs a licence, so bring your own renders. Put in manual_dir the synset folders
  `<synset>/<model>/rendering/{NN.png, renderings.txt, rendering_metadata.txt}` (3D-R2N2's
  `ShapeNetRendering/` layout; the folder ShapeNetRendering/ itself may also be there), with
  chair 03001627, table 04379243, car 02958343. The paper's turntables are 36 azimuths
  (0..350 step 10) x 5 elevations (0..40 step 10) at 256x256 px; the project writes the same
  layout with `python tools/make_turntables.py --layout=r2n2 ...`.
  """

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual, _ = common.given_manual_dir(dl_manager, self.requested_manual_dir)
    common.require_dir(manual, "manual_dir", FIX_MANUAL)
    models = find_models(manual, self.builder_config.families)
    return {"train": self._generate_examples(models)}

  def _generate_examples(self, models: Sequence[Model]) -> Iterator[tuple[str, dict]]:
    config: ShapeNetConfig = self.builder_config
    processed = common.ordered_map(
        lambda m: preprocess_model(m, config), models, common.default_num_threads())
    for model_index, (model, views) in enumerate(zip(models, processed)):
      class_name = common.FAMILY_TO_CLASS[model.family]
      for view_index, (view, (image, mask)) in enumerate(zip(model.views, views)):
        yield f"{model.family}/{model.name}_{view_index:03d}", common.make_example(
            image=image, mask=mask, model_index=model_index, model_name=model.name,
            class_name=class_name, azimuth=view.azimuth, elevation=view.elevation,
            view_index=view_index)
