r"""Writes the `dummy_data/` folder of each chairgen TFDS builder (what `tfds new` lays out).

TFDS's `DatasetBuilderTestCase` (the builders' `*_dataset_builder_test.py`) builds every config
from these folders, handed to the builder as its manual dir. Each one is a small tree in the
exact upstream layout, drawn by the procedural renderer so that no upstream file is copied:

- aubry_chairs: `rendered_chairs/<32-hex>/renders/image_KKK_pPPP_tTTT_r096.png` (RGB on white,
  Aubry's 62 views) and `rendered_chairs/all_chair_names.mat`, for 2 chairs;
- shapenet_turntables: 3D-R2N2's `<synset>/<model>/rendering/NN.png` (RGBA), `renderings.txt`
  and `rendering_metadata.txt`, 24 views per model at random azimuths and elevations 25-30
  degrees as 3D-R2N2 rendered them, one model per synset (chair, table, car);
- procedural_turntables: downloads nothing; the folder only holds a README (the test case
  requires the folder).

Renders are 64 px (the upstream ones are 600 and 137 px; the builders do not depend on it).
Deterministic; rerun after changing a layout:

  python tools/make_dummy_data.py [--only=aubry_chairs]
"""

from __future__ import annotations

import os
import shutil
import tempfile

from absl import app
from absl import flags
import numpy as np

from chairgen import procedural
from chairgen.procedural import camera
from chairgen.procedural import turntables

DATASETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "chairgen", "datasets")
IMAGE_SIZE = 64
AUBRY_CHAIRS = 2
R2N2_VIEWS = 24
R2N2_ELEVATION_RANGE = (25.0, 30.0)
SEED = 0

_ONLY = flags.DEFINE_enum("only", None, ["aubry_chairs", "shapenet_turntables",
                                         "procedural_turntables"], "Write one builder only.")


def _readme(builder: str, text: str) -> str:
  return (f"Dummy data of the `{builder}` builder, written by `python tools/make_dummy_data.py`"
          f" (do not edit by hand).\n\n{text}\n")


def write_aubry(out: str, renderer: procedural.Renderer) -> None:
  names = []
  for index in range(AUBRY_CHAIRS):
    obj = procedural.make_object("chairs", index, SEED)
    turntables.write_model(renderer, obj, out, "aubry")
    names.append(obj.name)
  turntables.write_aubry_names(out, names)
  for name in names:  # Aubry's archive has no keypoints; chairgen's writer adds them.
    os.remove(os.path.join(out, turntables.AUBRY_ROOT, name, turntables.KEYPOINTS_FILE))
  shutil.rmtree(os.path.join(out, turntables.PARTIAL_DIR))
  with open(os.path.join(out, "README.md"), "w") as f:
    f.write(_readme("aubry_chairs", f"{AUBRY_CHAIRS} procedural chairs in the layout of "
                    "Aubry et al.'s `rendered_chairs.tar` (62 views each), at "
                    f"{IMAGE_SIZE} px."))


def write_r2n2(out: str, renderer: procedural.Renderer) -> None:
  rng = np.random.default_rng(SEED)
  for family, synset in turntables.SYNSETS.items():
    obj = procedural.make_object(family, 0, SEED)
    rendering = os.path.join(out, synset, obj.name, "rendering")
    os.makedirs(rendering)
    azimuths = np.round(rng.uniform(0.0, 360.0, R2N2_VIEWS), 4)
    elevations = np.round(rng.uniform(*R2N2_ELEVATION_RANGE, R2N2_VIEWS), 4)
    views = renderer.render_views(obj, list(zip(azimuths.tolist(), elevations.tolist())))
    files = [f"{i:02d}.png" for i in range(R2N2_VIEWS)]
    for file, view in zip(files, views):
      turntables.save_png(os.path.join(rendering, file), view.rgba)
    with open(os.path.join(rendering, "renderings.txt"), "w") as f:
      f.writelines(file + "\n" for file in files)
    with open(os.path.join(rendering, "rendering_metadata.txt"), "w") as f:  # az el rot d fov
      f.writelines(f"{a:g} {e:g} 0 {camera.CAMERA_DISTANCE:g} {camera.FIELD_OF_VIEW_DEG:g}\n"
                   for a, e in zip(azimuths, elevations))
  with open(os.path.join(out, "README.md"), "w") as f:
    f.write(_readme("shapenet_turntables", "One procedural model per synset (chair 03001627, "
                    "table 04379243, car 02958343) in 3D-R2N2's `ShapeNetRendering` layout, "
                    f"{R2N2_VIEWS} RGBA views at random azimuths and elevations "
                    f"{R2N2_ELEVATION_RANGE[0]:g}-{R2N2_ELEVATION_RANGE[1]:g} degrees, "
                    f"{IMAGE_SIZE} px."))


def write_procedural(out: str, renderer: procedural.Renderer) -> None:
  del renderer
  with open(os.path.join(out, "README.md"), "w") as f:
    f.write(_readme("procedural_turntables", "The builder renders its objects itself and "
                    "downloads nothing; TFDS's DatasetBuilderTestCase requires this folder."))


WRITERS = {"aubry_chairs": write_aubry, "shapenet_turntables": write_r2n2,
           "procedural_turntables": write_procedural}


def main(argv):
  del argv
  renderer = procedural.Renderer(IMAGE_SIZE)
  try:
    for name, write in WRITERS.items():
      if _ONLY.value and name != _ONLY.value:
        continue
      final = os.path.join(DATASETS_DIR, name, "dummy_data")
      tmp = tempfile.mkdtemp(prefix=".dummy_data.", dir=os.path.dirname(final))
      try:
        write(tmp, renderer)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
      except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
      files = [os.path.join(d, f) for d, _, fs in os.walk(final) for f in fs]
      size = sum(os.path.getsize(f) for f in files)
      print(f"{final}: {len(files)} files, {size / 1024:.0f} KiB")
  finally:
    renderer.release()


if __name__ == "__main__":
  app.run(main)
