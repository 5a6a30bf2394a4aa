"""OSC server: the address space of docs/live.md on top of a `Session` (python-osc for the wire format).

One UDP socket receives; quick state messages (pitch, z, coefficients, steps, settings) are answered
at once, generation and loading go to the session's single worker through its bounded queue. Replies go
to the sender's address and port *from the server's own socket*: Pd's `[netsend -u -b]` is a connected
UDP socket, so it only accepts datagrams from the address it sent to (docs/live.md).

A request may begin with the two arguments `id <value>`; otherwise the server numbers it. Completion
replies (`/ok`, `/synthesized`, `/hallucinated`, `/error`, …) end with that id. Malformed datagrams,
unknown addresses and bad values get `/error <message> <id>` and never stop the server.
"""

from __future__ import annotations

import socketserver
import sys
import threading
import traceback
from concurrent.futures import Future
from typing import Callable

import numpy as np
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import ParseError

from ..errors import UserError
from .osc_timbre import text_arg as _text, timbre_handlers
from .session import SETTING_NAMES, Result, Session

#: UDP's largest payload; python-osc's socketserver default (8192) silently drops bigger datagrams.
MAX_PACKET = 65535
MAX_ERROR_CHARS = 300


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{what} must be a number, got {type(value).__name__} {value!r}"[:MAX_ERROR_CHARS])
    return float(value)


def _numbers(values, what: str) -> list[float]:
    return [_number(v, what) for v in values]


def _osc_arg(builder: OscMessageBuilder, value) -> None:
    """Only the tags Pd 0.53's [oscparse] reads: f, i, s (never T/F/N, 64-bit ints or doubles)."""
    if isinstance(value, (bool, np.bool_)):
        builder.add_arg(int(value), "i")
    elif isinstance(value, (int, np.integer)) and -(2**31) <= int(value) < 2**31:
        builder.add_arg(int(value), "i")
    elif isinstance(value, (int, float, np.integer, np.floating)):
        builder.add_arg(float(value), "f")
    else:
        builder.add_arg(str(value), "s")


MAX_BUNDLE_DEPTH = 8


def split_packet(data: bytes, depth: int = 0) -> list[bytes]:
    """The messages of an OSC packet (a message or a bundle, nested bundles flattened), checked element by
    element: python-osc silently drops a malformed bundle element and loops forever on a negative element
    size, so bundles are taken apart here and any defect refuses the whole packet (ParseError)."""
    if data.startswith(b"#bundle\x00"):
        if depth >= MAX_BUNDLE_DEPTH:
            raise ParseError(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
        if len(data) < 16:
            raise ParseError("bundle without a complete time tag")
        out: list[bytes] = []
        pos = 16
        while pos < len(data):
            if pos + 4 > len(data):
                raise ParseError(f"bundle element size cut off at byte {pos}")
            size = int.from_bytes(data[pos:pos + 4], "big", signed=True)
            if size <= 0 or size % 4 or pos + 4 + size > len(data):
                raise ParseError(f"bundle element at byte {pos} has an invalid size {size}")
            out.extend(split_packet(data[pos + 4:pos + 4 + size], depth + 1))
            pos += 4 + size
        return out
    if data.startswith(b"/"):
        return [data]
    raise ParseError("neither an OSC message (starts with '/') nor a bundle ('#bundle')")


class _UDPServer(socketserver.UDPServer):
    max_packet_size = MAX_PACKET
    allow_reuse_address = False

    def __init__(self, sock, handler):
        """On a socket `serving.open_socket` bound (socketserver would bind its own)."""
        super().__init__(sock.getsockname()[:2], handler, bind_and_activate=False)
        self.socket.close()
        self.socket, self.server_address = sock, sock.getsockname()

    def handle_error(self, request, client_address):  # never let one datagram stop the loop
        traceback.print_exc(file=sys.stderr)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, _sock = self.request
        self.server.owner.handle_datagram(data, self.client_address)


class OSCServer:
    """Serve a session over OSC/UDP. `start()` runs it in a thread; `serve_forever()` blocks. `sock`: a UDP socket
    `serving.open_socket` bound already (host and port are then unused); without it, host:port is bound here."""

    def __init__(self, session: Session, host: str = "127.0.0.1", port: int = 9000,
                 reply_port: int | None = None, log: Callable[[str], None] | None = None, sock=None):
        from .serving import open_socket

        self.session = session
        self.reply_port = reply_port
        self.log = log or (lambda line: None)
        self._udp = _UDPServer(sock if sock is not None else open_socket(host, port, "udp"), _Handler)
        self._udp.owner = self
        self._thread: threading.Thread | None = None
        self.handlers: dict[str, Callable] = {
            "/ping": self._ping, "/info": self._info,
            "/load": self._load, "/load_ganspace_components": self._load_components,
            "/pitch": self._pitch,
            "/randomize_z": self._randomize_z, "/set_z": self._set_z, "/slerp_z": self._slerp_z,
            "/get_z": self._get_z,
            "/coefficients": self._coefficients, "/coefficient": self._coefficient,
            "/synthesize": lambda a, r: self._synthesize("offset", a, r),
            "/synthesize_z": lambda a, r: self._synthesize("z", a, r),
            "/synthesize_latent": lambda a, r: self._synthesize("latent", a, r),
            "/synthesize_noz": lambda a, r: self._synthesize("noz", a, r),
            "/hallucinate": self._hallucinate_z,
            "/hallucinate_noz": lambda a, r: self._hallucinate_steps("noz", a, r),
            "/hallucinate_offset": lambda a, r: self._hallucinate_steps("offset", a, r),
            "/add_step": lambda a, r: self._step_op("/add_step", self.session.add_step, a, r),
            "/remove_step": lambda a, r: self._step_op("/remove_step", self.session.remove_step, a, r),
            "/prev_step": lambda a, r: self._step_op("/prev_step", lambda: self.session.move_step(-1), a, r),
            "/next_step": lambda a, r: self._step_op("/next_step", lambda: self.session.move_step(1), a, r),
            "/get_step": lambda a, r: self._step_op("/get_step", lambda: None, a, r),
            "/step": self._select_step,
            "/save": self._save,
            "/export_instrument": self._export_instrument,
            "/invert": self._invert,
        }
        for name in SETTING_NAMES:
            self.handlers[f"/{name}"] = lambda a, r, _n=name: self._setting(_n, a, r)
        self.handlers.update(timbre_handlers(self))  # /condition, /keyboard, /save_preset, /load_preset

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        return self._udp.server_address[:2]

    def serve_forever(self) -> None:
        self._udp.serve_forever(poll_interval=0.2)

    def start(self) -> "OSCServer":
        self._thread = threading.Thread(target=self.serve_forever, name="ganspacesynth-osc", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self._udp.shutdown()
        self._udp.server_close()

    # -- wire ----------------------------------------------------------------------------------
    def send(self, addr: tuple[str, int], address: str, *args) -> None:
        builder = OscMessageBuilder(address)
        for a in args:
            _osc_arg(builder, a)
        target = addr if self.reply_port is None else (addr[0], self.reply_port)
        try:
            self._udp.socket.sendto(builder.build().dgram, target)
        except OSError as exc:  # an unreachable or vanished client must not stop the server
            self.log(f"reply to {target} failed: {exc}")

    def error(self, addr, message: str, rid) -> None:
        self.send(addr, "/error", str(message)[:MAX_ERROR_CHARS], rid)

    def handle_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            messages = [OscMessage(dgram) for dgram in split_packet(data)]
        except (ParseError, Exception) as exc:  # python-osc raises assorted errors on hostile bytes
            self.error(addr, f"malformed OSC packet ({len(data)} bytes): {exc}", 0)
            return
        for msg in messages:
            self.handle_message(msg.address, list(msg.params), addr)

    def handle_message(self, address: str, args: list, addr) -> None:
        rid: object = None
        try:
            if len(args) >= 2 and args[0] == "id":
                rid = args[1] if isinstance(args[1], (str, int, float)) else str(args[1])
                args = args[2:]
            if rid is None:
                rid = self.session.new_id()
            handler = self.handlers.get(address)
            if handler is None:
                raise UserError(f"unknown address {address[:80]} (see docs/live.md)")
            handler(args, (addr, rid))
        except UserError as exc:
            self.error(addr, str(exc), rid if rid is not None else 0)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.error(addr, f"internal error: {type(exc).__name__}: {exc}", rid if rid is not None else 0)

    def _ok(self, reply, address: str) -> None:
        addr, rid = reply
        self.send(addr, "/ok", address, rid)

    def _queue(self, request, reply, on_done: Callable[[object], None]) -> None:
        addr, rid = reply

        def done(fut: Future) -> None:
            exc = fut.exception()
            if exc is not None:
                self.error(addr, str(exc), rid)
            else:
                on_done(fut.result())

        self.session.submit(request, rid, callback=done)

    # -- handlers ------------------------------------------------------------------------------
    @staticmethod
    def _nargs(args, lo: int, hi: int | None, usage: str) -> None:
        if len(args) < lo or (hi is not None and len(args) > hi):
            raise UserError(f"usage: {usage}")

    def _ping(self, args, reply):
        self.send(reply[0], "/pong", reply[1])

    def _info(self, args, reply):
        d = self.session.describe()
        pitches = d["pitches"] or [0]
        self.send(reply[0], "/info", d["model"], d["latent_size"], d["sample_rate"], d["samples"],
                  d["components"], min(pitches), max(pitches), reply[1])

    # Loading runs here, in the receiving thread, not on the worker: messages that follow a load (coefficients
    # for the new components, say) must see it. Queued notes keep the model they were submitted with.
    def _load(self, args, reply):
        self._nargs(args, 1, 1, "/load <model file>")
        path = self.session.load_model(_text(args[0], "model"))
        synth = self.session.synth
        self.send(reply[0], "/loaded", str(path), synth.latent_size, synth.sample_rate,
                  synth.config.spectral.audio_length, reply[1])

    def _load_components(self, args, reply):
        self._nargs(args, 1, 1, "/load_ganspace_components <components file>")
        path = self.session.load_components(_text(args[0], "components file"))
        self.send(reply[0], "/components_loaded", str(path), self.session.num_components,
                  str(getattr(self.session.components, "layer", "")), reply[1])

    def _pitch(self, args, reply):
        self._nargs(args, 1, 1, "/pitch <midi note>")
        self.session.set_pitch(_number(args[0], "pitch"))
        self._ok(reply, "/pitch")

    def _send_z(self, reply, z: np.ndarray, address: str) -> None:
        self.send(reply[0], "/z", *[float(v) for v in z])
        self._ok(reply, address)

    def _randomize_z(self, args, reply):
        self._nargs(args, 0, 1, "/randomize_z [seed]")
        seed = None if not args else _number(args[0], "seed")
        if seed is not None and (seed != round(seed) or seed < 0):
            raise UserError("seed must be a whole number >= 0")
        self._send_z(reply, self.session.randomize_z(None if seed is None else int(seed)), "/randomize_z")

    def _set_z(self, args, reply):
        self._send_z(reply, self.session.set_z(_numbers(args, "z")), "/set_z")

    def _get_z(self, args, reply):
        self._send_z(reply, self.session.z, "/get_z")

    def _slerp_z(self, args, reply):
        L = self.session.synth.latent_size
        if len(args) == 3:
            t, a, b = args
        elif len(args) == 1 + 2 * L:
            t, a, b = args[0], args[1:1 + L], args[1 + L:]
        else:
            raise UserError(f"usage: /slerp_z <t> <seed a> <seed b>  or  /slerp_z <t> <{L} values> <{L} values>")
        a = _numbers(a, "z") if isinstance(a, list) else _number(a, "seed")
        b = _numbers(b, "z") if isinstance(b, list) else _number(b, "seed")
        self._send_z(reply, self.session.slerp_z(_number(t, "slerp amount"), a, b), "/slerp_z")

    def _coefficients(self, args, reply):
        self.session.set_coefficients(_numbers(args, "coefficients"))
        self._ok(reply, "/coefficients")

    def _coefficient(self, args, reply):
        self._nargs(args, 2, 2, "/coefficient <index> <value>")
        self.session.set_coefficient(_number(args[0], "index"), _number(args[1], "coefficient"))
        self._ok(reply, "/coefficient")

    def _synthesize(self, mode: str, args, reply):
        nums = _numbers(args, "arguments")
        pitch = nums[0] if nums else None
        coeffs = nums[1:] if len(nums) > 1 else None
        if coeffs is not None and mode == "z":
            raise UserError("usage: /synthesize_z [pitch]")
        request = self.session.note_request(mode, pitch=pitch, coeffs=coeffs)
        self._queue(request, reply, lambda r: self._send_result(reply, "/synthesized", r))

    def _send_result(self, reply, address: str, result: Result) -> None:
        self.send(reply[0], address, str(result.path), result.samples, result.sample_rate, reply[1])

    def _hallucinate_z(self, args, reply):
        self._nargs(args, 0, 3, "/hallucinate [count [seed [pitch]]]")
        nums = _numbers(args, "arguments")
        count = nums[0] if nums else None
        seed = None
        if len(nums) > 1:
            if nums[1] != round(nums[1]) or nums[1] < 0:
                raise UserError("seed must be a whole number >= 0")
            seed = int(nums[1])
        pitch = nums[2] if len(nums) > 2 else None
        request = self.session.hallucination_request("z", pitch=pitch, count=count, seed=seed)
        self._queue(request, reply, lambda r: self._send_result(reply, "/hallucinated", r))

    def _hallucinate_steps(self, mode: str, args, reply):
        self._nargs(args, 0, 1, f"/hallucinate_{mode} [pitch]")
        pitch = _number(args[0], "pitch") if args else None
        request = self.session.hallucination_request(mode, pitch=pitch)
        self._queue(request, reply, lambda r: self._send_result(reply, "/hallucinated", r))

    def _send_step(self, reply, address: str) -> None:
        index, count, coeffs = self.session.step_state()
        self.send(reply[0], "/step", index, count, *[float(c) for c in coeffs])
        self._ok(reply, address)

    def _step_op(self, address: str, fn, args, reply):
        self._nargs(args, 0, 0, f"{address} (no arguments)")
        fn()
        self._send_step(reply, address)

    def _select_step(self, args, reply):
        self._nargs(args, 1, 1, "/step <index>")
        self.session.select_step(_number(args[0], "step"))
        self._send_step(reply, "/step")

    def _setting(self, name: str, args, reply):
        self._nargs(args, 1, 1, f"/{name} <value>")
        self.session.set_setting(name, _number(args[0], name))
        self._ok(reply, f"/{name}")

    def _save(self, args, reply):
        self._nargs(args, 1, 2, "/save <name> [overwrite]")
        if len(args) == 2 and args[1] != "overwrite":
            raise UserError("usage: /save <name> [overwrite]")
        path = self.session.save_last(_text(args[0], "name"), overwrite=len(args) == 2)
        self.send(reply[0], "/saved", str(path), reply[1])

    def _export_instrument(self, args, reply):
        self._nargs(args, 1, 3, "/export_instrument <name> [mode [every]]")
        name = _text(args[0], "name")
        mode = _text(args[1], "mode") if len(args) > 1 else "offset"
        every = _number(args[2], "every") if len(args) > 2 else 1
        request = self.session.instrument_request(name, mode, every=every)
        self._queue(request, reply, lambda r: self.send(reply[0], "/exported", str(r.path), reply[1]))

    def _invert(self, args, reply):
        """A sound file's first note becomes the state (`Session.invert_request`; a few seconds, on the worker):
        `/z …`, `/coefficients …`, then `/inverted <path> <pitch> <distance_db> <conditions> <id>`."""
        self._nargs(args, 1, 3, "/invert <sound file> [mode [pitch]]")
        mode = _text(args[1], "mode") if len(args) > 1 else "offset"
        pitch = _number(args[2], "pitch") if len(args) > 2 else None
        request = self.session.invert_request(_text(args[0], "sound file"), mode, pitch)
        addr, rid = reply

        def done(inverted):
            preset, note = inverted.preset, inverted.note
            conditions = " ".join(f"{k}={','.join(v) if isinstance(v, list) else v}"
                                  for k, v in sorted(preset["conditions"].items())) or "none"
            self.send(addr, "/z", *preset["z"])
            self.send(addr, "/coefficients", *[float(c) for c in inverted.coeffs])
            self.send(addr, "/inverted", str(inverted.result.path), inverted.pitch, round(float(note.distance_db), 3),
                      conditions, rid)

        self._queue(request, reply, done)
