"""Draw one chair from slider values: the logic behind `experiments.explore` and the notebook.

A `View` is what the sliders say: azimuth, elevation (any, including the 50-90° no chair was
trained on), the amount of each transformation of T_θ in physical units, and a style mix of
up to three models with weights. `parse_query` reads one from a URL query string (bad values
raise `ParameterError`, which the web page answers with HTTP 400), `View.query()` writes it
back, `render` draws it with `Trained.generate` (composited on white, as the figures) and
`random_view` picks a new chair with section 5.6's sampler of random style mixtures (three
random models, uniform coefficients). `command` is the shell line that renders the same
image to a PNG, so that what one sees in the browser can go into a paper.

`create_app` wraps these in a Flask app (Flask: small, maintained by Pallets, synchronous, which
suits one CPU-bound JAX call per request; no JavaScript build step: the page is one HTML file
with plain JavaScript).
"""

from __future__ import annotations

import dataclasses
import io
import math
import shlex
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from PIL import Image

from chairgen import augment
from chairgen import imaging
from chairgen import sampling
from chairgen import style_space

MAX_MODELS = 3
AZIMUTH_RANGE = (0.0, 360.0)
ELEVATION_RANGE = (-90.0, 90.0)
# Slider range of each transformation, in its physical unit (augment.TRANSFORM_KINDS): twice
# the paper's largest training amount each way for geometry (Figure 7 also goes beyond
# training), hue all the way round. `identity` is "no transform".
_UNITS = augment.THETA_UNITS
TRANSFORMS: Mapping[str, dict[str, float]] = {
    "translation_x": {"min": -2 * _UNITS["translation"], "max": 2 * _UNITS["translation"],
                      "identity": 0.0},
    "translation_y": {"min": -2 * _UNITS["translation"], "max": 2 * _UNITS["translation"],
                      "identity": 0.0},
    "rotation": {"min": -2 * _UNITS["rotation_deg"], "max": 2 * _UNITS["rotation_deg"],
                 "identity": 0.0},
    "zoom": {"min": math.exp(-2 * _UNITS["log_zoom"]), "max": math.exp(2 * _UNITS["log_zoom"]),
             "identity": 1.0},
    "stretch_x": {"min": math.exp(-2 * _UNITS["log_stretch"]),
                  "max": math.exp(2 * _UNITS["log_stretch"]), "identity": 1.0},
    "stretch_y": {"min": math.exp(-2 * _UNITS["log_stretch"]),
                  "max": math.exp(2 * _UNITS["log_stretch"]), "identity": 1.0},
    "hue": {"min": -180.0, "max": 180.0, "identity": 0.0},
    # Colour: the training range only (a factor of 4 / 3 either way); beyond it there is
    # little left to see.
    "saturation": {"min": math.exp(-_UNITS["log_saturation"]),
                   "max": math.exp(_UNITS["log_saturation"]), "identity": 1.0},
    "brightness": {"min": math.exp(-_UNITS["log_brightness"]),
                   "max": math.exp(_UNITS["log_brightness"]), "identity": 1.0},
}
_PARAMS_FIELD = {"rotation": "rotation_deg", "hue": "hue_deg"}


class ParameterError(ValueError):
  """A slider value or model choice the trained run cannot draw; the message says why."""


@dataclasses.dataclass(frozen=True)
class View:
  """One image: angles in degrees, {transform: amount} in physical units, a style mix."""

  azimuth: float = 30.0
  elevation: float = 20.0
  transforms: Mapping[str, float] = dataclasses.field(default_factory=dict)
  models: tuple[int, ...] = (0,)
  weights: tuple[float, ...] = (1.0,)

  def query(self) -> str:
    """The URL query string `parse_query` reads back to this view (identity transforms left out)."""
    fields = {"azimuth": _fmt(self.azimuth), "elevation": _fmt(self.elevation),
              "models": ",".join(str(m) for m in self.models),
              "weights": ",".join(_fmt(w) for w in self.weights)}
    for kind, amount in sorted(self.transforms.items()):
      if amount != TRANSFORMS[kind]["identity"]:
        fields[kind] = _fmt(amount)
    return urllib.parse.urlencode(fields, safe=",")

  def style(self, num_styles: int) -> np.ndarray:
    return sampling.mix_styles(num_styles, list(self.models), list(self.weights))

  def theta(self) -> np.ndarray:
    """θ f32[1, THETA_DIM] applying every transform at once."""
    values = {field: 1.0 for field in ("zoom", "stretch_x", "stretch_y", "saturation",
                                       "brightness")}
    for kind, amount in self.transforms.items():
      values[_PARAMS_FIELD.get(kind, kind)] = amount
    params = augment.TransformParams(**{
        field: np.asarray([values.get(field, 0.0)], np.float32)
        for field in augment.TransformParams._fields})
    return np.asarray(augment.encode_theta(params), np.float32)


def _fmt(value: float) -> str:
  return f"{float(value):.6g}"


def _number(query: Mapping[str, str], name: str, default: float, low: float, high: float
            ) -> float:
  raw = query.get(name)
  if raw is None or raw == "":
    return default
  try:
    value = float(raw)
  except ValueError:
    raise ParameterError(f"{name}={raw!r} is not a number") from None
  if not (math.isfinite(value) and low <= value <= high):
    raise ParameterError(f"{name}={raw} is outside [{low:g}, {high:g}]")
  return value


def _list(query: Mapping[str, str], name: str, default: str) -> list[str]:
  raw = query.get(name) or default
  return [part.strip() for part in raw.split(",") if part.strip()]


def parse_query(query: Mapping[str, str], num_styles: int) -> View:
  """The `View` of a query such as `azimuth=30&elevation=60&models=3,7&weights=1,2&zoom=1.2`."""
  known = {"azimuth", "elevation", "models", "weights", *TRANSFORMS}
  unknown = sorted(set(query) - known)
  if unknown:
    raise ParameterError(f"unknown parameter {unknown[0]!r}; known: {', '.join(sorted(known))}")
  azimuth = _number(query, "azimuth", 30.0, *AZIMUTH_RANGE)
  elevation = _number(query, "elevation", 20.0, *ELEVATION_RANGE)
  transforms = {kind: _number(query, kind, r["identity"], r["min"], r["max"])
                for kind, r in TRANSFORMS.items()}
  try:
    models = [int(m) for m in _list(query, "models", "0")]
  except ValueError:
    raise ParameterError(f"models={query.get('models')!r} must be model indices like 3,7"
                         ) from None
  if not 1 <= len(models) <= MAX_MODELS:
    raise ParameterError(f"choose 1 to {MAX_MODELS} models, got {len(models)}")
  for m in models:
    if not 0 <= m < num_styles:
      raise ParameterError(f"unknown model {m}: this run knows models 0..{num_styles - 1}")
  if len(set(models)) != len(models):
    raise ParameterError(f"models={query.get('models')} names a model twice")
  try:
    weights = [float(w) for w in _list(query, "weights", ",".join(["1"] * len(models)))]
  except ValueError:
    raise ParameterError(f"weights={query.get('weights')!r} must be numbers like 0.5,0.5"
                         ) from None
  if len(weights) != len(models):
    raise ParameterError(f"{len(weights)} weights for {len(models)} models")
  if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
    raise ParameterError("weights must be >= 0 and not all 0")
  return View(azimuth, elevation, transforms, tuple(models), tuple(weights))


def render_views(trained, views: Sequence[View]) -> np.ndarray:
  """uint8[N, S, S, 3]: the views drawn by `trained.generate`, composited on white."""
  styles = np.stack([v.style(trained.num_styles) for v in views])
  out = trained.generate(styles, np.asarray([v.azimuth for v in views], np.float32),
                         np.asarray([v.elevation for v in views], np.float32),
                         np.concatenate([v.theta() for v in views]))
  return imaging.to_uint8(out.composite)


def render(trained, view: View) -> np.ndarray:
  """uint8[S, S, 3] of one view."""
  return render_views(trained, [view])[0]


def png_bytes(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(imaging.to_uint8(image)).save(buffer, format="PNG")
  return buffer.getvalue()


def random_view(trained, seed: int, base: View | None = None) -> View:
  """A new chair: section 5.6's random mixture of three models (U[0, 1] coefficients)."""
  base = base or View()
  m = min(MAX_MODELS, trained.num_styles)
  style = style_space.random_mixture_styles(jax.random.key(seed), 1, trained.num_styles, m)[0]
  models = tuple(int(i) for i in np.flatnonzero(style))
  return dataclasses.replace(base, models=models,
                             weights=tuple(round(float(style[i]), 4) for i in models))


def command(workdir: str, view: View, out: str = "chair.png", step: int | None = None) -> str:
  """The shell command that writes this view to a PNG (the same pixels as the page shows)."""
  parts = ["python", "-m", "experiments.explore", f"--workdir={workdir}",
           f"--query={view.query()}", f"--render={out}"]
  if step is not None:
    parts.insert(4, f"--step={step}")
  return " ".join(shlex.quote(p) for p in parts)


def info(trained) -> dict[str, Any]:
  """What the page needs to build its controls."""
  names = trained.style_names or [str(i) for i in range(trained.num_styles)]
  return {
      "workdir": trained.workdir, "step": trained.step, "image_size": trained.image_size,
      "models": [{"index": i, "name": n} for i, n in enumerate(names)],
      "max_models": MAX_MODELS, "azimuth": AZIMUTH_RANGE, "elevation": ELEVATION_RANGE,
      "transforms": {k: dict(v, unit=augment.TRANSFORM_KINDS[k],
                             scale="log" if v["identity"] == 1.0 else "linear")
                     for k, v in TRANSFORMS.items()},
      "default": View().query(),
  }


def create_app(trained, *, step_in_command: bool = False):
  """The Flask app of `experiments.explore`: the page, /api/info, /api/image, /api/random.

  /api/image?<query> answers a PNG with headers X-Chairgen-Query (the view, normalised) and
  X-Chairgen-Command (the command that renders it); bad parameters get 400 {"error": ...}.
  """
  import flask  # pylint: disable=g-import-not-at-top

  from chairgen import explorer_page  # pylint: disable=g-import-not-at-top

  app = flask.Flask("chairgen.explorer")
  app.json.sort_keys = False  # controls in the order of TRANSFORMS (geometry, then colour)
  lock = threading.Lock()  # one generation at a time: the net is jitted once, calls are ms
  step = trained.step if step_in_command else None

  def bad_request(error: Exception):
    return flask.jsonify({"error": str(error)}), 400

  def view_from_request() -> View:
    return parse_query(flask.request.args.to_dict(), trained.num_styles)

  @app.get("/")
  def page():
    return flask.Response(explorer_page.HTML, mimetype="text/html")

  @app.get("/api/info")
  def api_info():
    return flask.jsonify(info(trained))

  @app.get("/api/image")
  def api_image():
    try:
      view = view_from_request()
    except ParameterError as e:
      return bad_request(e)
    with lock:
      image = render(trained, view)
    response = flask.Response(png_bytes(image), mimetype="image/png")
    response.headers["X-Chairgen-Query"] = view.query()
    response.headers["X-Chairgen-Command"] = command(trained.workdir, view, step=step)
    response.headers["Cache-Control"] = "no-store"
    return response

  @app.get("/api/random")
  def api_random():
    try:
      seed = int(flask.request.args.get("seed", "0"))
      base = parse_query({k: v for k, v in flask.request.args.items() if k != "seed"},
                         trained.num_styles)
    except ValueError as e:  # ParameterError is a ValueError; so is a bad seed
      return bad_request(e)
    return flask.jsonify({"query": random_view(trained, seed, base).query()})

  @app.errorhandler(404)
  def not_found(error):
    return flask.jsonify({"error": f"no such page: {flask.request.path}"}), 404

  return app


def notebook_widget(trained, *, width: int = 256):
  """The explorer's sliders as ipywidgets, for a notebook (same ranges, same validation).

  Returns an `ipywidgets.VBox`; display it as the last expression of a cell.
  """
  import ipywidgets as w  # pylint: disable=g-import-not-at-top

  names = trained.style_names or [str(i) for i in range(trained.num_styles)]
  style_options = [(f"{i}: {n}", i) for i, n in enumerate(names)]
  layout = w.Layout(width="420px")
  controls = {
      "azimuth": w.FloatSlider(30.0, min=0.0, max=360.0, step=1.0, description="azimuth",
                               layout=layout),
      "elevation": w.FloatSlider(20.0, min=0.0, max=90.0, step=1.0,
                                 description="elevation", layout=layout),
  }
  for kind, r in TRANSFORMS.items():
    controls[kind] = w.FloatSlider(r["identity"], min=r["min"], max=r["max"],
                                   step=(r["max"] - r["min"]) / 200, description=kind,
                                   readout_format=".3g", layout=layout)
  models = [w.Dropdown(options=([] if i == 0 else [("(none)", None)]) + style_options,
                       value=0 if i == 0 else None, description=f"model {i + 1}")
            for i in range(MAX_MODELS)]
  weights = [w.FloatSlider(1.0, min=0.0, max=1.0, step=0.01, description="weight")
             for _ in range(MAX_MODELS)]
  image = w.Image(format="png", width=width, height=width)
  text = w.HTML()
  random_button = w.Button(description="Random chair")
  seed = [0]

  def query() -> dict[str, str]:
    q = {k: _fmt(c.value) for k, c in controls.items()}
    chosen = [(m.value, wt.value) for m, wt in zip(models, weights) if m.value is not None]
    q["models"] = ",".join(str(m) for m, _ in chosen)
    q["weights"] = ",".join(_fmt(wt) for _, wt in chosen)
    return q

  def update(_=None):
    try:
      view = parse_query(query(), trained.num_styles)
    except ParameterError as e:
      text.value = f"<span style='color:#b00020'>{e}</span>"
      return
    image.value = png_bytes(render(trained, view))
    text.value = f"<code>{view.query()}</code><br><code>{command(trained.workdir, view)}</code>"

  def randomise(_):
    seed[0] += 1
    view = random_view(trained, seed[0])
    for i in range(MAX_MODELS):
      models[i].value = view.models[i] if i < len(view.models) else None
      weights[i].value = view.weights[i] if i < len(view.weights) else 1.0

  for control in [*controls.values(), *models, *weights]:
    control.observe(update, names="value")
  random_button.on_click(randomise)
  update()
  style_rows = [w.HBox([m, wt]) for m, wt in zip(models, weights)]
  return w.VBox([w.HBox([image, w.VBox(list(controls.values()))]), *style_rows,
                 random_button, text])
