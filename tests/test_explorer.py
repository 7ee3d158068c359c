"""The explorer: slider values -> one image, its web API, and the page in a real browser."""

import base64
import io
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

import numpy as np
import PIL.Image
import pytest

from chairgen import augment
from chairgen import explorer
from chairgen import imaging
from chairgen import inference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def trained(request):
  """The session's test run, or CHAIRGEN_EXPLORER_WORKDIR (e.g. for the docs' screenshot)."""
  return inference.load(os.environ.get("CHAIRGEN_EXPLORER_WORKDIR")
                        or request.getfixturevalue("trained_run"))


def view_of(query: str, num_styles: int) -> explorer.View:
  """The view a query string (as the page and the API report it) stands for."""
  return explorer.parse_query(dict(urllib.parse.parse_qsl(query)), num_styles)


def decode_png(data: bytes) -> np.ndarray:
  return np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))


def test_query_round_trips_and_defaults():
  view = explorer.parse_query({"azimuth": "40", "elevation": "75", "models": "1,3",
                               "weights": "0.25,0.75", "zoom": "1.2", "hue": "-30"}, 4)
  assert view.azimuth == 40 and view.elevation == 75 and view.models == (1, 3)
  assert view.transforms["zoom"] == 1.2 and view.transforms["rotation"] == 0.0
  again = view_of(view.query(), 4)
  assert again == view
  assert explorer.parse_query({}, 4) == explorer.View(
      transforms={k: r["identity"] for k, r in explorer.TRANSFORMS.items()})


@pytest.mark.parametrize("query,match", [
    ({"azimuth": "361"}, "azimuth=361 is outside"),
    ({"elevation": "nan"}, "outside"),
    ({"zoom": "9"}, "zoom=9 is outside"),
    ({"rotation": "left"}, "not a number"),
    ({"models": "4"}, "unknown model 4"),
    ({"models": "1,1"}, "twice"),
    ({"models": "0,1,2,3"}, "1 to 3 models"),
    ({"models": "a"}, "model indices"),
    ({"models": "0,1", "weights": "1"}, "1 weights for 2 models"),
    ({"weights": "-1"}, "not all 0"),
    ({"colour": "red"}, "unknown parameter 'colour'"),
])
def test_bad_parameters_are_refused_with_a_reason(query, match):
  with pytest.raises(explorer.ParameterError, match=match):
    explorer.parse_query(query, 4)


def test_theta_of_one_slider_is_the_single_transform_theta():
  for kind in augment.TRANSFORM_KINDS:
    r = explorer.TRANSFORMS[kind]
    amount = r["identity"] + 0.3 * (r["max"] - r["identity"])
    view = explorer.View(transforms={kind: amount})
    np.testing.assert_allclose(view.theta(), augment.single_transform_theta(kind, amount, 1),
                               rtol=1e-5, atol=1e-6, err_msg=kind)
  assert not explorer.View().theta().any()


def test_render_is_generate_for_those_parameters(trained):
  view = explorer.View(azimuth=123.0, elevation=65.0, transforms={"rotation": 10.0, "zoom": 1.2},
                       models=(1, 2), weights=(0.3, 0.7))
  style = np.zeros((1, trained.num_styles), np.float32)
  style[0, 1], style[0, 2] = 0.3, 0.7
  out = trained.generate(style, [123.0], [65.0], view.theta())
  np.testing.assert_array_equal(explorer.render(trained, view), imaging.to_uint8(out.composite)[0])
  assert explorer.render(trained, view).shape == (trained.image_size, trained.image_size, 3)


def test_random_chair_is_section_5_6_mixture_and_deterministic(trained):
  a, b = explorer.random_view(trained, 5), explorer.random_view(trained, 5)
  assert a == b and len(a.models) == 3 and len(set(a.models)) == 3
  assert abs(sum(a.weights) - 1.0) < 1e-3
  assert {explorer.random_view(trained, s).models for s in range(8)} != {a.models}


def test_web_api_answers_images_and_4xx_never_crashes(trained):
  client = explorer.create_app(trained).test_client()
  page = client.get("/")
  assert page.status_code == 200 and b"chairgen explorer" in page.data
  info = client.get("/api/info").get_json()
  assert len(info["models"]) == trained.num_styles and "zoom" in info["transforms"]
  response = client.get("/api/image?azimuth=200&models=0,3&weights=1,1&hue=40")
  assert response.status_code == 200 and response.mimetype == "image/png"
  query = response.headers["X-Chairgen-Query"]
  view = view_of(query, trained.num_styles)
  np.testing.assert_array_equal(decode_png(response.data), explorer.render(trained, view))
  assert "--render=" in response.headers["X-Chairgen-Command"]
  for bad in ("azimuth=-5", "models=17", "weights=0", "zoom=x", "bogus=1"):
    response = client.get("/api/image?" + bad)
    assert response.status_code == 400, bad
    assert response.get_json()["error"], bad
  assert client.get("/api/random?seed=x").status_code == 400
  assert client.get("/api/random?seed=2").get_json()["query"].count(",") == 4
  assert client.get("/nowhere").status_code == 404


def test_render_command_writes_the_pixels_the_page_shows(trained, tmp_path):
  workdir = trained.workdir
  view = explorer.View(azimuth=80.0, elevation=55.0, models=(2,), weights=(1.0,),
                       transforms={"translation_x": 0.1})
  line = explorer.command(workdir, view, out=os.fspath(tmp_path / "chair.png"))
  assert line.startswith("python -m experiments.explore ")
  argv = line.split(" ", 3)[3]
  proc = subprocess.run(
      [sys.executable, "-m", "experiments.explore", f"--workdir={workdir}",
       f"--query={view.query()}", f"--render={tmp_path / 'chair.png'}"],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert view.query() in argv
  np.testing.assert_array_equal(decode_png((tmp_path / "chair.png").read_bytes()),
                                explorer.render(trained, view))
  bad = subprocess.run(
      [sys.executable, "-m", "experiments.explore", f"--workdir={workdir}",
       "--query=models=99", f"--render={tmp_path / 'bad.png'}"],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert bad.returncode != 0 and "unknown model 99" in bad.stderr
  assert not (tmp_path / "bad.png").exists()


# ------------------------------------------------------------------------ the real browser

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _browser_or_skip():
  try:
    from selenium import webdriver  # pylint: disable=g-import-not-at-top
  except ImportError:
    webdriver = None
  missing = [n for n, ok in (("selenium", webdriver), ("chromium", CHROMIUM),
                             ("chromedriver", CHROMEDRIVER)) if not ok]
  if missing:
    message = (f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver; "
               "pip install selenium); .ci/run installs them")
    if os.environ.get("CI"):
      pytest.fail(message)  # CI must run the browser test, not skip it
    pytest.skip(message)
  from selenium.webdriver.chrome.service import Service  # pylint: disable=g-import-not-at-top

  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--window-size=1200,900"):
    options.add_argument(flag)
  return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def served(trained):
  from werkzeug.serving import make_server  # pylint: disable=g-import-not-at-top

  server = make_server("127.0.0.1", 0, explorer.create_app(trained), threaded=True)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield f"http://127.0.0.1:{server.server_port}/"
  server.shutdown()


FETCH_SHOWN_IMAGE = """
const done = arguments[arguments.length - 1];
const img = document.getElementById('chair');
fetch(img.src).then(r => r.blob()).then(b => {
  const reader = new FileReader();
  reader.onload = () => done([img.dataset.query, reader.result.split(',')[1]]);
  reader.readAsDataURL(b);
});
"""


def _wait(predicate, what, timeout=60.0):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    value = predicate()
    if value:
      return value
    time.sleep(0.05)
  raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_page_in_a_headless_browser_follows_the_slider(trained, served, tmp_path):
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.common.keys import Keys  # pylint: disable=g-import-not-at-top

  driver = _browser_or_skip()
  try:
    driver.set_script_timeout(60)
    driver.get(served)
    chair = driver.find_element(By.ID, "chair")
    _wait(lambda: int(chair.get_attribute("data-renders") or 0) >= 1, "the first image")
    first_query, first_png = driver.execute_async_script(FETCH_SHOWN_IMAGE)
    assert "azimuth=30" in first_query
    renders = int(chair.get_attribute("data-renders"))

    slider = driver.find_element(By.ID, "azimuth")
    slider.click()  # the thumb sits at 30 of 0..360; a click moves it to the middle (180)
    slider.send_keys(*[Keys.ARROW_RIGHT] * 15)  # then a user's key presses: +15 degrees
    moved = _wait(lambda: driver.execute_script(
        "return document.getElementById('azimuth').value"), "the slider value")
    _wait(lambda: (int(chair.get_attribute("data-renders")) > renders
                   and f"azimuth={moved}&" in (chair.get_attribute("data-query") or "")),
          f"the image at azimuth {moved}")
    assert moved != "30"
    query, png = driver.execute_async_script(FETCH_SHOWN_IMAGE)
    shown = decode_png(base64.b64decode(png))
    assert not np.array_equal(shown, decode_png(base64.b64decode(first_png)))
    view = view_of(query, trained.num_styles)
    assert view.azimuth == float(moved)
    generated = trained.generate(trained.one_hot([0]), [view.azimuth], [view.elevation])
    np.testing.assert_array_equal(shown, imaging.to_uint8(generated.composite)[0])
    shown_command = driver.find_element(By.ID, "command").text
    assert f"azimuth={moved}" in shown_command and "--render=" in shown_command
    assert driver.find_element(By.ID, "error").text == ""

    driver.find_element(By.ID, "random").click()
    _wait(lambda: "," in (chair.get_attribute("data-query") or "").split("models=")[1]
          .split("&")[0], "a random mixture")
    _wait(lambda: driver.execute_script(
        "return !inFlight && !dirty && document.getElementById('chair').complete"), "idle")
    driver.save_screenshot(os.fspath(tmp_path / "explorer.png"))
    assert (tmp_path / "explorer.png").stat().st_size > 10_000
    if os.environ.get("CHAIRGEN_EXPLORER_SCREENSHOT"):  # docs/images/explorer.png
      shutil.copyfile(tmp_path / "explorer.png", os.environ["CHAIRGEN_EXPLORER_SCREENSHOT"])
  finally:
    driver.quit()
