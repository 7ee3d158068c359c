"""The explorer's one web page: plain HTML and JavaScript, no build step (served by `explorer`).

Requests never pile up: at most one image is being drawn; moving a slider while it is drawn
only marks the page dirty, and the latest values are sent as soon as the answer arrives, so
the picture follows the slider at the speed of the net and skips stale positions.
"""

HTML = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>chairgen explorer</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.3em; margin: 0 0 .2em 0; }
  #run { color: #666; font-size: .9em; margin-bottom: 1em; }
  main { display: flex; gap: 2em; align-items: flex-start; flex-wrap: wrap; }
  #picture { width: 320px; }
  #chair { width: 320px; height: 320px; image-rendering: pixelated; border: 1px solid #ccc;
           background: #fff; }
  #status { font-size: .85em; color: #666; min-height: 1.2em; }
  #error { color: #b00020; font-size: .9em; min-height: 1.2em; }
  fieldset { border: 1px solid #ddd; margin: 0 0 .8em 0; padding: .4em .8em; }
  legend { font-weight: 600; font-size: .9em; }
  label { display: grid; grid-template-columns: 9em 14em 5em; align-items: center;
          font-size: .85em; gap: .5em; }
  .model { display: grid; grid-template-columns: 14em 10em 3em; gap: .5em; font-size: .85em;
           align-items: center; margin: .2em 0; }
  pre { white-space: pre-wrap; word-break: break-all; background: #f6f6f6; padding: .5em;
        font-size: .8em; max-width: 40em; }
  button { margin-right: .5em; }
</style>
</head>
<body>
<h1>chairgen explorer</h1>
<div id="run">loading...</div>
<main>
  <div id="picture">
    <img id="chair" alt="generated chair" data-renders="0">
    <div id="status"></div>
    <div id="error" role="alert"></div>
    <button id="random">Random chair</button><button id="reset">Reset</button>
  </div>
  <div>
    <fieldset id="viewpoint"><legend>Viewpoint</legend></fieldset>
    <fieldset id="style"><legend>Style: a mix of up to three models</legend></fieldset>
    <fieldset id="transforms"><legend>Transformations T&theta; (physical units)</legend></fieldset>
    <div>Parameters:</div><pre id="query"></pre>
    <div>The same image from the command line:</div><pre id="command"></pre>
  </div>
</main>
<script>
"use strict";
let info = null, ready = false, inFlight = false, dirty = false, seed = 1, lastUrl = null;
const $ = (id) => document.getElementById(id);

function slider(parent, name, min, max, step, value, unit) {
  const label = document.createElement("label");
  const out = document.createElement("output");
  const input = document.createElement("input");
  Object.assign(input, {type: "range", min, max, step, value, id: name});
  input.dataset.identity = value;
  out.textContent = value;
  input.addEventListener("input", () => { out.textContent = amount(name); requestRender(); });
  label.title = unit || "";
  label.append(name, input, out);
  parent.append(label);
  return input;
}

// A transformation slider runs over the integers -STEPS..STEPS, 0 being exactly "no
// transform"; factors (zoom, stretch, colour) move geometrically, the rest linearly.
const STEPS = 100;
function amount(name) {
  const input = $(name), r = info.transforms[name];
  if (!r) return input.value;
  const t = +input.value / STEPS;
  const value = r.scale === "log" ? r.identity * Math.pow(r.max / r.identity, t)
                                  : r.identity + t * (r.max - r.identity);
  return String(+value.toPrecision(6));
}
function position(name, value) {
  const r = info.transforms[name];
  if (!r) return value;
  const t = r.scale === "log" ? Math.log(value / r.identity) / Math.log(r.max / r.identity)
                              : (value - r.identity) / (r.max - r.identity);
  return Math.round(t * STEPS);
}

function modelRow(parent, i) {
  const row = document.createElement("div");
  row.className = "model";
  const select = document.createElement("select");
  select.id = "model" + i;
  select.append(new Option(i === 0 ? "model" : "(none)", ""));
  select.options[0].disabled = i === 0;
  for (const m of info.models) select.append(new Option(m.index + ": " + m.name, m.index));
  if (i === 0) select.value = "0";
  const weight = document.createElement("input");
  Object.assign(weight, {type: "range", min: 0, max: 1, step: 0.01, value: 1, id: "weight" + i});
  const out = document.createElement("output");
  out.textContent = "1";
  weight.addEventListener("input", () => { out.textContent = weight.value; requestRender(); });
  select.addEventListener("change", requestRender);
  row.append(select, weight, out);
  parent.append(row);
}

function currentQuery() {
  const q = new URLSearchParams();
  q.set("azimuth", $("azimuth").value);
  q.set("elevation", $("elevation").value);
  const models = [], weights = [];
  for (let i = 0; i < info.max_models; i++) {
    if ($("model" + i).value !== "") {
      models.push($("model" + i).value);
      weights.push($("weight" + i).value);
    }
  }
  q.set("models", models.join(","));
  q.set("weights", weights.join(","));
  for (const kind of Object.keys(info.transforms)) {
    if (+$(kind).value !== 0) q.set(kind, amount(kind));
  }
  return q.toString().replaceAll("%2C", ",");
}

function setControls(query) {
  const q = new URLSearchParams(query);
  for (const name of ["azimuth", "elevation", ...Object.keys(info.transforms)]) {
    const input = $(name);
    input.value = q.has(name) ? position(name, +q.get(name)) : input.dataset.identity;
    input.dispatchEvent(new Event("input"));
  }
  const models = (q.get("models") || "0").split(",");
  const weights = (q.get("weights") || models.map(() => "1").join(",")).split(",");
  for (let i = 0; i < info.max_models; i++) {
    $("model" + i).value = i < models.length ? models[i] : "";
    $("weight" + i).value = i < weights.length ? weights[i] : 1;
    $("weight" + i).dispatchEvent(new Event("input"));
  }
}

function requestRender() {
  if (!ready) return;
  if (inFlight) { dirty = true; return; }
  inFlight = true;
  dirty = false;
  const query = currentQuery();
  const started = performance.now();
  fetch("/api/image?" + query).then(async (response) => {
    if (!response.ok) {
      const body = await response.json().catch(() => ({error: response.statusText}));
      throw new Error(body.error || response.statusText);
    }
    const blob = await response.blob();
    const img = $("chair");
    if (lastUrl) URL.revokeObjectURL(lastUrl);
    lastUrl = URL.createObjectURL(blob);
    img.src = lastUrl;
    img.dataset.query = response.headers.get("X-Chairgen-Query");
    img.dataset.renders = +img.dataset.renders + 1;
    $("query").textContent = img.dataset.query;
    $("command").textContent = response.headers.get("X-Chairgen-Command");
    $("status").textContent = "drawn in " + Math.round(performance.now() - started) + " ms";
    $("error").textContent = "";
    history.replaceState(null, "", "?" + img.dataset.query);
  }).catch((error) => {
    $("error").textContent = error.message;
  }).finally(() => {
    inFlight = false;
    if (dirty) requestRender();
  });
}

async function start() {
  info = await (await fetch("/api/info")).json();
  $("run").textContent = info.workdir + " (step " + info.step + ", " + info.models.length +
      " models, " + info.image_size + " px)";
  slider($("viewpoint"), "azimuth", 0, 360, 1, 30, "degrees");
  slider($("viewpoint"), "elevation", 0, 90, 1, 20, "degrees; 50-90 were never trained on");
  for (let i = 0; i < info.max_models; i++) modelRow($("style"), i);
  for (const [kind, r] of Object.entries(info.transforms)) {
    slider($("transforms"), kind, -STEPS, STEPS, 1, 0, r.unit);
    $(kind).dispatchEvent(new Event("input"));
  }
  $("random").addEventListener("click", async () => {
    const response = await fetch("/api/random?seed=" + (seed++) + "&" + currentQuery());
    const body = await response.json();
    if (!response.ok) { $("error").textContent = body.error; return; }
    setControls(body.query);
    requestRender();
  });
  $("reset").addEventListener("click", () => { setControls(info.default); requestRender(); });
  if (location.search.length > 1) setControls(location.search.slice(1));
  ready = true;
  requestRender();
}
start();
</script>
</body>
</html>
"""
