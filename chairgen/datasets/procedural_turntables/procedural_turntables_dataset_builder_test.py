"""TFDS's own conformance test (`DatasetBuilderTestCase`) of procedural_turntables.

The builder renders its objects and downloads nothing (`dummy_data/` only holds a README);
the three configs the test suite uses are built (the others differ only in counts and
sizes, and the largest take hours) and read back through `as_dataset` (tf.data). Needs
TensorFlow: run it in the TensorFlow environment (`bash tools/setup.sh --tensorflow`, then
`.venv-tf/bin/python -m pytest chairgen/datasets`).
"""

import pytest

pytest.importorskip("tensorflow", reason="TFDS's DatasetBuilderTestCase needs TensorFlow; "
                    "run in .venv-tf (bash tools/setup.sh --tensorflow)")

import tensorflow_datasets as tfds  # noqa: E402

from chairgen.datasets.procedural_turntables import procedural_turntables_dataset_builder as b  # noqa: E402


def _num_examples(name: str) -> int:
  config = next(c for c in b.Builder.BUILDER_CONFIGS if c.name == name)
  return len(config.families) * config.num_models * len(config.views())


class ChairsTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = b.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["test"]
  SPLITS = {"train": 4 * 12 * 5}  # 4 chairs x 12 azimuths x 5 elevations


class CarsTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = b.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["cars_test"]
  SPLITS = {"train": _num_examples("cars_test")}


class ChairsAndTablesTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = b.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["chairs_tables_test"]
  SPLITS = {"train": (3 + 3) * 12 * 10}  # elevations 0..90


if __name__ == "__main__":
  tfds.testing.test_main()
