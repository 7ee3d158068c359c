"""TFDS builders of chairgen; importing this package registers all three with TFDS.

    import chairgen.datasets  # registers aubry_chairs, shapenet_turntables, procedural_turntables
    import tensorflow_datasets as tfds
    source = tfds.data_source("procedural_turntables/tiny", data_dir=...)["train"]

Datasets are stored as `array_record` and read without TensorFlow; see docs/datasets.md.
"""

from chairgen.datasets.aubry_chairs.aubry_chairs_dataset_builder import AubryConfig
from chairgen.datasets.aubry_chairs.aubry_chairs_dataset_builder import Builder as AubryChairs
from chairgen.datasets.common import CLASS_NAMES
from chairgen.datasets.common import DatasetInputError
from chairgen.datasets.common import DatasetNotPreparedError
from chairgen.datasets.procedural_turntables.procedural_turntables_dataset_builder import (
    Builder as ProceduralTurntables,
)
from chairgen.datasets.procedural_turntables.procedural_turntables_dataset_builder import (
    ProceduralConfig,
)
from chairgen.datasets.shapenet_turntables.shapenet_turntables_dataset_builder import (
    Builder as ShapenetTurntables,
)
from chairgen.datasets.shapenet_turntables.shapenet_turntables_dataset_builder import (
    ShapeNetConfig,
)

BUILDERS = {
    "aubry_chairs": AubryChairs,
    "shapenet_turntables": ShapenetTurntables,
    "procedural_turntables": ProceduralTurntables,
}

__all__ = [
    "AubryChairs", "AubryConfig", "BUILDERS", "CLASS_NAMES", "DatasetInputError",
    "DatasetNotPreparedError", "ProceduralConfig", "ProceduralTurntables", "ShapeNetConfig",
    "ShapenetTurntables",
]
