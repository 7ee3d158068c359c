r"""Draws the standard figures from a trained workdir: `python -m experiments.sample --workdir=DIR`.

Writes to <out_dir> (default DIR/figures): a rotation strip, an elevation strip, a morph
between two styles and a transformation sheet (Figure 7), composited on white with the
predicted mask as the paper's figures are.
"""

import os

from absl import app
from absl import flags

from chairgen import cli
from chairgen import imaging
from chairgen import inference
from chairgen import sampling

_WORKDIR = flags.DEFINE_string("workdir", None, "A training workdir (has run_info.json).")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Where PNGs go (default: <workdir>/figures).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_STYLE = flags.DEFINE_integer("style", 0, "Model index for the strips and the sheet.")
_MORPH_TO = flags.DEFINE_integer("morph_to", 1, "Second model index of the morph.")
_NUM = flags.DEFINE_integer("num", 12, "Images per strip.", lower_bound=2)
flags.mark_flags_as_required(["workdir"])


def main(argv):
  cli.start(argv)
  trained = inference.load(_WORKDIR.value, _STEP.value)
  for name, index in (("--style", _STYLE.value), ("--morph_to", _MORPH_TO.value)):
    if not 0 <= index < trained.num_styles:
      raise app.UsageError(f"{name}={index} is out of range: this model knows "
                           f"{trained.num_styles} styles (0..{trained.num_styles - 1})")
  out_dir = _OUT_DIR.value or os.path.join(_WORKDIR.value, "figures")
  written = [
      imaging.write_strip(os.path.join(out_dir, "rotation.png"),
                          sampling.rotation_strip(trained, _STYLE.value, num=_NUM.value)),
      imaging.write_strip(os.path.join(out_dir, "elevation.png"),
                          sampling.elevation_strip(trained, _STYLE.value)),
      imaging.write_strip(os.path.join(out_dir, "morph.png"),
                          sampling.morph_strip(trained, _STYLE.value, _MORPH_TO.value,
                                               num=_NUM.value)),
      imaging.write_grid(os.path.join(out_dir, "transformations.png"),
                         sampling.transformation_sheet(trained, _STYLE.value)),
  ]
  cli.echo(f"step {trained.step} of {trained.workdir}:")
  for path in written:
    cli.echo("  wrote", path)


if __name__ == "__main__":
  app.run(main)
