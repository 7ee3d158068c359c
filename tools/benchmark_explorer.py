r"""Latency of the explorer: one image per slider position, in process and over HTTP.

  python tools/benchmark_explorer.py --workdir=workdirs/tiny [--num=100]

Prints the median and 90th percentile of `explorer.render` (the JAX call, PNG encoding
excluded) and of a full GET /api/image round trip (Flask's test client: parsing, drawing, PNG
encoding) for views that change azimuth, elevation, one transformation and the style mix at
every request, as dragging a slider does; the first (compiling) call is reported apart.
"""

import time

from absl import app
from absl import flags
import numpy as np

from chairgen import explorer
from chairgen import inference
from chairgen import reports

_WORKDIR = flags.DEFINE_string("workdir", None, "A training workdir.")
_NUM = flags.DEFINE_integer("num", 100, "Requests to time.", lower_bound=5)
flags.mark_flags_as_required(["workdir"])


def _views(num: int, num_styles: int) -> list[explorer.View]:
  rng = np.random.default_rng(0)
  return [explorer.View(azimuth=float(i * 7 % 360), elevation=float(i % 90),
                        transforms={"rotation": float(rng.uniform(-20, 20))},
                        models=(0, (i % (num_styles - 1)) + 1), weights=(1.0, i % 10 / 10))
          for i in range(num)]


def _summary(seconds: list[float]) -> str:
  ms = np.asarray(seconds) * 1e3
  return f"median {np.median(ms):.1f} ms, p90 {np.percentile(ms, 90):.1f} ms"


def main(argv):
  del argv
  trained = inference.load(_WORKDIR.value)
  views = _views(_NUM.value, trained.num_styles)
  started = time.perf_counter()
  explorer.render(trained, views[0])
  first = time.perf_counter() - started
  render_times = []
  for view in views:
    started = time.perf_counter()
    explorer.render(trained, view)
    render_times.append(time.perf_counter() - started)
  client = explorer.create_app(trained).test_client()
  http_times = []
  for view in views:
    started = time.perf_counter()
    response = client.get("/api/image?" + view.query())
    http_times.append(time.perf_counter() - started)
    assert response.status_code == 200, response.data
  print(f"{trained.workdir}: {trained.image_size} px, {trained.num_styles} models; "
        f"{reports.describe_machine(reports.machine_info())}")
  print(f"first image (compiles): {first:.2f} s")
  print(f"explorer.render ({len(views)} views): {_summary(render_times)}")
  print(f"GET /api/image ({len(views)} requests): {_summary(http_times)}")


if __name__ == "__main__":
  app.run(main)
