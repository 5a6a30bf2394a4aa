"""serve-web: a small JSON API over the shared `Session` plus one static page (static/index.html).

Flask + werkzeug's threaded server, bound to 127.0.0.1. Each request thread submits its job to the
session's single generation worker and waits for it, so the page and any OSC client share one queue
and one state. Requests from other hosts (DNS rebinding) are refused by checking the Host header.
"""

from __future__ import annotations

import io
import re
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from flask import Flask, abort, jsonify, request, send_file, send_from_directory
from werkzeug.serving import make_server

from ...errors import UserError
from ..session import MAX_SOUND_BYTES, Result, Session

STATIC = Path(__file__).resolve().parent / "static"
RESULT_NAME = re.compile(r"^(note|hallucination|midi)-\d{6}\.wav$")
#: How long a request waits for its place in the queue and its generation.
WAIT_S = 600
SPECTROGRAM_CACHE = 32


def spectrogram_png(synth, wave: np.ndarray) -> bytes:
    """The model's own view of a sound: the normalised log-magnitude (mel) channel, low notes at the bottom."""
    from matplotlib import image

    n = synth.config.spectral.audio_length
    wave = np.asarray(wave, dtype=np.float32)
    chunks = [wave[i:i + n] for i in range(0, max(len(wave), 1), n)]
    chunks[-1] = np.pad(chunks[-1], (0, n - len(chunks[-1])))
    spec = synth.spectral.waves_to_specgrams(np.stack(chunks))[:, 0]  # [B, T, F]
    mag = np.concatenate(list(spec.cpu().numpy()), axis=0).T[::-1]  # [F, T·B], high frequencies on top
    buf = io.BytesIO()
    image.imsave(buf, mag, cmap="magma", vmin=-1.0, vmax=1.0, format="png")
    return buf.getvalue()


#: Deepest JSON nesting accepted in a request body (the API's deepest is 2: steps of coefficients).
MAX_JSON_DEPTH = 32


def parse_json_body(raw: bytes):
    """A request body as JSON, refusing (UserError, so 400) bad UTF-8, bad JSON and absurd nesting before the
    parser recurses into it (100,000 nested brackets would end in a RecursionError, a 500)."""
    import json

    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:  # bracket depth outside strings, without parsing
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                raise UserError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        elif byte in (0x5D, 0x7D):
            depth -= 1
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UserError("expected a JSON object") from None


def create_app(session: Session) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 1 << 20
    pngs: OrderedDict[str, bytes] = OrderedDict()
    png_lock = threading.Lock()

    @app.before_request
    def local_only():
        host = (request.host or "").rsplit(":", 1)[0].strip("[]")
        if host not in ("127.0.0.1", "localhost", "::1"):
            abort(403)

    @app.errorhandler(UserError)
    def user_error(exc):
        status = 503 if str(exc).startswith("busy") else 400
        return jsonify(error=str(exc)), status

    def body() -> dict:
        data = parse_json_body(request.get_data(cache=True))
        if not isinstance(data, dict):
            raise UserError("expected a JSON object")
        return data

    def finish(request) -> dict:
        """Queue a validated request (its state changes apply once it is queued) and wait for its note."""
        return result_json(session.submit(request, session.new_id()).result(timeout=WAIT_S))

    def result_json(result: Result) -> dict:
        """A finished note's JSON (its spectrogram made now and kept for the page)."""
        png = spectrogram_png(session.synth, result.wave)
        with png_lock:
            pngs[result.path.name] = png
            while len(pngs) > SPECTROGRAM_CACHE:
                pngs.popitem(last=False)
        name = result.path.name
        return {"id": result.id, "kind": result.kind, "name": name, "audio": f"/audio/{name}",
                "download": f"/download/{name}", "spectrogram": f"/spectrogram/{name}.png",
                "samples": result.samples, "sample_rate": result.sample_rate}

    @app.get("/")
    def index():
        return send_from_directory(STATIC, "index.html")

    @app.get("/static/<path:name>")
    def static_file(name):
        return send_from_directory(STATIC, name)

    @app.get("/api/state")
    def state():
        return jsonify(session.describe())

    @app.post("/api/z")
    def z():
        data = body()
        if "t" in data:
            zz = session.slerp_z(data["t"], data.get("a", 1), data.get("b", 2))
        else:
            zz = session.randomize_z(data.get("seed"))
        return jsonify(z=[float(v) for v in zz])

    # Every request is validated as a whole first (building it checks everything and changes nothing); the
    # pitch, coefficients, steps and settings it carries become the session's state once it is queued, as they
    # do for OSC requests.
    @app.post("/api/synthesize")
    def synthesize():
        data = body()
        coeffs = data.get("coefficients")
        if coeffs is not None and not isinstance(coeffs, list):
            raise UserError("coefficients must be a list of numbers")
        request = session.note_request(str(data.get("mode", "offset")), pitch=data.get("pitch"), coeffs=coeffs)
        return jsonify(finish(request))

    @app.post("/api/hallucinate")
    def hallucinate():
        data = body()
        mode = str(data.get("mode", "noz"))
        settings = session.check_settings(data.get("settings") or {})
        steps = None
        if mode != "z":
            steps = data.get("steps")
            if not isinstance(steps, list) or not all(isinstance(s, list) for s in steps):
                raise UserError("steps must be a list of coefficient lists")
            steps = session.check_steps(steps)
        request = session.hallucination_request(mode, pitch=data.get("pitch"), count=data.get("count"),
                                                seed=data.get("seed"), settings=settings, steps=steps)
        return jsonify(finish(request))

    @app.post("/api/instrument")
    def instrument():
        """Export the current timbre (pitch range, z and coefficients as sent) as a SoundFont; the JSON names the
        download. Names are plain file names: the file is always <out_dir>/instruments/<name>.sf2."""
        data = body()
        coeffs = data.get("coefficients")
        if coeffs is not None and not isinstance(coeffs, list):
            raise UserError("coefficients must be a list of numbers")
        pitches = data.get("pitches")
        if pitches is not None and not isinstance(pitches, str):
            raise UserError("pitches must be a string such as '36-84'")
        request = session.instrument_request(data.get("name", "instrument"), str(data.get("mode", "offset")),
                                             every=data.get("every", 1), pitches=pitches,
                                             velocity_layers=data.get("velocity_layers", 1),
                                             loop=str(data.get("loop", "auto")), coeffs=coeffs)
        result = session.submit(request, session.new_id()).result(timeout=WAIT_S)
        inst, name = result.instrument, result.path.name
        return jsonify(name=name, download=f"/instrument/{name}", notes=len(inst.notes), looped=inst.looped,
                       keys=[min(n.key_range[0] for n in inst.notes), max(n.key_range[1] for n in inst.notes)],
                       bytes=result.path.stat().st_size, seconds=round(result.seconds, 2))

    @app.post("/api/invert")
    def invert():
        """Start from the uploaded sound (the body: the file's bytes; query `mode`, `name`, optional `pitch`): its
        first note becomes the state (`Session.invert_request`). Answers as /api/synthesize does (the note as the
        mode plays it) plus `pitch`, `distance_db`, `floor_db`, `conditions`, `coefficients` (the note's own, or
        null without components), `preset` (the timbre now held), `others` (notes of the file not inverted),
        `warnings` and `seconds`."""
        size = request.content_length or 0
        if size > MAX_SOUND_BYTES:
            return jsonify(error=f"the sound file is {size / 2**20:.1f} MB; at most {MAX_SOUND_BYTES >> 20} MB"), 413
        request.max_content_length = MAX_SOUND_BYTES  # this route's own limit, above the app's 1 MB
        pitch = request.args.get("pitch")
        if pitch is not None:
            try:
                pitch = float(pitch)
            except ValueError:
                raise UserError("pitch must be a MIDI note number") from None
        req = session.invert_request(request.get_data(cache=False), request.args.get("mode", "offset"), pitch,
                                     name=request.args.get("name"))
        found = session.submit(req, session.new_id()).result(timeout=WAIT_S)
        note = found.note
        out = result_json(found.result)
        out.update(pitch=found.pitch, distance_db=round(float(note.distance_db), 3),
                   floor_db=round(float(note.floor_db), 3), conditions=found.preset["conditions"],
                   coefficients=None if note.coefficients is None else [float(c) for c in note.coefficients],
                   preset=found.preset, others=found.others, seconds=round(float(note.seconds), 2),
                   warnings=list(note.target.warnings) + list(note.warnings))
        return jsonify(out)

    @app.get("/instrument/<name>")
    def instrument_file(name):
        path = session.instrument_path(name) if name.endswith(".sf2") else None
        if path is None or not path.is_file():
            abort(404)
        return send_file(path, mimetype="application/octet-stream", as_attachment=True, download_name=path.name,
                         max_age=0)

    def result_path(name: str) -> Path:
        if not RESULT_NAME.match(name) or not (session.out_dir / name).is_file():
            abort(404)
        return session.out_dir / name

    @app.get("/audio/<name>")
    def audio(name):
        return send_file(result_path(name), mimetype="audio/wav", max_age=0)

    @app.get("/download/<name>")
    def download(name):
        return send_file(result_path(name), mimetype="audio/wav", as_attachment=True, download_name=name)

    @app.get("/spectrogram/<name>.png")
    def spectrogram(name):
        with png_lock:
            png = pngs.get(name)
        if png is None:
            from ...audio.io import read_audio

            wave, _ = read_audio(result_path(name), sample_rate=session.synth.sample_rate)
            png = spectrogram_png(session.synth, wave)
        return send_file(io.BytesIO(png), mimetype="image/png", max_age=0)

    from .play import register

    register(app, session, body, finish)  # the instrument: keyboard, conditions, presets, morphs, MIDI files
    return app


class WebServer:
    """The app on a threaded werkzeug server at 127.0.0.1:port (0: any free port), or on `sock`, a listening socket
    `serving.open_socket` opened already (host and port are then unused). The socket is always opened there, never
    by werkzeug, whose refusal of a busy port is two lines and `sys.exit`."""

    def __init__(self, session: Session, host: str = "127.0.0.1", port: int = 8000, sock=None):
        from ..serving import open_socket

        sock = sock if sock is not None else open_socket(host, port, "tcp")
        try:
            host, port = sock.getsockname()[:2]
            self.app = create_app(session)
            self._server = make_server(host, port, self.app, threaded=True, fd=sock.fileno())
        finally:
            sock.close()  # werkzeug serves a duplicate of it
        self.port = self._server.port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> "WebServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="ganspacesynth-web", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()


__all__ = ["create_app", "WebServer", "spectrogram_png"]
