"""Starting and stopping live sessions: what serve-osc, serve-web and `demo --serve` share.

    options = ServeOptions(model=path, components=comps_path, out_dir=None)
    session = build_session(options)             # or build_session(options, synth=synth, components=comps)
    with stop_on_signals() as stop:
        server = WebServer(session, "127.0.0.1", 8000).start()   # or WebServer(session, sock=open_socket(…))
        serve_until_stopped(session, server, stop=stop)
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..choices import MAX_HALLUCINATION_NOTES as MAX_NOTES, MAX_HALLUCINATION_SECONDS as MAX_SECONDS
from ..errors import UserError


@dataclass(frozen=True)
class ServeOptions:
    """Everything a live session is built from (the servers' common options)."""

    model: Path | None = None          # None: the bundled model (and its components, unless others are given)
    components: Path | None = None
    out_dir: Path | None = None        # None: a temporary folder, removed on close except what clients saved
    allow_dirs: tuple[Path, ...] = ()  # besides the folders of the model and the components
    queue_size: int = 16
    keep: int = 200
    max_notes: int = MAX_NOTES
    max_seconds: float = MAX_SECONDS
    device: str | None = None
    precision: str = "float32"
    seed: int = 0


def build_session(options: ServeOptions, *, synth=None, components=None):
    """A running `Session` for `options`. `synth` and `components`: ones already loaded from `options.model` and
    `options.components` (the demo's), used instead of loading them again."""
    from ..compose.hallucinate import Limits
    from .options import load_synth
    from .session import Session

    allowed = [Path(d) for d in options.allow_dirs]
    for d in allowed:
        if not d.is_dir():
            raise UserError(f"--allow-dir {d} is not a folder")
    out_dir = options.out_dir
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UserError(f"--out-dir {out_dir} exists and is not a folder")
    if synth is None:
        synth = load_synth(options.model, options.device or "cpu", options.precision)
    components_path = options.components
    if components is not None:
        components_path = getattr(components, "path", None) or components_path
    elif options.model is None and components_path is None:  # the bundled model comes with its components
        from ..assets import default_components_path

        components_path = default_components_path()
    if synth.path is not None:
        allowed.append(Path(synth.path).resolve().parent)
    if components_path is not None:
        allowed.append(Path(components_path).resolve().parent)
    temporary = out_dir is None
    if temporary:
        out_dir = Path(tempfile.mkdtemp(prefix="ganspacesynth-live-"))
    session = Session(synth, components=components, allowed_dirs=allowed, out_dir=out_dir,
                      queue_size=options.queue_size, keep=options.keep, seed=options.seed,
                      limits=Limits(max_notes=options.max_notes, max_seconds=options.max_seconds),
                      remove_out_dir=temporary)
    try:
        if components is not None:
            session.components_path = None if components_path is None else Path(components_path).resolve()
        elif components_path is not None:
            session.load_components(str(Path(components_path).resolve()))
    except BaseException:
        session.close()  # and its temporary folder
        raise
    return session


def open_socket(host: str, port: int, protocol: str, option: str = "--port"):
    """A socket bound to host:port (`protocol` "tcp": listening, SO_REUSEADDR as every HTTP server sets it; "udp"),
    the one way serve-osc, serve-web and `demo --serve` open theirs, before they load anything. A port in use, an
    address this machine lacks or a port it may not open is one UserError line naming the address and the option
    to change (`option`)."""
    import errno
    import socket

    kind = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}[protocol]
    try:
        family = socket.getaddrinfo(host, port, type=kind)[0][0]
        if protocol == "tcp":
            return socket.create_server((host, port), family=family)
        sock = socket.socket(family, kind)
        try:
            sock.bind((host, port))
        except BaseException:
            sock.close()
            raise
        return sock
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = (f"{protocol.upper()} port {port} is in use (by another program, or a server still running): "
                      f"choose another with {option}")
        else:
            reason = exc.strerror or str(exc)
        raise UserError(f"cannot listen on {host}:{port}: {reason}") from None


@contextlib.contextmanager
def stop_on_signals():
    """An Event set by Ctrl-C or SIGTERM from now on (so a signal during start-up still stops the server
    cleanly, removing its temporary folder), with the previous handlers restored afterwards.

    The handlers are installed explicitly: a process started in the background of a script inherits an
    ignored SIGINT, and Python would then never raise KeyboardInterrupt.
    """
    import signal

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def serve_until_stopped(session, *servers, stop: threading.Event | None = None,
                        log: Callable[[str], None] = _stderr) -> None:
    """Block until Ctrl-C or SIGTERM (or `stop` is set), then stop the servers and the generation worker
    cleanly; a temporary output folder is removed, except what clients saved there."""
    with contextlib.ExitStack() as stack:
        if stop is None:
            stop = stack.enter_context(stop_on_signals())
        try:
            while not stop.wait(0.5):
                pass
        finally:
            for s in servers:
                s.shutdown()
            for folder in session.close():
                log(f"kept {folder} (files saved by clients); the rest of {session.out_dir} was removed")
