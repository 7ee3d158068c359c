r"""Turn, tilt, mix and transform a trained chair in the browser.

  python -m experiments.explore --workdir=workdirs/tiny [--port=8000] [--host=127.0.0.1]

then open http://127.0.0.1:8000. Sliders: azimuth, elevation (50-90° included, which no chair
was trained on), every transformation of T_θ; a style mix of up to three models; "Random
chair" draws a mixture as section 5.6 does. The page shows the parameters and the command that
renders the same image without a browser:

  python -m experiments.explore --workdir=workdirs/tiny \
      --query='azimuth=40&elevation=60&models=3,7&weights=0.5,0.5&zoom=1.2' --render=chair.png

Binds to localhost by default (there is no authentication; pass --host=0.0.0.0 only on a
network you trust). Needs Flask: `pip install 'chairgen[explore]'`.
"""

import time
import urllib.parse

from absl import app
from absl import flags

from chairgen import cli
from chairgen import explorer
from chairgen import imaging
from chairgen import inference

_WORKDIR = flags.DEFINE_string("workdir", None, "A training workdir (has run_info.json).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to bind (default: this machine only).")
_PORT = flags.DEFINE_integer("port", 8000, "Port to serve on.", lower_bound=0, upper_bound=65535)
_QUERY = flags.DEFINE_string("query", None, "With --render: the view, as the page shows it.")
_RENDER = flags.DEFINE_string("render", None, "Write the --query view to this PNG and exit.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  cli.start(argv)
  if _QUERY.value is not None and _RENDER.value is None:
    raise app.UsageError("--query needs --render=PATH.png (the page takes its own query)")
  trained = inference.load(_WORKDIR.value, _STEP.value)
  if _RENDER.value is not None:
    query = dict(urllib.parse.parse_qsl(_QUERY.value or "", keep_blank_values=True))
    try:
      view = explorer.parse_query(query, trained.num_styles)
    except explorer.ParameterError as e:
      raise app.UsageError(f"--query: {e}") from None
    path = imaging.save_png(_RENDER.value, explorer.render(trained, view))
    print(f"step {trained.step} of {trained.workdir}: wrote {path} ({view.query()})")
    return
  try:
    web = explorer.create_app(trained, step_in_command=_STEP.value is not None)
  except ImportError as e:
    raise app.UsageError(f"{e}: the explorer needs Flask; pip install 'chairgen[explore]'"
                         ) from None
  started = time.perf_counter()
  explorer.render(trained, explorer.View())  # compile before the first request
  print(f"step {trained.step} of {trained.workdir}; first image in "
        f"{time.perf_counter() - started:.1f} s (compilation). Open http://{_HOST.value}:"
        f"{_PORT.value}/  (Ctrl-C stops)", flush=True)
  web.run(host=_HOST.value, port=_PORT.value, threaded=True)


if __name__ == "__main__":
  app.run(main)
