"""Live-control commands: serve-osc (Pure Data and any OSC client) and serve-web (a page in the browser)."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import click

from ..errors import UserError
from .options import device_option, load_synth, model_option, precision_option, seed_option
from .session import HALLU_LIMITS

HALLU_MAX_NOTES, HALLU_MAX_SECONDS = HALLU_LIMITS.max_notes, HALLU_LIMITS.max_seconds

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _common(fn):
    """Options every server shares (model, components, folders, queue)."""
    opts = [
        model_option,
        click.option("--components", type=click.Path(path_type=Path), default=None,
                     help="GANSpace components file to load at start (needed for sliders, noz and hallucinations)."),
        click.option("--out-dir", type=click.Path(path_type=Path), default=None,
                     help="Folder for the WAV files it writes (default: a new folder under the system temp dir)."),
        click.option("--allow-dir", "allow_dirs", type=click.Path(path_type=Path), multiple=True,
                     help="Folder clients may load models/components from (repeatable). The folders of --model "
                          "and --components are always allowed."),
        click.option("--queue-size", type=click.IntRange(1, 10000), default=16, show_default=True,
                     help="Requests that may wait for the generator; more are refused with an error reply."),
        click.option("--keep", type=click.IntRange(1, 100000), default=200, show_default=True,
                     help="Newest WAV files kept in --out-dir (older ones are deleted)."),
        click.option("--max-notes", type=click.IntRange(1, 100000), default=HALLU_MAX_NOTES, show_default=True,
                     help="Refuse hallucinations with more notes than this."),
        click.option("--max-seconds", type=click.FloatRange(min=0, max=86400, min_open=True),
                     default=HALLU_MAX_SECONDS, show_default=True, help="Refuse hallucinations longer than this."),
        device_option,
        precision_option,
        seed_option,
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def build_session(model, components, out_dir, allow_dirs, queue_size, keep, device, precision, seed,
                  max_notes: int = HALLU_MAX_NOTES, max_seconds: float = HALLU_MAX_SECONDS):
    from ..compose.hallucinate import Limits
    from .session import Session

    synth = load_synth(model, device or "cpu", precision)
    if model is None and components is None:  # the bundled model comes with its components
        from ..assets import default_components_path

        components = default_components_path()
    allowed = [Path(d) for d in allow_dirs]
    for d in allowed:
        if not d.is_dir():
            raise UserError(f"--allow-dir {d} is not a folder")
    if synth.path is not None:
        allowed.append(Path(synth.path).resolve().parent)
    if components is not None:
        allowed.append(Path(components).resolve().parent)
    temporary = out_dir is None
    if temporary:
        out_dir = Path(tempfile.mkdtemp(prefix="ganspacesynth-live-"))
    elif Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UserError(f"--out-dir {out_dir} exists and is not a folder")
    session = Session(synth, allowed_dirs=allowed, out_dir=out_dir, queue_size=queue_size, keep=keep, seed=seed,
                      limits=Limits(max_notes=max_notes, max_seconds=max_seconds), remove_out_dir=temporary)
    if components is not None:
        try:
            session.load_components(str(Path(components).resolve()))
        except BaseException:
            session.close()  # and its temporary folder
            raise
    return session


@contextlib.contextmanager
def _stop_on_signals():
    """An Event set by Ctrl-C or SIGTERM from now on (so a signal during start-up still stops the server
    cleanly, removing its temporary folder), with the previous handlers restored afterwards.

    The handlers are installed explicitly: a process started in the background of a script inherits an
    ignored SIGINT, and Python would then never raise KeyboardInterrupt.
    """
    import signal
    import threading

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_forever(session, *servers, stop=None) -> None:
    """Block until Ctrl-C or SIGTERM (or `stop` is set), then stop the servers and the generation worker
    cleanly; a temporary output folder is removed, except what clients saved there."""
    with contextlib.ExitStack() as stack:
        if stop is None:
            stop = stack.enter_context(_stop_on_signals())
        try:
            while not stop.wait(0.5):
                pass
        finally:
            for s in servers:
                s.shutdown()
            for folder in session.close():
                click.echo(f"kept {folder} (files saved by clients); the rest of {session.out_dir} was removed",
                           err=True)


@click.command("serve-osc")
@_common
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (keep loopback).")
@click.option("--port", type=click.IntRange(0, 65535), default=9000, show_default=True, help="UDP port (0: any free one).")
@click.option("--reply-port", type=click.IntRange(1, 65535), default=None,
              help="Send replies to this port on the sender's host instead of the sender's own port.")
def serve_osc_cmd(model, components, out_dir, allow_dirs, queue_size, keep, max_notes, max_seconds, device,
                  precision, seed, host, port, reply_port) -> None:
    """Serve a model over OSC/UDP for Pure Data (pd/*.pd) or any OSC client; replies go to the sender.

    Each note is written as a WAV in --out-dir and answered with /synthesized <path> <samples> <rate>.
    The address space is documented in docs/live.md. Example:

    \b
    ganspacesynth serve-osc --model tiny.safetensors --components tiny_pca.npz --port 9000
    """
    from .osc import OSCServer

    with _stop_on_signals() as stop:
        session = build_session(model, components, out_dir, allow_dirs, queue_size, keep, device, precision, seed,
                                max_notes, max_seconds)
        try:
            server = OSCServer(session, host, port, reply_port=reply_port, log=lambda m: click.echo(m, err=True))
        except BaseException:
            session.close()
            raise
        if host not in LOOPBACK:
            click.echo(f"warning: listening on {host}: anyone who can reach it can make this machine generate",
                       err=True)
        h, p = server.address
        server.start()
        click.echo(f"listening on udp://{h}:{p} (model {session.synth.path}, {session.num_components} components, "
                   f"writing to {session.out_dir}); Ctrl-C stops", err=False)
        import sys

        sys.stdout.flush()
        _serve_forever(session, server, stop=stop)


@click.command("serve-web")
@_common
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="HTTP port on 127.0.0.1.")
@click.option("--osc-port", type=click.IntRange(1, 65535), default=None,
              help="Also serve OSC on this UDP port, sharing the same state.")
def serve_web_cmd(model, components, out_dir, allow_dirs, queue_size, keep, max_notes, max_seconds, device,
                  precision, seed, port, osc_port) -> None:
    """Serve a page on http://127.0.0.1:PORT to play a model in the browser: pitch, direction sliders,
    random z, spectrogram, hallucination step sequencer and WAV download.

    Needs the `web` extra (pip install 'ganspacesynth[web]'). Example:

    \b
    ganspacesynth serve-web --model tiny.safetensors --components tiny_pca.npz --port 8000
    """
    try:
        from .web.app import WebServer
    except ImportError as exc:
        raise UserError(f"serve-web needs the web extra: pip install 'ganspacesynth[web]' ({exc})") from None

    with _stop_on_signals() as stop:
        session = build_session(model, components, out_dir, allow_dirs, queue_size, keep, device, precision, seed,
                                max_notes, max_seconds)
        servers = []
        try:
            if osc_port is not None:
                from .osc import OSCServer

                servers.append(OSCServer(session, "127.0.0.1", osc_port).start())
            web = WebServer(session, "127.0.0.1", port)
            servers.append(web.start())
        except BaseException:
            for s in servers:
                s.shutdown()
            session.close()
            raise
        click.echo(f"serving http://127.0.0.1:{web.port}/ (model {session.synth.path}, {session.num_components} "
                   f"components){f', OSC on udp port {osc_port}' if osc_port else ''}; Ctrl-C stops")
        import sys

        sys.stdout.flush()
        _serve_forever(session, *servers, stop=stop)


def register(group: click.Group) -> None:
    group.add_command(serve_osc_cmd)
    group.add_command(serve_web_cmd)
