// GANSpaceSynth web explorer: plain JavaScript over the JSON API of interfaces/web/app.py.
"use strict";

const SHOWN = 8;          // sliders for the first (largest-variance) directions
const RANGE = 4;          // slider range in standard deviations
const $ = (id) => document.getElementById(id);
const gss = (window.gss = { info: null, steps: [[]], current: 0, results: 0, busy: false, again: null });

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function api(path, data) {
  const res = await fetch(path, data === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data),
  });
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

// One request at a time; changes made meanwhile are coalesced into one follow-up request.
async function run(kind, task) {
  if (gss.busy) { gss.again = [kind, task]; return; }
  gss.busy = true;
  status(kind === "note" ? "synthesizing…" : "hallucinating…");
  try {
    show(await task());
  } catch (err) {
    status(err.message, true);
  } finally {
    gss.busy = false;
    if (gss.again) { const [k, t] = gss.again; gss.again = null; run(k, t); }
  }
}

function show(r) {
  const player = $("player");
  player.src = r.audio;
  player.load();
  player.play().catch(() => {});   // browsers may block autoplay until the first click
  $("spectrogram").src = r.spectrogram;
  $("spectrogram").hidden = false;
  $("download").href = r.download;
  $("download").hidden = false;
  gss.results += 1;
  document.body.dataset.result = r.name;
  status(`${r.kind}: ${r.samples} samples at ${r.sample_rate} Hz (${(r.samples / r.sample_rate).toFixed(2)} s)`);
}

function k() { return gss.info ? Math.min(SHOWN, gss.info.components) : 0; }

// The sliders' directions, then any further ones only the XY pad moves (gss.extra: {index: value}).
function coefficients() {
  const c = gss.steps[gss.current].slice();
  for (const [i, v] of Object.entries(gss.extra || {})) { while (c.length <= i) c.push(0); c[i] = v; }
  return c;
}

// The timbre changed (a direction, the mode, z): the instrument (play.js) re-renders its keyboard.
function timbreChanged() { document.dispatchEvent(new Event("gss:timbre")); }

function synthesize() {
  const data = { pitch: Number($("pitch").value), mode: $("mode").value };
  if (k() > 0) data.coefficients = coefficients();
  run("note", () => api("/api/synthesize", data));
}

function changed() { if ($("auto").checked) synthesize(); }

function buildSliders() {
  const box = $("sliders");
  box.innerHTML = "";
  const labels = gss.info.descriptions || [];
  for (let i = 0; i < k(); i++) {
    const row = document.createElement("div");
    row.className = "slider";
    const name = document.createElement("label");
    name.textContent = `direction ${i}` + (labels[i] ? `: ${labels[i]}` : "");  // from 0, as the CLI, Pd and OSC count
    name.htmlFor = `c${i}`;
    const input = Object.assign(document.createElement("input"),
      { type: "range", id: `c${i}`, min: -RANGE, max: RANGE, step: 0.05, value: 0 });
    const value = Object.assign(document.createElement("output"), { id: `v${i}`, value: "0.00" });
    input.addEventListener("input", () => {
      gss.steps[gss.current][i] = Number(input.value);
      value.value = Number(input.value).toFixed(2);
      drawSteps();
      timbreChanged();
    });
    input.addEventListener("change", changed);
    row.append(name, input, value);
    box.append(row);
  }
}

function loadStep() {
  gss.steps[gss.current].forEach((v, i) => {
    if ($(`c${i}`)) { $(`c${i}`).value = v; $(`v${i}`).value = v.toFixed(2); }
  });
  drawSteps();
  timbreChanged();
}

function drawSteps() {
  const list = $("steps");
  list.innerHTML = "";
  gss.steps.forEach((s, i) => {
    const li = document.createElement("li");
    li.textContent = s.map((v) => v.toFixed(2)).join("  ") || "(random z key point)";
    li.className = i === gss.current ? "current" : "";
    li.addEventListener("click", () => { gss.current = i; loadStep(); });
    list.append(li);
  });
  $("step-index").textContent = gss.current + 1;
  $("step-count").textContent = gss.steps.length;
}

function hallucinate() {
  const settings = {};
  for (const name of ["interp_steps", "sample_spacing", "start_trim", "attack", "sustain", "release"]) {
    settings[name] = Number($(name).value);
  }
  const data = { pitch: Number($("pitch").value), settings };
  if (k() > 0) {
    data.mode = $("mode").value === "z" ? "noz" : $("mode").value;
    data.steps = gss.steps;
  } else {
    data.mode = "z";
    data.count = Math.max(2, gss.steps.length);
  }
  run("hallucination", () => api("/api/hallucinate", data));
}

// The current timbre (mode, z, coefficients) across the keyboard as a SoundFont, then downloaded.
async function exportInstrument() {
  const data = { name: $("instrument-name").value.trim(), mode: $("mode").value,
                 every: Number($("instrument-every").value) };
  if (k() > 0) data.coefficients = coefficients();
  status("exporting instrument…");
  try {
    const r = await api("/api/instrument", data);
    const link = $("instrument-download");
    link.href = r.download;
    link.download = r.name;
    link.textContent = `download ${r.name}`;
    link.hidden = false;
    document.body.dataset.instrument = r.name;
    status(`instrument ${r.name}: keys ${r.keys[0]}–${r.keys[1]} from ${r.notes} notes, ${r.looped} looped, ` +
           `${(r.bytes / 1e6).toFixed(1)} MB in ${r.seconds} s`);
    link.click();
  } catch (err) {
    status(err.message, true);
  }
}

async function init() {
  gss.info = await api("/api/state");
  const info = gss.info;
  $("model").textContent = `${info.model.split("/").pop()} · ${info.samples} samples at ${info.sample_rate} Hz · ` +
    (info.components ? `${info.components} directions at ${info.layer}` : "no components (z only)");
  $("pitch").min = Math.min(...info.pitches);
  $("pitch").max = Math.max(...info.pitches);
  $("pitch").value = info.pitch;
  gss.steps = [new Array(k()).fill(0)];
  if (!info.components) {
    $("mode").value = "z";
    for (const opt of $("mode").options) opt.disabled = opt.value !== "z";
  } else if (!info.latent_directions) {
    $("mode").querySelector("option[value=latent]").disabled = true;  // no regression directions in the file
  }
  buildSliders();
  drawSteps();
  $("pitch").addEventListener("change", changed);
  $("mode").addEventListener("change", changed);
  $("mode").addEventListener("change", timbreChanged);
  $("synthesize").addEventListener("click", synthesize);
  $("random-z").addEventListener("click", async () => {
    try { await api("/api/z", {}); changed(); timbreChanged(); } catch (err) { status(err.message, true); }
  });
  $("reset").addEventListener("click", () => { gss.steps[gss.current].fill(0); loadStep(); changed(); });
  $("add-step").addEventListener("click", () => {
    gss.steps.splice(gss.current + 1, 0, gss.steps[gss.current].slice());
    gss.current += 1; loadStep();
  });
  $("remove-step").addEventListener("click", () => {
    if (gss.steps.length > 1) gss.steps.splice(gss.current, 1); else gss.steps[0].fill(0);
    gss.current = Math.min(gss.current, gss.steps.length - 1); loadStep();
  });
  $("prev-step").addEventListener("click", () => { gss.current = Math.max(0, gss.current - 1); loadStep(); });
  $("next-step").addEventListener("click", () => {
    gss.current = Math.min(gss.steps.length - 1, gss.current + 1); loadStep();
  });
  $("generate").addEventListener("click", hallucinate);
  $("export-instrument").addEventListener("click", exportInstrument);
  if (document.readyState === "loading") {   // the instrument's scripts (after this one) listen for gss:ready
    await new Promise((done) => document.addEventListener("DOMContentLoaded", done, { once: true }));
  }
  document.body.dataset.ready = "1";
  document.dispatchEvent(new Event("gss:ready"));  // the instrument's scripts build their controls
  status("ready: move a slider or press synthesize");
}

init().catch((err) => status(`cannot reach the server: ${err.message}`, true));
