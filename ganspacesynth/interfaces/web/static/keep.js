// Keeping a timbre: presets (JSON with z, conditions, coefficients, mode and the model's fingerprint) saved as a
// file or a shareable link (#preset=… in the URL) and loaded back bit for bit; the recent timbres (this browser's
// localStorage); a MIDI file played through the timbre on the server, the result in the page's player.
"use strict";
(() => {
  const RECENT = "gss-recent-timbres";
  const RECENT_LIMIT = 12;
  const MAX_MIDI_BYTES = 256 * 1024;   // the server's limit (interfaces/timbre.py)
  const el = (id) => document.getElementById(id);
  const gss = window.gss;
  const play = gss.play;
  // The timbre as the server holds it once the page's latest change has reached it (app.js api()).
  const current = () => play.settled().then(() => api(`/api/preset?mode=${encodeURIComponent(play.mode())}`));
  play.currentPreset = current;

  // base64url of the preset's UTF-8 JSON: the numbers travel as written, so the link is exact.
  function encode(preset) {
    const bytes = new TextEncoder().encode(JSON.stringify(preset));
    let text = "";
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decode(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  play.encodePreset = encode;
  play.describe = (p) => {
    const cond = Object.values(p.conditions || {}).flat().join(" ");
    const moved = (p.coefficients || []).filter((v) => v).length;
    return [cond, `${moved} direction${moved === 1 ? "" : "s"}`, `z ${p.z.slice(0, 2).map((v) => v.toFixed(2)).join(" ")}…`]
      .filter(Boolean).join(" · ");
  };

  // -- recent timbres -------------------------------------------------------------------------------------------------
  function recent() {
    try {
      const all = JSON.parse(localStorage.getItem(RECENT) || "[]");
      return all.filter((p) => p.model_fingerprint === gss.info.fingerprint);
    } catch { return []; }
  }

  play.remember = function remember(preset) {
    const key = JSON.stringify(preset);
    let all = [];
    try { all = JSON.parse(localStorage.getItem(RECENT) || "[]"); } catch { all = []; }
    all = [preset, ...all.filter((p) => JSON.stringify(p) !== key)].slice(0, RECENT_LIMIT);
    try { localStorage.setItem(RECENT, JSON.stringify(all)); } catch { /* private mode: the list stays empty */ }
    drawRecent();
  };

  function drawRecent() {
    const list = el("recent");
    list.innerHTML = "";
    for (const preset of recent()) {
      const li = document.createElement("li");
      const open = Object.assign(document.createElement("button"), { textContent: play.describe(preset), title: "play this timbre" });
      open.addEventListener("click", () => loadReporting(preset));
      const a = Object.assign(document.createElement("button"), { textContent: "A", title: "morph from this timbre" });
      a.addEventListener("click", () => play.setMorphEnd("a", preset));
      const b = Object.assign(document.createElement("button"), { textContent: "B", title: "morph to this timbre" });
      b.addEventListener("click", () => play.setMorphEnd("b", preset));
      li.append(open, a, b);
      list.append(li);
    }
    if (!list.children.length) list.textContent = "none yet: save, share or remember a timbre";
  }

  async function loadReporting(preset, where = "preset") {
    try {
      await play.load(preset);
      status(`${where} loaded: ${play.describe(preset)}`);
      document.body.dataset.preset = "loaded";
    } catch (err) {
      status(`${where} not loaded: ${err.message}`, true);
      document.body.dataset.preset = "refused";
    }
  }

  // -- save, share, load --------------------------------------------------------------------------------------------
  async function save() {
    try {
      const preset = await current();
      const url = URL.createObjectURL(new Blob([JSON.stringify(preset, null, 1)], { type: "application/json" }));
      const link = Object.assign(document.createElement("a"), { href: url, download: `${el("instrument-name").value.trim() || "timbre"}.json` });
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      play.remember(preset);
      status("preset saved (downloaded)");
    } catch (err) { status(err.message, true); }
  }

  async function share() {
    try {
      const preset = await current();
      const url = `${location.origin}${location.pathname}#preset=${encode(preset)}`;
      history.replaceState(null, "", url);
      el("preset-url").value = url;
      el("preset-url").hidden = false;
      play.remember(preset);
      if (navigator.clipboard) navigator.clipboard.writeText(url).catch(() => {});
      status("link to this timbre: in the address bar and the box below (copied where the browser allows)");
    } catch (err) { status(err.message, true); }
  }

  function fromFile(input) {
    const file = input.files[0];
    if (!file) return;
    file.text().then((text) => {
      let preset;
      try { preset = JSON.parse(text); } catch { status(`${file.name} is not a preset: not JSON`, true); return; }
      loadReporting(preset, file.name);
    }).finally(() => { input.value = ""; });
  }

  function fromHash() {
    const m = location.hash.match(/^#preset=([A-Za-z0-9_-]+)$/);
    if (!m) return;
    let preset;
    try { preset = decode(m[1]); } catch { status("the link's preset is damaged (not base64 JSON)", true); return; }
    loadReporting(preset, "the link's preset");
  }

  // -- a MIDI file through the timbre --------------------------------------------------------------------------------
  async function playMidi(input) {
    const file = input.files[0];
    if (!file) return;
    input.value = "";
    if (file.size > MAX_MIDI_BYTES) { status(`${file.name} is ${Math.round(file.size / 1024)} KB; at most ${MAX_MIDI_BYTES / 1024} KB`, true); return; }
    const mode = play.mode();   // noz is refused with a message: a MIDI file plays the current z
    status(`playing ${file.name} through this timbre…`);
    try {
      const res = await fetch(`/api/midi?mode=${encodeURIComponent(mode)}`,
                              { method: "POST", headers: { "Content-Type": "audio/midi" }, body: file });
      const r = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
      if (!res.ok) throw new Error(r.error || `HTTP ${res.status}`);
      show(r);   // app.js: the player, spectrogram and download link
      const skipped = Object.entries(r.skipped || {}).map(([why, n]) => `${n} ${why.replace(/_/g, " ")}`).join(", ");
      status(`${file.name}: ${r.notes} notes, ${(r.samples / r.sample_rate).toFixed(1)} s` + (skipped ? ` (skipped: ${skipped})` : ""));
    } catch (err) { status(`${file.name}: ${err.message}`, true); }
  }

  document.addEventListener("gss:ready", () => {
    el("preset-save").addEventListener("click", save);
    el("preset-link").addEventListener("click", share);
    el("remember").addEventListener("click", async () => { try { play.remember(await current()); } catch (err) { status(err.message, true); } });
    el("preset-file").addEventListener("change", (e) => fromFile(e.target));
    el("midi-file").addEventListener("change", (e) => playMidi(e.target));
    window.addEventListener("hashchange", fromHash);
    drawRecent();
    fromHash();
  });
})();
