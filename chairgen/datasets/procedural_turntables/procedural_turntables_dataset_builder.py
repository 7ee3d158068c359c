"""procedural_turntables: the project's procedural chairs, tables and cars, rendered in the build.

Nothing is downloaded: `_generate_examples` makes each object with
`chairgen.procedural.make_object(family, index, seed)` and renders its turntable with one
`chairgen.procedural.Renderer` (headless EGL; Mesa's llvmpipe on a CPU). Images are rendered
directly at the config's size on white, so no crop is applied; the mask is the renderer's exact
coverage mask; keypoints are the renderer's pixel positions and visibility (ground truth for the
correspondence experiment, section 5.7). Extra elevations 50..90 give ground truth for the
elevation extrapolation experiment (section 5.3).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import tensorflow_datasets as tfds

from chairgen.datasets import common

# The grids of docs/design.md (`chairgen.procedural` holds the same constants; they are
# repeated here so that configs can be listed without importing the renderer).
GRIDS = {
    "r2n2": (tuple(range(0, 360, 10)), tuple(range(0, 50, 10))),
    "aubry": (tuple(int(i * 360 / 31) for i in range(31)), (20, 30)),
}
EXTRA_ELEVATIONS = tuple(range(50, 100, 10))


@dataclasses.dataclass(eq=False)
class ProceduralConfig(common.SizedConfig):
  """What to render.

  families: object families in order ("chairs", "tables", "cars"); model_index runs over
    them in this order. num_models: models per family (indices 0..num_models-1).
  seed: the seed of `make_object`. grid: "r2n2" (36 azimuths x elevations 0..40, the
    paper's ShapeNet grid) or "aubry" (31 azimuths x elevations 20, 30).
  extra_elevations: add elevations 50..90 (r2n2 grid only). azimuth_stride: keep every k-th
    azimuth (small configs).
  """

  families: tuple[str, ...] = ("chairs",)
  num_models: int = 16
  seed: int = 0
  grid: str = "r2n2"
  extra_elevations: bool = False
  azimuth_stride: int = 1

  def __post_init__(self):
    unknown = [f for f in self.families if f not in common.FAMILY_TO_CLASS]
    if unknown or not self.families:
      raise ValueError(f"families must be a non-empty subset of "
                       f"{tuple(common.FAMILY_TO_CLASS)}, got {self.families!r}")
    if self.grid not in GRIDS:
      raise ValueError(f"grid must be one of {tuple(GRIDS)}, got {self.grid!r}")
    if self.extra_elevations and self.grid != "r2n2":
      raise ValueError("extra_elevations needs grid='r2n2'")
    if self.num_models < 1 or self.azimuth_stride < 1:
      raise ValueError("num_models and azimuth_stride must be >= 1")

  def views(self) -> list[tuple[float, float]]:
    """[(azimuth, elevation)] in view_index order: elevation-major, then azimuth."""
    azimuths, elevations = GRIDS[self.grid]
    if self.extra_elevations:
      elevations = elevations + EXTRA_ELEVATIONS
    return [(float(a), float(e)) for e in elevations for a in azimuths[::self.azimuth_stride]]


def _configs() -> list[ProceduralConfig]:
  configs = [
      ProceduralConfig(
          name="tiny", image_size=64, num_models=16,
          description="Quick start: 16 chairs, 64 px, r2n2 grid (180 views)."),
      ProceduralConfig(
          name="tiny_128", image_size=128, num_models=16,
          description="As `tiny` at 128 px."),
      ProceduralConfig(
          name="test", image_size=32, num_models=4, azimuth_stride=3,
          description="The test suite's dataset: 4 chairs, 32 px, 12 azimuths x 5 elevations."),
      ProceduralConfig(
          name="chairs_tiny", image_size=64, num_models=8,
          description="8 chairs, 64 px, full r2n2 grid (180 views)."),
      ProceduralConfig(
          name="chairs_tables_tiny", image_size=64, num_models=8, families=("chairs", "tables"),
          extra_elevations=True, azimuth_stride=2,
          description="8 chairs + 8 tables, 64 px, elevations 0..90, 20-degree azimuth steps."),
      ProceduralConfig(
          name="chairs_aubry_tiny", image_size=64, num_models=32, grid="aubry",
          description="Section 4.2 on the CPU: 32 chairs, 64 px, Aubry's 62 views."),
      ProceduralConfig(
          name="chairs_aubry_80", image_size=64, num_models=80, grid="aubry",
          description="Section 5.2 on the CPU: 80 chairs, 64 px, Aubry's 62 views."),
      ProceduralConfig(
          name="chairs_tables_32", image_size=64, num_models=32, families=("chairs", "tables"),
          extra_elevations=True, azimuth_stride=2,
          description="Section 5.3 on the CPU: 32 chairs + 32 tables, 64 px, 18 azimuths x "
                      "elevations 0..90 (50..90 and the chairs' unseen ones are ground truth)."),
      ProceduralConfig(
          name="chairs_tables_test", image_size=32, num_models=3, families=("chairs", "tables"),
          extra_elevations=True, azimuth_stride=3,
          description="The test suite's chairs + tables: 3 + 3, 32 px, 12 azimuths x 0..90."),
      ProceduralConfig(
          name="cars_tiny", image_size=64, num_models=200, families=("cars",),
          azimuth_stride=2,
          description="Section 4.3 on the CPU: 200 cars, 64 px, 18 azimuths x 5 elevations."),
      ProceduralConfig(
          name="cars_test", image_size=32, num_models=4, families=("cars",), azimuth_stride=3,
          description="The test suite's cars: 4 cars, 32 px, 12 azimuths x 5 elevations."),
  ]
  paper_counts = {"chairs": 809, "tables": 1000, "cars": 1000}
  for family, count in paper_counts.items():
    for size in (64, 128, 256):
      configs.append(ProceduralConfig(
          name=f"{family}_{size}", image_size=size, families=(family,), num_models=count,
          description=f"{count} {family}, {size} px, r2n2 grid (180 views)."))
  configs.append(ProceduralConfig(
      name="chairs_aubry_64", image_size=64, num_models=809, grid="aubry",
      description="809 chairs, 64 px, Aubry's 62 views (section 5.2 at the paper's scale)."))
  for size in (64, 128):
    configs.append(ProceduralConfig(
        name=f"chairs_tables_{size}", image_size=size, families=("chairs", "tables"),
        num_models=809, extra_elevations=True,
        description=f"809 chairs + 809 tables, {size} px, elevations 0..90 (360 views; "
                    "50..90 are the held-out ground truth of section 5.3)."))
  return configs


def render_views(renderer, obj, angles: Sequence[tuple[float, float]]) -> list:
  """`procedural.View`s of `obj` at [(azimuth, elevation)] degrees, in order.

  Uses the renderer's batched `render_views` (several views per draw) when it has one.
  """
  batched = getattr(renderer, "render_views", None)
  if batched is not None:
    return batched(obj, list(angles))
  return [renderer.render(obj, azimuth_deg=a, elevation_deg=e) for a, e in angles]


class Builder(common.TurntableBuilder):
  """Procedural turntables rendered during the build (no download, no manual_dir)."""

  BUILDER_CONFIGS = _configs()
  DEFAULT_BUILDER_CONFIG_NAME = "tiny"

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download.
    return {"train": self._generate_examples()}

  def _generate_examples(self) -> Iterator[tuple[str, dict]]:
    from chairgen import procedural  # pylint: disable=g-import-not-at-top

    config: ProceduralConfig = self.builder_config
    views = config.views()
    renderer = procedural.open_renderer(config.image_size)  # out of process beside TensorFlow
    try:
      model_index = 0
      for family in config.families:
        for index in range(config.num_models):
          obj = procedural.make_object(family, index, seed=config.seed)
          rendered = render_views(renderer, obj, views)
          for view_index, ((azimuth, elevation), view) in enumerate(zip(views, rendered)):
            yield f"{obj.name}_{view_index:03d}", common.make_example(
                image=view.rgb, mask=view.mask, model_index=model_index,
                model_name=obj.name, class_name=common.FAMILY_TO_CLASS[family],
                azimuth=azimuth, elevation=elevation, view_index=view_index,
                keypoints=view.keypoints_px, keypoints_visible=view.keypoints_visible)
          model_index += 1
    finally:
      renderer.release()


def config_table(configs: Sequence[ProceduralConfig] = tuple(Builder.BUILDER_CONFIGS)
                 ) -> str:
  """Markdown table of the configs (for docs/datasets.md)."""
  rows = ["| config | families | models per family | size | views per model |",
          "|---|---|---|---|---|"]
  for c in configs:
    rows.append(f"| `{c.name}` | {', '.join(c.families)} | {c.num_models} | {c.image_size} "
                f"| {len(c.views())} |")
  return "\n".join(rows)
