// Playing the instrument (play.js): the on-screen keyboard over the model's pitch range, the computer keyboard
// (two rows as DAWs map them: A W S E D F T G Y H U J K = C..C, Z / X shift an octave) and Web MIDI inputs
// (note on/off with velocity, sustain pedal CC64) where the browser offers them.
"use strict";
(() => {
  const ROW = "awsedftgyhujk";            // C C# D D# E F F# G G# A A# B C
  const BLACK = new Set([1, 3, 6, 8, 10]);  // pitch classes of the black keys
  const el = (id) => document.getElementById(id);
  const gss = window.gss;
  const play = gss.play;
  const typed = new Map();                  // computer key -> pitch it started
  play.octave = 4;                          // the A key plays C4 = 60
  const base = () => 12 * (play.octave + 1);

  // -- on-screen keyboard --------------------------------------------------------------------------------------------
  function build(pitches) {
    const box = el("keyboard");
    box.innerHTML = "";
    const lo = Math.min(...pitches), hi = Math.max(...pitches);
    let white = 0;
    for (let p = lo; p <= hi; p++) {
      const key = document.createElement("div");
      key.dataset.pitch = p;
      key.title = `MIDI ${p}`;
      if (BLACK.has(p % 12)) {
        key.className = "key black";
        key.style.left = `calc(${white} * var(--white) - var(--black) / 2)`;
      } else {
        key.className = "key white";
        key.style.left = `calc(${white} * var(--white))`;
        white += 1;
      }
      if (!pitches.includes(p)) key.classList.add("missing");
      box.append(key);
    }
    box.style.width = `calc(${white} * var(--white))`;
    label();
  }

  function keyOf(pitch) { return el("keyboard").querySelector(`[data-pitch="${pitch}"]`); }

  function label() {
    for (const key of el("keyboard").children) {
      const i = Number(key.dataset.pitch) - base();
      key.textContent = i >= 0 && i < ROW.length ? ROW[i].toUpperCase() : "";
    }
    el("octave").textContent = `C${play.octave} = ${base()}`;
  }

  function pointer(box) {
    let current = null;
    const velocity = (e, key) => {   // lower on the key: louder, as on a piano
      const r = key.getBoundingClientRect();
      return Math.round(40 + 87 * Math.min(1, Math.max(0, (e.clientY - r.top) / r.height)));
    };
    const start = (e) => {
      const key = e.target.closest(".key");
      if (!key) return;
      current = Number(key.dataset.pitch);
      play.noteOn(current, velocity(e, key), e.timeStamp);
    };
    const stop = () => { if (current !== null) { play.noteOff(current); current = null; } };
    box.addEventListener("pointerdown", (e) => { box.setPointerCapture(e.pointerId); start(e); e.preventDefault(); });
    box.addEventListener("pointermove", (e) => {   // glissando: slide across keys with the button down
      if (current === null) return;
      const key = document.elementFromPoint(e.clientX, e.clientY)?.closest(".key");
      if (key && Number(key.dataset.pitch) !== current) { stop(); start({ ...e, target: key, clientY: e.clientY, timeStamp: e.timeStamp }); }
    });
    for (const end of ["pointerup", "pointercancel", "lostpointercapture"]) box.addEventListener(end, stop);
  }

  document.addEventListener("gss:note", (e) => {
    const key = keyOf(e.detail.pitch);
    if (key) key.classList.toggle("on", e.detail.on);
  });

  // -- computer keyboard ---------------------------------------------------------------------------------------------
  function typing(target) {
    const tag = target && target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) return true;
    return tag === "INPUT" && !["range", "checkbox", "radio", "button", "submit"].includes(target.type);
  }

  function shift(by) {
    const pitches = play.pitches.length ? play.pitches : gss.info.pitches;
    const lo = Math.min(...pitches), hi = Math.max(...pitches);
    const next = play.octave + by;
    if (12 * (next + 1) + ROW.length - 1 < lo || 12 * (next + 1) > hi) return;  // no key of the row would sound
    play.octave = next;
    label();
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    const key = e.key.toLowerCase();
    if (key === "z" || key === "x") { if (!e.repeat) shift(key === "z" ? -1 : 1); e.preventDefault(); return; }
    const i = ROW.indexOf(key);
    if (i < 0 || key.length !== 1) return;
    e.preventDefault();
    if (e.repeat || typed.has(key)) return;
    const pitch = base() + i;
    typed.set(key, pitch);
    play.noteOn(pitch, 100, e.timeStamp);
  });

  document.addEventListener("keyup", (e) => {
    const key = e.key.toLowerCase();
    if (!typed.has(key)) return;
    play.noteOff(typed.get(key));
    typed.delete(key);
  });

  // A list keeps the focus after a choice and would take the letters: give them back to the keyboard.
  document.addEventListener("change", (e) => { if (e.target.tagName === "SELECT") e.target.blur(); });

  window.addEventListener("blur", () => { for (const [key, pitch] of typed) { play.noteOff(pitch); typed.delete(key); } });

  // -- Web MIDI -----------------------------------------------------------------------------------------------------
  play.midiMessage = function midiMessage(e) {
    const [status, a, b] = e.data;
    const kind = status & 0xf0;
    if (kind === 0x90 && b > 0) play.noteOn(a, b, e.timeStamp);
    else if (kind === 0x80 || kind === 0x90) play.noteOff(a);
    else if (kind === 0xb0 && a === 64) play.setSustain(b >= 64);
    else if (kind === 0xb0 && (a === 120 || a === 123)) {   // all sound / all notes off
      play.setSustain(false);
      for (const p of [...play.down]) play.noteOff(p);
    }
  };

  function midi() {
    const show = (text) => { el("midi-status").textContent = text; };
    if (!navigator.requestMIDIAccess) { show("MIDI: this browser has no Web MIDI (Chrome, Edge and Opera have)"); return; }
    navigator.requestMIDIAccess().then((access) => {
      const attach = () => {
        const names = [];
        for (const input of access.inputs.values()) { input.onmidimessage = play.midiMessage; names.push(input.name); }
        show(names.length ? `MIDI: ${names.join(", ")}` : "MIDI: no input connected");
      };
      attach();
      access.onstatechange = attach;
    }, (err) => show(`MIDI: not allowed (${err.message || err.name})`));
  }

  document.addEventListener("gss:ready", () => {
    build(gss.info.pitches);
    pointer(el("keyboard"));
    midi();
  });
})();
