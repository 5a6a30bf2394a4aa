// Starting from your own sound: an audio file dropped anywhere on the page (or chosen with the "start from your own
// sound" file input) is uploaded (POST /api/invert) and its first note found in the model on the server
// (ganspacesynth/invert: pYIN's pitch, the closest latent and conditions). The page then holds that note: the pitch,
// the conditions, the mode's sliders (noz: the note's own coefficients; other modes: zeros, the note being z), the
// keyboard re-rendered with its timbre (gss:timbre) and the note itself in the player as the newest result.
"use strict";
(() => {
  const MAX_SOUND_BYTES = 8 * 1024 * 1024;   // the server's limit (interfaces/session.py MAX_SOUND_BYTES)
  const el = (id) => document.getElementById(id);
  const gss = window.gss;
  const play = gss.play;
  let busy = false;

  function mark(state) { document.body.dataset.invert = state; }   // tests and scripts wait on it

  async function invert(file) {
    if (!file) return;
    if (busy) { status("a sound is being found already: wait for it", true); return; }
    if (file.size > MAX_SOUND_BYTES) {
      status(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB; at most ${MAX_SOUND_BYTES / 2 ** 20} MB`, true);
      mark("refused");
      return;
    }
    busy = true;
    mark("running");
    el("invert-status").textContent = `finding ${file.name} in the model…`;
    status(`finding ${file.name} in the model (a few seconds)…`);
    try {
      const query = `mode=${encodeURIComponent(play.mode())}&name=${encodeURIComponent(file.name)}`;
      const res = await fetch(`/api/invert?${query}`, { method: "POST", body: file,
                                                        headers: { "Content-Type": "application/octet-stream" } });
      const r = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
      if (!res.ok) throw new Error(r.error || `HTTP ${res.status}`);
      el("pitch").value = r.pitch;
      play.applyToPage(r.preset);   // shape.js: mode, sliders, conditions; gss:timbre re-renders the keyboard
      if (play.remember) play.remember(r.preset);
      show(r);                      // app.js: player, spectrogram, download (the newest result)
      const cond = Object.values(r.conditions || {}).flat().join(" ");
      const text = `${file.name}: pitch ${r.pitch}${cond ? `, ${cond}` : ""}, ${r.distance_db.toFixed(1)} dB from ` +
        `the recording (its own round trip: ${r.floor_db.toFixed(1)} dB), found in ${r.seconds} s` +
        (r.others ? `; the file's ${r.others} other note${r.others === 1 ? "" : "s"} left out` : "") +
        (r.warnings.length ? ` (${r.warnings.join("; ")})` : "");
      el("invert-status").textContent = text;
      status(`${text}: the page now plays it`);
      mark("done");
    } catch (err) {
      el("invert-status").textContent = `${file.name}: ${err.message}`;
      status(`${file.name}: ${err.message}`, true);
      mark("refused");
    } finally {
      busy = false;
    }
  }
  play.invert = invert;

  const isFileInput = (t) => t instanceof HTMLInputElement && t.type === "file";   // those take their own drops
  const carriesFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");

  document.addEventListener("gss:ready", () => {
    el("sound-file").addEventListener("change", (e) => {
      const file = e.target.files[0];
      e.target.value = "";
      invert(file);
    });
    document.addEventListener("dragover", (e) => {
      if (!carriesFiles(e) || isFileInput(e.target)) return;
      e.preventDefault();   // otherwise the browser opens the file instead of the page getting it
      e.dataTransfer.dropEffect = "copy";
      document.body.classList.add("dropping");
    });
    document.addEventListener("dragleave", (e) => {
      if (!e.relatedTarget) document.body.classList.remove("dropping");   // left the window
    });
    document.addEventListener("drop", (e) => {
      document.body.classList.remove("dropping");
      if (!carriesFiles(e) || isFileInput(e.target)) return;
      e.preventDefault();
      invert(e.dataTransfer.files[0]);
    });
  });
})();
