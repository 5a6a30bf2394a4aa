// The instrument's sound: the current timbre rendered across the keyboard by the server (POST /api/keyboard, one
// batch), kept as Web Audio buffers and played polyphonically. When the timbre changes the keyboard is rendered
// again in the background (debounced); the old buffers play until the new ones arrive.
// window.gss.play is the instrument's API (keys.js, shape.js, keep.js and scope.js use it) and the hook tests and
// benchmarks read: `starts` (sources started), `log` (one entry per start), `version` (renders received).
"use strict";
(() => {
  const DEBOUNCE_MS = 120;   // a slider drag becomes one render
  const RELEASE_S = 0.08;    // note-off: a short linear release
  const LOG_LIMIT = 1000;
  const el = (id) => document.getElementById(id);
  const gss = window.gss;
  const play = gss.play = Object.assign(gss.play || {}, {
    ctx: null, master: null, analyser: null,
    buffers: new Map(),      // pitch -> AudioBuffer of the newest render
    pitches: [],             // the rendered pitches
    version: 0,              // renders received
    rendering: false, again: false, timer: null, pendingSince: null,
    voices: new Map(),       // pitch -> {src, gain}
    down: new Set(),         // pitches held by a key, the mouse or MIDI
    held: new Set(),         // released while the sustain pedal is down
    sustain: false,
    starts: 0, log: [], renders: [],   // renders: {ms: change -> ready, bytes}
    conditions: {},          // the model's other conditions (shape.js sets them)
  });

  function kbStatus(text, error = false) {
    const s = el("kb-status");
    if (s) { s.textContent = text; s.className = error ? "error" : ""; }
  }

  // Created when the page is ready (so the first note does not wait for the audio device to open); browsers keep
  // it suspended until a user gesture (a key press, a click), which resumes it.
  play.context = function context() {
    if (!play.ctx) {
      const ctx = new AudioContext({ latencyHint: "interactive" });
      play.master = ctx.createGain();
      play.master.gain.value = 0.8;
      play.analyser = ctx.createAnalyser();
      play.analyser.fftSize = 1024;
      play.master.connect(play.analyser).connect(ctx.destination);
      play.ctx = ctx;
    }
    if (play.ctx.state === "suspended") play.ctx.resume();
    return play.ctx;
  };

  play.mode = () => el("mode").value;

  // A note: velocity 1..127 -> gain velocity/127. Returns false when the pitch has no buffer (yet).
  play.noteOn = function noteOn(pitch, velocity = 100, eventTime = performance.now()) {
    const buffer = play.buffers.get(pitch);
    play.down.add(pitch);
    play.held.delete(pitch);
    if (!buffer) { kbStatus(`pitch ${pitch} is outside this keyboard (${range()})`, true); return false; }
    const ctx = play.context();
    if (ctx.state !== "running") kbStatus("the browser holds back sound until you click or press a key on the page once", true);
    release(pitch);
    const src = ctx.createBufferSource();
    src.buffer = buffer;
    const gain = ctx.createGain();
    gain.gain.value = Math.max(0, Math.min(127, velocity)) / 127;
    src.connect(gain).connect(play.master);
    src.start();
    const voice = { src, gain };
    play.voices.set(pitch, voice);
    src.onended = () => { if (play.voices.get(pitch) === voice) play.voices.delete(pitch); gain.disconnect(); };
    play.starts += 1;
    play.log.push({ pitch, velocity, gain: gain.gain.value, version: play.version, at: performance.now(),
                    event: eventTime, state: ctx.state });
    if (play.log.length > LOG_LIMIT) play.log.shift();
    play.lastPitch = pitch;
    document.dispatchEvent(new CustomEvent("gss:note", { detail: { pitch, on: true } }));
    return true;
  };

  play.noteOff = function noteOff(pitch) {
    play.down.delete(pitch);
    if (play.sustain) { play.held.add(pitch); } else { release(pitch); }
    document.dispatchEvent(new CustomEvent("gss:note", { detail: { pitch, on: false } }));
  };

  play.setSustain = function setSustain(on) {
    play.sustain = on;
    if (!on) { for (const p of play.held) if (!play.down.has(p)) release(p); play.held.clear(); }
  };

  play.active = () => play.voices.size;

  function release(pitch) {
    const v = play.voices.get(pitch);
    if (!v) return;
    play.voices.delete(pitch);
    const t = play.ctx.currentTime;
    const g = v.gain.gain;
    g.cancelScheduledValues(t);
    g.setValueAtTime(g.value, t);
    g.linearRampToValueAtTime(0, t + RELEASE_S);
    v.src.stop(t + RELEASE_S + 0.01);
  }

  function range() { return play.pitches.length ? `${play.pitches[0]}–${play.pitches[play.pitches.length - 1]}` : "none yet"; }

  // A summary of one rendered note (tests compare sounds by it): sum of |x| and 8 samples from the middle.
  play.digest = function digest(pitch) {
    const b = play.buffers.get(pitch);
    if (!b) return null;
    const x = b.getChannelData(0);
    let sum = 0;
    for (const v of x) sum += Math.abs(v);
    const mid = x.length >> 1;
    return { sum, length: x.length, rate: b.sampleRate, head: Array.from(x.slice(mid, mid + 8)) };
  };

  // What the keyboard is rendered from: the page's mode, directions and conditions.
  play.request = function request() {
    const data = { mode: play.mode(), conditions: play.conditions };
    if (k() > 0 && data.mode !== "z") data.coefficients = coefficients();  // app.js
    return data;
  };

  // Debounced: many changes while dragging make one render; a change while one is running makes one more.
  play.schedule = function schedule() {
    if (play.pendingSince === null) play.pendingSince = performance.now();
    clearTimeout(play.timer);
    play.timer = setTimeout(render, DEBOUNCE_MS);
    kbStatus(play.version ? "re-rendering the keyboard (the old sound plays meanwhile)…" : "rendering the keyboard…");
  };

  // Resolves once the server holds the page's timbre (no render waiting or running): presets read it then.
  const waiters = [];
  const idle = () => !play.rendering && play.pendingSince === null;
  play.settled = () => new Promise((done) => { if (idle()) done(); else waiters.push(done); });

  async function render() {
    if (play.rendering) { play.again = true; return; }
    play.rendering = true;
    play.again = false;
    const since = play.pendingSince;
    play.pendingSince = null;
    const asked = performance.now();
    try {
      const res = await fetch("/api/keyboard", { method: "POST", headers: { "Content-Type": "application/json" },
                                                  body: JSON.stringify(play.request()) });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        throw new Error(body.error || `HTTP ${res.status}`);
      }
      const pitches = res.headers.get("X-Pitches").split(",").map(Number);
      const rate = Number(res.headers.get("X-Sample-Rate"));
      const n = Number(res.headers.get("X-Samples"));
      const answered = performance.now();
      const data = await res.arrayBuffer();
      const all = new Float32Array(data);
      const buffers = new Map();
      pitches.forEach((p, i) => {
        const b = new AudioBuffer({ length: n, sampleRate: rate, numberOfChannels: 1 });
        b.copyToChannel(all.subarray(i * n, (i + 1) * n), 0);
        buffers.set(p, b);
      });
      play.buffers = buffers;
      play.pitches = pitches;
      play.version += 1;
      play.readyAt = performance.now();
      if (since !== null) {   // change -> ready, and its parts: the debounce, the server's answer, the notes' transfer + buffers
        play.renders.push({ ms: play.readyAt - since, waited: asked - since, server: answered - asked,
                            transfer: play.readyAt - answered, bytes: data.byteLength });
      }
      kbStatus(`keyboard ready: ${pitches.length} notes (${range()}), ${(n / rate).toFixed(2)} s each`);
      document.dispatchEvent(new Event("gss:keyboard"));
    } catch (err) {
      kbStatus(`keyboard: ${err.message}`, true);
    } finally {
      play.rendering = false;
      if (play.again) render();
      else if (idle()) waiters.splice(0).forEach((done) => done());
    }
  }

  document.addEventListener("gss:timbre", () => play.schedule());
  document.addEventListener("gss:ready", () => { play.context(); play.schedule(); });
  for (const gesture of ["pointerdown", "keydown"]) {
    document.addEventListener(gesture, () => { if (play.ctx && play.ctx.state === "suspended") play.ctx.resume(); },
                              { capture: true });
  }
})();
