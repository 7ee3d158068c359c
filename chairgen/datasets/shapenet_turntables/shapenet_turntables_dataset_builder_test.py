"""TFDS's own conformance test (`DatasetBuilderTestCase`) of shapenet_turntables, all configs.

Built from `dummy_data/` (one model per synset in 3D-R2N2's `ShapeNetRendering` layout, 24
views each, written by `tools/make_dummy_data.py`), which the test case hands to the builder as
its manual dir, and read back through `as_dataset` (tf.data). Needs TensorFlow: run it in the
TensorFlow environment (`bash tools/setup.sh --tensorflow`, then `.venv-tf/bin/python -m
pytest chairgen/datasets`).
"""

import pytest

pytest.importorskip("tensorflow", reason="TFDS's DatasetBuilderTestCase needs TensorFlow; "
                    "run in .venv-tf (bash tools/setup.sh --tensorflow)")

import tensorflow_datasets as tfds  # noqa: E402

from chairgen.datasets.shapenet_turntables import shapenet_turntables_dataset_builder as b  # noqa: E402

VIEWS = 24


def _configs(num_families: int) -> list[str]:
  return [c.name for c in b.Builder.BUILDER_CONFIGS if len(c.families) == num_families]


class OneFamilyTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = b.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = _configs(1)  # chairs_*, tables_*, cars_*
  SPLITS = {"train": VIEWS}


class ChairsAndTablesTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = b.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = _configs(2)  # chairs_tables_*
  SPLITS = {"train": 2 * VIEWS}


if __name__ == "__main__":
  tfds.testing.test_main()
