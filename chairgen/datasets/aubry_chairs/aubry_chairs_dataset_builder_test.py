"""TFDS's own conformance test (`DatasetBuilderTestCase`) of aubry_chairs, all six configs.

Built from `dummy_data/` (2 chairs in the layout of `rendered_chairs.tar`, written by
`tools/make_dummy_data.py`), which the test case hands to the builder as its manual dir, and
read back through `as_dataset` (tf.data). Needs TensorFlow: run it in the TensorFlow
environment (`bash tools/setup.sh --tensorflow`, then `.venv-tf/bin/python -m pytest
chairgen/datasets`) or as `python aubry_chairs_dataset_builder_test.py` there.
"""

import pytest

pytest.importorskip("tensorflow", reason="TFDS's DatasetBuilderTestCase needs TensorFlow; "
                    "run in .venv-tf (bash tools/setup.sh --tensorflow)")

import tensorflow_datasets as tfds  # noqa: E402

from chairgen.datasets.aubry_chairs import aubry_chairs_dataset_builder  # noqa: E402


class AubryChairsTest(tfds.testing.DatasetBuilderTestCase):
  DATASET_CLASS = aubry_chairs_dataset_builder.Builder
  SPLITS = {"train": 2 * 62}  # 2 chairs x Aubry's 62 views, near-duplicate removal keeps both


if __name__ == "__main__":
  tfds.testing.test_main()
