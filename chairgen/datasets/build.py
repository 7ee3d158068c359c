r"""`tfds build` for the chairgen builders, without TensorFlow.

TFDS 4.9.10's `tfds` command imports TensorFlow at start-up (its `convert_format` subcommand
does), so it fails where TensorFlow is not installed. This entry point runs the same `build`
subcommand (TFDS's own argument parser and code, same flags) after registering the chairgen
builders:

  python -m chairgen.datasets.build chairgen/datasets/aubry_chairs --config=128 \
      --manual_dir=/path/with/rendered_chairs --data_dir=~/tensorflow_datasets
  python -m chairgen.datasets.build procedural_turntables/tiny
  python -m chairgen.datasets.build shapenet_turntables --config=cars_128 --manual_dir=...

Where TensorFlow is installed, `tfds build chairgen/datasets/aubry_chairs ...` (a folder) or
`tfds build aubry_chairs --imports=chairgen.datasets ...` do the same.
"""

from __future__ import annotations

import sys

from absl import app
from absl import logging


def main(argv: list[str] | None = None) -> None:
  """Parses TFDS `build` flags from `argv` (default: sys.argv) and builds."""
  import chairgen.datasets  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from tensorflow_datasets.scripts.cli import build as tfds_build  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.scripts.cli import cli_utils  # pylint: disable=g-import-not-at-top

  parse = cli_utils.make_flags_parser(
      tfds_build.Args, description="Build chairgen TFDS datasets (TFDS `build` flags).")

  def run(args) -> None:
    logging.set_verbosity(logging.INFO)
    args.execute()

  app.run(run, argv=argv if argv is not None else sys.argv, flags_parser=parse)


if __name__ == "__main__":
  main()
