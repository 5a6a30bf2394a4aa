"""Live-control commands: serve-osc (Pure Data and any OSC client) and serve-web (a page in the browser)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import UserError
from .options import device_option, model_option, precision_option, seed_option
from .serving import (MAX_NOTES, MAX_SECONDS, ServeOptions, build_session, open_socket, serve_until_stopped,
                      stop_on_signals)

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
        click.option("--max-notes", type=click.IntRange(1, 100000), default=MAX_NOTES, show_default=True,
                     help="Refuse hallucinations with more notes than this."),
        click.option("--max-seconds", type=click.FloatRange(min=0, max=86400, min_open=True),
                     default=MAX_SECONDS, show_default=True, help="Refuse hallucinations longer than this."),
        device_option,
        precision_option,
        seed_option,
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _options(model, components, out_dir, allow_dirs, queue_size, keep, max_notes, max_seconds, device, precision,
             seed) -> ServeOptions:
    return ServeOptions(model=model, components=components, out_dir=out_dir, allow_dirs=tuple(allow_dirs),
                        queue_size=queue_size, keep=keep, max_notes=max_notes, max_seconds=max_seconds,
                        device=device, precision=precision, seed=seed)


def _log(line: str) -> None:
    click.echo(line, err=True)


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

    with stop_on_signals() as stop:
        sock = open_socket(host, port, "udp")  # a busy port is refused before the model loads
        try:
            session = build_session(_options(model, components, out_dir, allow_dirs, queue_size, keep, max_notes,
                                             max_seconds, device, precision, seed))
        except BaseException:
            sock.close()
            raise
        try:
            server = OSCServer(session, reply_port=reply_port, log=_log, sock=sock)
        except BaseException:
            sock.close()
            session.close()
            raise
        if host not in LOOPBACK:
            click.echo(f"warning: listening on {host}: anyone who can reach it can make this machine generate",
                       err=True)
        h, p = server.address
        server.start()
        click.echo(f"listening on udp://{h}:{p} (model {session.synth.path}, {session.num_components} components, "
                   f"writing to {session.out_dir}); Ctrl-C stops", err=False)
        sys.stdout.flush()
        serve_until_stopped(session, server, stop=stop, log=_log)


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

    with stop_on_signals() as stop:
        sockets = []  # both ports are checked before the model loads
        try:
            sockets.append(open_socket("127.0.0.1", port, "tcp"))
            if osc_port is not None:
                sockets.append(open_socket("127.0.0.1", osc_port, "udp", option="--osc-port"))
            session = build_session(_options(model, components, out_dir, allow_dirs, queue_size, keep, max_notes,
                                             max_seconds, device, precision, seed))
        except BaseException:
            for s in sockets:
                s.close()
            raise
        servers = []
        try:
            if osc_port is not None:
                from .osc import OSCServer

                servers.append(OSCServer(session, sock=sockets[1]).start())
            web = WebServer(session, sock=sockets[0])
            servers.append(web.start())
        except BaseException:
            for s in servers:
                s.shutdown()
            for s in sockets:
                s.close()
            session.close()
            raise
        click.echo(f"serving http://127.0.0.1:{web.port}/ (model {session.synth.path}, {session.num_components} "
                   f"components){f', OSC on udp port {osc_port}' if osc_port else ''}; Ctrl-C stops")
        sys.stdout.flush()
        serve_until_stopped(session, *servers, stop=stop, log=_log)


def register(group: click.Group) -> None:
    group.add_command(serve_osc_cmd)
    group.add_command(serve_web_cmd)
