// Seeing what plays: a level meter (peak, dBFS) and a scrolling spectrogram of the instrument's output, read from
// the Web Audio analyser play.js puts before the speakers. (The spectrogram of the last synthesized note, the
// model's own view, is the image under Output.)
"use strict";
(() => {
  const FRAME_MS = 40;
  const FLOOR_DB = -60;
  const STEP = 3;          // pixels per frame
  const el = (id) => document.getElementById(id);
  const play = window.gss.play;
  play.level = FLOOR_DB;    // the meter's value (dBFS), for tests

  function frame() {
    play.frames = (play.frames || 0) + 1;
    const analyser = play.analyser;
    if (!analyser) return;
    const wave = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(wave);
    let peak = 0;
    for (const v of wave) peak = Math.max(peak, Math.abs(v));
    const db = peak > 0 ? Math.max(FLOOR_DB, 20 * Math.log10(peak)) : FLOOR_DB;
    play.level = Math.max(db, play.level - 1.5);   // falls back slowly, as meters do
    el("level").value = play.level;
    el("level-db").textContent = play.level > FLOOR_DB ? `${play.level.toFixed(0)} dBFS` : "silent";
    if (play.level > FLOOR_DB) column(analyser);
  }

  // One new column on the right of the canvas: the analyser's magnitudes, low frequencies at the bottom.
  function column(analyser) {
    const canvas = el("scope");
    const g = canvas.getContext("2d");
    const bins = new Uint8Array(analyser.frequencyBinCount);
    analyser.getByteFrequencyData(bins);
    g.drawImage(canvas, -STEP, 0);
    const h = canvas.height;
    for (let y = 0; y < h; y++) {
      const v = bins[Math.floor((1 - y / h) * bins.length * 0.5)];   // the lower half of the band: where notes are
      g.fillStyle = `rgb(${v}, ${Math.floor(v * 0.45)}, ${Math.floor(90 + v * 0.4)})`;
      g.fillRect(canvas.width - STEP, y, STEP, 1);
    }
  }

  document.addEventListener("gss:ready", () => {
    const g = el("scope").getContext("2d");
    g.fillStyle = "#000";
    g.fillRect(0, 0, el("scope").width, el("scope").height);
    setInterval(frame, FRAME_MS);
  });
})();
