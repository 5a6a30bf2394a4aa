// Shaping the timbre: a control per model condition (instrument family, …), an XY pad over any two directions,
// random timbre, undo, and a morph between two saved timbres (A, B: slerp in z, lerp in the coefficients, on the
// server). Every change re-renders the keyboard (play.js) through the gss:timbre event.
"use strict";
(() => {
  const el = (id) => document.getElementById(id);
  const gss = window.gss;
  const play = gss.play;
  const send = (path, data) => api(path, data);   // app.js: JSON in and out, errors as exceptions
  play.undo = [];
  play.current = null;       // the newest rendered timbre, as a preset
  play.morphEnds = { a: null, b: null };

  // -- conditions ----------------------------------------------------------------------------------------------------
  function buildConditions() {
    const box = el("conditions");
    box.innerHTML = "";
    for (const spec of gss.info.conditions || []) {
      const label = document.createElement("label");
      label.textContent = spec.name.replace(/_/g, " ") + " ";
      if (spec.kind === "categorical") {
        const select = document.createElement("select");
        select.id = `cond-${spec.name}`;
        select.append(new Option("(none)", ""));
        for (const c of spec.classes) select.append(new Option(c.replace(/_/g, " "), c));
        select.addEventListener("change", () => setConditions({ ...play.conditions, [spec.name]: select.value || null }));
        label.append(select);
      } else {
        const group = document.createElement("span");
        group.id = `cond-${spec.name}`;
        for (const c of spec.classes) {
          const box2 = Object.assign(document.createElement("input"), { type: "checkbox", value: c });
          box2.addEventListener("change", () => setConditions({ ...play.conditions, [spec.name]:
            [...group.querySelectorAll("input:checked")].map((x) => x.value) }));
          const l = document.createElement("label");
          l.append(box2, ` ${c.replace(/_/g, " ")} `);
          group.append(l);
        }
        label.append(group);
      }
      box.append(label);
    }
    if (!box.children.length) box.textContent = "this model has no conditions besides pitch";
    showConditions(gss.info.condition_values || {});
  }

  function showConditions(values) {
    play.conditions = { ...values };
    for (const spec of gss.info.conditions || []) {
      const control = el(`cond-${spec.name}`);
      const v = values[spec.name];
      if (spec.kind === "categorical") control.value = v || "";
      else for (const box of control.querySelectorAll("input")) box.checked = (v || []).includes(box.value);
    }
  }

  async function setConditions(values) {
    try {
      showConditions((await send("/api/conditions", { conditions: values })).conditions);
      timbreChanged();   // app.js
    } catch (err) {
      status(err.message, true);
      showConditions(play.conditions);
    }
  }

  // -- directions (sliders in app.js, the pad, gss.extra for those without a slider) ---------------------------------
  const directionName = (i) => `direction ${i}` + ((gss.info.descriptions || [])[i] ? `: ${gss.info.descriptions[i]}` : "");
  const value = (i) => coefficients()[i] || 0;

  play.setDirection = function setDirection(i, v) {
    if (i < k()) { gss.steps[gss.current][i] = v; loadStep(); return; }   // app.js: sliders + gss:timbre
    gss.extra = { ...(gss.extra || {}), [i]: v };
    timbreChanged();
  };

  // -- XY pad ------------------------------------------------------------------------------------------------------
  function buildPad() {
    const count = gss.info.components;
    el("shape-pad").hidden = !count;
    if (!count) return;
    for (const [id, first] of [["pad-x", 0], ["pad-y", Math.min(1, count - 1)]]) {
      const select = el(id);
      for (let i = 0; i < count; i++) select.append(new Option(directionName(i), i));
      select.value = first;
      select.addEventListener("change", drawPad);
    }
    const pad = el("pad");
    let dragging = false;
    const move = (e) => {
      const r = pad.getBoundingClientRect();
      const fx = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
      const fy = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
      const x = Number(el("pad-x").value), y = Number(el("pad-y").value);
      play.setDirection(x, Math.round((2 * fx - 1) * RANGE * 100) / 100);   // RANGE: app.js slider range
      if (y !== x) play.setDirection(y, Math.round((1 - 2 * fy) * RANGE * 100) / 100);
      play.padMoves = (play.padMoves || 0) + 1;
    };
    pad.addEventListener("pointerdown", (e) => { dragging = true; pad.setPointerCapture(e.pointerId); move(e); });
    pad.addEventListener("pointermove", (e) => { if (dragging) move(e); });
    for (const end of ["pointerup", "pointercancel"]) pad.addEventListener(end, () => { dragging = false; });
    document.addEventListener("gss:timbre", drawPad);
    drawPad();
  }

  function drawPad() {
    const x = Number(el("pad-x").value), y = Number(el("pad-y").value);
    const dot = el("pad-dot");
    dot.style.left = `${50 + 50 * value(x) / RANGE}%`;
    dot.style.top = `${50 - 50 * value(y) / RANGE}%`;
    el("pad-label").textContent = `x: ${directionName(x)} = ${value(x).toFixed(2)} · y: ${directionName(y)} = ` +
      `${value(y).toFixed(2)}`;
  }

  // -- a preset onto the page's controls -----------------------------------------------------------------------------
  play.applyToPage = function applyToPage(preset) {
    const mode = el("mode").querySelector(`option[value="${preset.mode}"]`);
    if (mode && !mode.disabled) el("mode").value = preset.mode;
    const c = preset.coefficients || [];
    gss.steps[gss.current] = Array.from({ length: k() }, (_, i) => c[i] || 0);
    gss.extra = {};
    c.forEach((v, i) => { if (i >= k() && v) gss.extra[i] = v; });
    showConditions(preset.conditions || {});
    loadStep();   // app.js: the sliders, then gss:timbre re-renders the keyboard
  };

  // Apply a preset on the server (bit for bit), then show it.
  play.load = async function load(preset, { remember = true } = {}) {
    const r = await send("/api/preset", { preset });
    play.applyToPage(r.preset);
    if (remember && play.remember) play.remember(r.preset);
    return r.preset;
  };

  // -- undo: the timbres rendered before ----------------------------------------------------------------------------
  let undoing = false;
  document.addEventListener("gss:keyboard", async () => {
    try {
      const preset = await send(`/api/preset?mode=${encodeURIComponent(play.mode())}`);
      const same = play.current && JSON.stringify(play.current) === JSON.stringify(preset);
      if (play.current && !same && !undoing) { play.undo.push(play.current); play.undo.splice(0, play.undo.length - 50); }
      play.current = preset;
      undoing = false;
      el("undo").disabled = !play.undo.length;
    } catch (err) { status(err.message, true); }
  });

  async function undo() {
    const previous = play.undo.pop();
    el("undo").disabled = !play.undo.length;
    if (!previous) return;
    undoing = true;
    try { await play.load(previous, { remember: false }); } catch (err) { undoing = false; status(err.message, true); }
  }

  // -- random timbre: a new z and, for each categorical condition, a random class ------------------------------------
  async function randomTimbre() {
    try {
      await send("/api/z", {});
      const values = { ...play.conditions };
      for (const spec of gss.info.conditions || []) {
        if (spec.kind === "categorical") values[spec.name] = spec.classes[Math.floor(Math.random() * spec.classes.length)];
      }
      if ((gss.info.conditions || []).length) showConditions((await send("/api/conditions", { conditions: values })).conditions);
      timbreChanged();
      status("a random timbre: play it, or press undo");
    } catch (err) { status(err.message, true); }
  }

  // -- morph between two saved timbres ------------------------------------------------------------------------------
  let morphing = false, morphAgain = false;
  async function morph() {
    const { a, b } = play.morphEnds;
    if (!a || !b) { status("choose both ends first: 'A ← this timbre' and 'B ← this timbre' (or A / B in the recent list)", true); return; }
    if (morphing) { morphAgain = true; return; }
    morphing = true;
    try {
      const r = await send("/api/morph", { a, b, t: Number(el("morph").value) });
      play.applyToPage(r.preset);
    } catch (err) { status(err.message, true); }
    morphing = false;
    if (morphAgain) { morphAgain = false; morph(); }
  }

  play.setMorphEnd = function setMorphEnd(which, preset) {
    play.morphEnds[which] = preset;
    el(`morph-${which}`).textContent = preset ? `${which.toUpperCase()}: ${play.describe ? play.describe(preset) : "set"}` : `${which.toUpperCase()}: —`;
  };

  async function takeCurrent(which) {
    try { play.setMorphEnd(which, await play.currentPreset()); }   // keep.js: once the latest change is rendered
    catch (err) { status(err.message, true); }
  }

  document.addEventListener("gss:ready", () => {
    buildConditions();
    buildPad();
    el("random-timbre").addEventListener("click", randomTimbre);
    el("undo").addEventListener("click", undo);
    el("undo").disabled = true;
    el("set-a").addEventListener("click", () => takeCurrent("a"));
    el("set-b").addEventListener("click", () => takeCurrent("b"));
    el("morph").addEventListener("input", morph);
    el("reset").addEventListener("click", () => { gss.extra = {}; timbreChanged(); });
  });
})();
