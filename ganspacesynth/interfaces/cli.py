"""The `ganspacesynth` command line. Each area adds its commands from `cli_<area>.py` via `register(group)`."""

from __future__ import annotations

import importlib
import os
import sys

import click

from ..errors import UserError

#: Modules (relative to this package) whose `register(group)` adds subcommands.
SUBCOMMAND_MODULES = [
    "cli_core",
    "cli_imports",
    "cli_dataset",
    "cli_compose",
    "cli_serve",
    "cli_ganspace",
    "cli_train",
    "cli_evaluate",
    "cli_demo",
    "cli_instrument",
    "cli_invert",
]


#: `ctx.meta` key of the command line's arguments (after the program name): `train --nproc` runs them again.
ARGV_KEY = "ganspacesynth.argv"


class Group(click.Group):
    """Turns UserError (and a few OS errors) into one line on stderr and exit status 1."""

    def parse_args(self, ctx, args):
        ctx.meta[ARGV_KEY] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # one line, like every other refusal (click's own takes four)
            command = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            click.echo(f"error: {exc.format_message()} (see '{command} --help')", err=True)
            ctx.exit(exc.exit_code)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except FileNotFoundError as exc:
            click.echo(f"error: file not found: {exc.filename or exc}", err=True)
            ctx.exit(1)
        except PermissionError as exc:
            click.echo(f"error: permission denied: {exc.filename or exc}", err=True)
            ctx.exit(1)
        except OSError as exc:  # a full disk, a read-only file system, a name too long: the user's to fix
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}", err=True)
            ctx.exit(1)
        except MemoryError:
            click.echo("error: out of memory (try a smaller --batch-size or count)", err=True)
            ctx.exit(1)
        except KeyboardInterrupt as exc:
            notes = "; ".join(getattr(exc, "__notes__", None) or [])
            if os.environ.get("RANK", "0") == "0":  # several processes (torchrun): rank 0 says it for all
                click.echo(f"interrupted{'; ' + notes if notes else ''}", err=True)
            ctx.exit(130)
        except SystemError as exc:
            # Ctrl-C inside a compiled function (numba: pYIN's Viterbi) surfaces as "… returned a result with an
            # exception set", chained to the KeyboardInterrupt: still an interruption, not a crash.
            if not isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
                raise
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ganspacesynth")
def main() -> None:
    """GANSpaceSynth: train GANSynth models on your sounds, find their GANSpace directions and play them.

    \b
    Quick start:
      ganspacesynth init --preset tiny --out tiny.safetensors
      ganspacesynth generate --model tiny.safetensors --pitch 60 --count 4 --out notes/
    """


for _name in SUBCOMMAND_MODULES:
    importlib.import_module(f"{__package__}.{_name}").register(main)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
