"""The OSC addresses for playing and keeping a timbre (docs/live.md): conditions, the keyboard render Pd plays
from `[notein]`, and presets by file name. They call the same `Session` methods as the web page's instrument
(interfaces/timbre.py); `OSCServer` adds them to its address table.

    /condition <name> [value]            → /ok /condition <id>          (no value or "none": cleared)
    /keyboard [mode]                     → /keyboard <path> <first> <last> <samples> <rate> <id>
    /save_preset <name> [mode [overwrite]] → /preset_saved <path> <id>
    /load_preset <name>                  → /z …, /coefficients …, then /preset_loaded <path> <mode> <id>
"""

from __future__ import annotations

from typing import Callable

from ..errors import UserError


def text_arg(value, what: str) -> str:
    """An OSC argument that must be a string."""
    if not isinstance(value, str):
        raise UserError(f"{what} must be a string")
    return value


def timbre_handlers(server) -> dict[str, Callable]:
    """{address: handler(args, reply)} for `server` (an OSCServer: its session, send, _nargs, _queue, _ok)."""
    session = server.session

    def condition(args, reply):
        server._nargs(args, 1, 2, "/condition <name> [value]  (no value or 'none' clears it)")
        value = None if len(args) == 1 else args[1]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = f"{value:g}"  # a Pd symbol that looks like a number arrives as one
        session.set_condition(text_arg(args[0], "condition name"), value)
        server._ok(reply, "/condition")

    def keyboard(args, reply):
        server._nargs(args, 0, 1, "/keyboard [mode]")
        mode = text_arg(args[0], "mode") if args else "offset"
        request = session.keyboard_request(mode, as_file=True)
        keys, length = request.pitches, request.source.synth.config.spectral.audio_length

        def done(result):
            server.send(reply[0], "/keyboard", str(result.path), keys[0], keys[-1], length, result.sample_rate,
                        reply[1])

        server._queue(request, reply, done)

    def save_preset(args, reply):
        server._nargs(args, 1, 3, "/save_preset <name> [mode [overwrite]]")
        if len(args) == 3 and args[2] != "overwrite":
            raise UserError("usage: /save_preset <name> [mode [overwrite]]")
        mode = text_arg(args[1], "mode") if len(args) > 1 else "offset"
        path = session.save_preset(text_arg(args[0], "preset name"), mode, overwrite=len(args) == 3)
        server.send(reply[0], "/preset_saved", str(path), reply[1])

    def load_preset(args, reply):
        server._nargs(args, 1, 1, "/load_preset <name or file>")
        path, timbre = session.load_preset(text_arg(args[0], "preset name"))
        server.send(reply[0], "/z", *[float(v) for v in timbre.z])
        server.send(reply[0], "/coefficients", *[float(v) for v in timbre.coeffs])
        server.send(reply[0], "/preset_loaded", str(path), timbre.mode, reply[1])

    return {"/condition": condition, "/keyboard": keyboard, "/save_preset": save_preset,
            "/load_preset": load_preset}


__all__ = ["timbre_handlers"]
