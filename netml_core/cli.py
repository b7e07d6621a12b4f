"""The ``netml`` command: a click group that plugins can extend.

``main`` is the console entry point. It runs click without standalone mode so that every failure a
user can cause (bad option, bad capture, bad model file) ends as one line on stderr and a non-zero
exit, and only ``--debug`` (or ``NETML_DEBUG=1``, or ``--debug`` anywhere on the command line, also
after the subcommand) shows a traceback.

Signals: Ctrl-C (SIGINT) and SIGTERM interrupt the command the same way: every ``finally`` runs
(a model being written leaves no temporary file), one line says so, and the exit status is
128 + the signal number (130, 143). Once the command is done, a late signal changes nothing.
Output that cannot be written (``> /dev/full``, a full disk) is one line, exit 2.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import traceback

import click

from . import __version__
from .errors import NetmlError


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("NETML_DEBUG", "") not in ("", "0")


def _hoist_debug(argv: list[str]) -> list[str]:
    """``netml learn ... --debug`` means ``netml --debug learn ...``: the natural place for the flag
    is after the subcommand, but click only knows it on the group (up to a ``--`` separator)."""
    end = argv.index("--") if "--" in argv else len(argv)
    if "--debug" not in argv[:end]:
        return argv
    rest = [a for a in argv[:end] if a != "--debug"]
    return ["--debug", *rest, *argv[end:]]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every clean-up written for an interrupt runs."""


class Interrupted(BaseException):
    """An interrupt on its way out of click (which would print a blank line and raise ``Abort``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def _as_interrupted(exc: KeyboardInterrupt) -> Interrupted:
    return Interrupted(signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


#: write errors that can only mean the output cannot be written (not a bug, not the input)
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


#: built-in command name -> (module under netml_core.commands, attribute)
BUILTIN_COMMANDS = {
    "learn": ("learn", "learn"),
    "classify": ("classify", "classify"),
    "inspect": ("inspect", "inspect_cmd"),
    "demo": ("demo", "demo"),
    "evaluate": ("evaluate", "evaluate"),
}


class OutputClosed(Exception):
    """Whoever read our stdout went away (``netml classify ... | head -3``): stop quietly, exit 0.

    click itself turns a broken pipe into ``sys.exit(1)``; raising this instead (it is no
    ``OSError``) lets ``main`` decide.
    """


def silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null so that later writes, and Python's flush at exit, do
    not fail on the closed pipe (the recipe of the Python docs' note on SIGPIPE)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no real stdout (test runner): nothing to redirect
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:
        pass


class _LazyGroup(click.Group):
    """Imports a built-in command's module only when that command is used or listed by help.

    ``learn`` and ``classify`` pull in numpy and the pipeline; ``netml plugins list`` and
    ``netml --version`` need neither, which halves their start-up time.
    """

    def _available(self) -> list[str]:
        from importlib.util import find_spec

        return [n for n, (m, _) in BUILTIN_COMMANDS.items() if find_spec(f"netml_core.commands.{m}") is not None]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._available()})

    def get_command(self, ctx: click.Context, name: str):
        if name not in self.commands and name in BUILTIN_COMMANDS:
            module_name, attr = BUILTIN_COMMANDS[name]
            try:
                module = __import__(f"netml_core.commands.{module_name}", fromlist=[attr])
            except ModuleNotFoundError as exc:
                if exc.name != f"netml_core.commands.{module_name}":
                    raise
                return None  # command not built yet in this tree
            self.add_command(getattr(module, attr), name)
        return super().get_command(ctx, name)

    # a broken pipe can happen while parsing (``--help``, ``--version``) or while running a command
    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError as exc:
            raise OutputClosed() from exc
        except KeyboardInterrupt as exc:
            raise _as_interrupted(exc) from exc

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise OutputClosed() from exc
        except KeyboardInterrupt as exc:
            raise _as_interrupted(exc) from exc


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="netml")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def cli(debug: bool) -> None:
    """netml: novelty detection on network flows from pcap/pcapng captures.

    Components (readers, flow splitters, features, detectors) come from plugins; see
    `netml plugins list`.
    """


def _add_builtin_commands() -> None:
    from .commands import plugins as plugins_cmd

    cli.add_command(plugins_cmd.plugins)  # the others load on demand (_LazyGroup)


_add_builtin_commands()


def _extend_from_plugins() -> None:
    from .registry import get_registry

    get_registry().extend_cli(cli)


def main(argv: list[str] | None = None, *, handle_signals: bool = False) -> int:
    """Run ``netml`` with ``argv``; returns the exit status. ``handle_signals`` (the console entry
    point): SIGTERM interrupts like Ctrl-C, and both are ignored once the command is done."""
    argv = _hoist_debug(list(sys.argv[1:] if argv is None else argv))
    debug = _debug_requested(argv)
    if handle_signals:
        try:
            signal.signal(signal.SIGTERM, _raise_terminated)
        except ValueError:  # not the main thread (an embedding application): leave signals alone
            handle_signals = False
    try:
        return _run(argv, debug)
    finally:
        if handle_signals:  # the work is done (or undone): a late signal must not turn into a traceback
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _run(argv: list[str], debug: bool) -> int:
    try:
        # plugin commands are needed everywhere except the two paths that must stay fast;
        # help and shell completion list them too
        if not argv or argv[0] not in ("plugins", "--version"):
            _extend_from_plugins()
        try:
            rv = cli.main(args=argv, prog_name="netml", standalone_mode=False)
        except click.exceptions.Exit as exc:
            rv = exc.exit_code
        _flush_stdout()
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Abort:
        click.echo("netml: aborted", err=True)
        return 130
    except Interrupted as exc:
        return _interrupted(exc)
    except click.exceptions.UsageError as exc:
        if debug:
            traceback.print_exc()
        cmd = exc.ctx.command_path if exc.ctx is not None else "netml"
        click.echo(f"{cmd}: error: {exc.format_message()} (see '{cmd} --help')", err=True)
        return exc.exit_code
    except click.exceptions.ClickException as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"netml: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except NetmlError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"netml: error: {exc}", err=True)
        return exc.exit_code
    except (OutputClosed, BrokenPipeError):
        # `netml classify ... | head`: the reader went away; not an error worth a traceback
        silence_stdout()
        return 0
    except KeyboardInterrupt as exc:
        return _interrupted(_as_interrupted(exc))
    except OSError as exc:
        if debug:
            traceback.print_exc()
        if exc.errno in _OUTPUT_ERRNOS:
            # stdout on a full disk: say it once, and let nothing flush into it again at exit
            silence_stdout()
            click.echo(f"netml: error: cannot write output: {os.strerror(exc.errno).lower()}", err=True)
            return 2
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"netml: error: {where}{(exc.strerror or str(exc)).lower()}", err=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line unless --debug
        if debug:
            traceback.print_exc()
        else:
            click.echo(
                f"netml: internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)",
                err=True,
            )
        return 1


def _interrupted(exc: Interrupted) -> int:
    click.echo("netml: terminated" if exc.signum == signal.SIGTERM else "netml: interrupted", err=True)
    return 128 + int(exc.signum)


def _flush_stdout() -> None:
    """Flush stdout now, inside the error handling: at interpreter exit a failing flush is a
    warning and status 120 (``> /dev/full``)."""
    out = sys.stdout
    if out is not None:
        out.flush()


def run() -> None:
    try:
        code = main(handle_signals=True)
    except KeyboardInterrupt as exc:  # between the end of the command and the signals being ignored
        code = _interrupted(_as_interrupted(exc))
    sys.exit(code)


if __name__ == "__main__":
    run()
