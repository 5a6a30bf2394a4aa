"""serve-web's instrument routes: the keyboard render, conditions, presets, morphs and MIDI files.

Each route parses its request and calls the `Session` (interfaces/timbre.py), as the OSC addresses do; a refusal
is a JSON `{"error": "…"}` with status 400 (413 for an upload over the limit, 503 when the queue is full).

    POST /api/keyboard    {"mode", "coefficients", "conditions", "pitches"} → float32 little-endian notes
                          [len(pitches), samples] back to back; X-Pitches, X-Sample-Rate, X-Samples headers
    POST /api/conditions  {"conditions": {name: value}}            → {"conditions"}
    GET  /api/preset?mode=offset                                   → the current timbre as a preset
    POST /api/preset      {"preset": {…}}                          → {"preset"} (applied, bit for bit)
    POST /api/morph       {"a": preset, "b": preset, "t": 0..1}    → {"preset"} (applied)
    POST /api/midi?mode=offset   body: the MIDI file's bytes       → the result, as /api/synthesize's, + notes
"""

from __future__ import annotations

from collections import Counter

from flask import Flask, Response, jsonify, request

from ...errors import UserError
from ..presets import MAX_PRESET_BYTES
from ..timbre import MAX_MIDI_BYTES

#: How long a keyboard render may wait for its place in the queue and its generation.
WAIT_S = 600


def register(app: Flask, session, body, finish) -> None:
    """Add the instrument's routes to `app` (`body()` parses a JSON object; `finish(request)` queues a request
    that makes a WAV and answers its JSON). Counts requests per path in app.extensions["ganspacesynth"]."""
    counts: Counter = Counter()
    app.extensions["ganspacesynth"] = {"requests": counts}

    @app.before_request
    def count():
        counts[request.path] += 1

    @app.errorhandler(413)
    def too_large(exc):
        return jsonify(error=f"request too large: at most {app.config['MAX_CONTENT_LENGTH'] // 1024} KB"), 413

    def coefficients(data):
        values = data.get("coefficients")
        if values is not None and not isinstance(values, list):
            raise UserError("coefficients must be a list of numbers")
        return values

    @app.post("/api/keyboard")
    def keyboard():
        data = body()
        req = session.keyboard_request(str(data.get("mode", "offset")), pitches=data.get("pitches"),
                                       coeffs=coefficients(data), conditions=data.get("conditions"))
        kb = session.submit(req, session.new_id()).result(timeout=WAIT_S)
        headers = {"X-Pitches": ",".join(map(str, kb.pitches)), "X-Sample-Rate": str(kb.sample_rate),
                   "X-Samples": str(kb.waves.shape[1]), "Cache-Control": "no-store"}
        return Response(kb.waves.astype("<f4").tobytes(), mimetype="application/octet-stream", headers=headers)

    @app.post("/api/conditions")
    def conditions():
        return jsonify(conditions=session.set_conditions(body().get("conditions")))

    @app.get("/api/preset")
    def get_preset():
        return jsonify(session.preset(request.args.get("mode", "offset")))

    @app.post("/api/preset")
    def put_preset():
        if (request.content_length or 0) > MAX_PRESET_BYTES:
            raise UserError("a preset is a few kilobytes; this one is too large")
        data = body()
        return jsonify(preset=session.apply_preset(data.get("preset", data)))

    @app.post("/api/morph")
    def morph():
        data = body()
        return jsonify(preset=session.morph(data.get("a"), data.get("b"), data.get("t")))

    @app.post("/api/midi")
    def midi():
        size = request.content_length or 0
        if size > MAX_MIDI_BYTES:
            return jsonify(error=f"the MIDI file is {size / 1024:.0f} KB; at most {MAX_MIDI_BYTES // 1024} KB"), 413
        req = session.midi_request(request.get_data(cache=False), request.args.get("mode", "offset"))
        out = finish(req)
        out.update(notes=req.plan.count, skipped={k: v for k, v in req.plan.skipped.items() if v})
        return jsonify(out)


__all__ = ["register"]
