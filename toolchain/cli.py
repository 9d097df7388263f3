"""The ``kelly-tc`` command line: a thin typer app.

Each command lives in ``toolchain/commands/<name>.py``: it parses its options, calls one library
function and renders the result. This module owns what every command shares: the error boundary
(one line ``error: FILE: WHERE: reason`` on stderr, exit code 2 for bad input, 1 for a failed check or
budget, 3 for an internal error; ``--debug`` anywhere on the command line shows the traceback instead).

Signals (issue 17, point 8): started as the ``kelly-tc`` script, SIGINT and SIGTERM are handled from
this module's first statement -- while the imports still run, a signal prints ``error: interrupted``
and exits at once (130 / 143; nothing is written yet, so nothing to clean up). From :func:`main` on,
a signal raises :class:`~toolchain.errors.Interrupted` instead, so every ``atomic`` writer removes its
temporary file on the way out before the same line and exit code.
"""
from __future__ import annotations

import os
import signal
import sys

from toolchain.errors import Interrupted


def _exit_now(number, frame):  # noqa: ARG001  (signal handler signature)
    os.write(2, b"error: interrupted\n")
    os._exit(128 + number)


def _raise_interrupted(number, frame):  # noqa: ARG001
    raise Interrupted(128 + number)


def install_signal_handlers(handler) -> None:
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, handler)


if os.path.basename(sys.argv[0] if sys.argv else "") in ("kelly-tc", "cli.py"):
    install_signal_handlers(_exit_now)

# `python -m toolchain.cli` (and `torchrun -m toolchain.cli train --store ...`): the registered app lives in
# the imported module, not in __main__, so run that one.
if __name__ == "__main__":
    from toolchain.cli import main as _main_of_the_module

    _main_of_the_module()
    sys.exit(0)

import functools  # noqa: E402  (after the handlers: an early Ctrl-C must not print an import traceback)
import logging  # noqa: E402
import traceback  # noqa: E402
from typing import Callable  # noqa: E402

import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

try:  # recent typer vendors click as typer._click (its exceptions are not click's); older typer uses click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    from click import exceptions as click_errors

from toolchain.atomic import os_reason  # noqa: E402
from toolchain.errors import KellyError, cap_line  # noqa: E402


class OneLineUsageErrors(TyperGroup):
    """typer's group, with a usage error (unknown option, missing argument, unparsable value) printed as
    the one line every other error is, ``error: kelly-tc COMMAND: reason (see kelly-tc COMMAND --help)``,
    exit 2 -- instead of typer's five-line box. Help (``--help``, no arguments) prints as usual."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:  # a caller that handles click's exceptions itself
            return super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as error:  # `kelly-tc` or `kelly-tc convert` alone: the help
            print(error.ctx.get_help() if error.ctx else str(error))
            sys.exit(EXIT_OK if error.ctx is None or error.ctx.parent is None else EXIT_BAD_INPUT)
        except click_errors.ClickException as error:
            sys.exit(usage_error(error))
        except typer.Abort:
            print("error: aborted", file=sys.stderr, flush=True)
            sys.exit(EXIT_CHECK_FAILED)
        # standalone_mode=False returns an Exit's code, or the command's return value (None: success)
        sys.exit(result if isinstance(result, int) else EXIT_OK)


def usage_error(error: click_errors.ClickException) -> int:
    """Print ``error`` as one line on stderr; return its exit code (2 for every usage error)."""
    context = getattr(error, "ctx", None)
    where = context.command_path if context is not None else "kelly-tc"
    reason = " ".join(error.format_message().split()).rstrip(".")
    hint = f" (see {where} --help)" if context is not None else ""
    print(f"error: {where}: {reason}{hint}", file=sys.stderr, flush=True)
    return error.exit_code if error.exit_code else EXIT_BAD_INPUT


app = typer.Typer(
    cls=OneLineUsageErrors,
    name="kelly-tc",
    help="ONNX -> RTNeural toolchain for real-time audio models: convert, check, run, bench, compress, deploy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


def debug_enabled() -> bool:
    return os.environ.get("KELLY_TC_DEBUG", "") not in ("", "0")


def fail(line: str, code: int) -> None:
    """Print one error line on stderr (plain print: rich would wrap it) and exit with ``code``.

    A reason quoted from a library (torch, onnxruntime) may span lines: they are joined, so the error
    stays one line whatever raised it."""
    line = cap_line(" ".join(part.strip() for part in str(line).splitlines() if part.strip()))
    print(f"error: {line}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


class _NoStatus:
    """What :func:`status` gives off a terminal: ``update`` does nothing, nothing is printed."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, *args, **kwargs) -> None:
        pass


def status(console, text: str):
    """``console.status(text)`` on a terminal; off it (a file, a pipe) nothing: a spinner cannot animate
    there and rich would leave a blank line on stderr, before the one error line or the results."""
    return console.status(text) if console.is_terminal else _NoStatus()


def command(function: Callable) -> Callable:
    """Register ``function`` as a subcommand behind the shared error boundary."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KellyError as error:
            if debug_enabled():
                traceback.print_exc()
            fail(error.line(), error.exit_code)
        except Interrupted as interrupted:
            fail("interrupted", interrupted.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except OSError as error:
            # The environment, not a bug: a file that vanished, a full disk, a read-only folder.
            if debug_enabled():
                traceback.print_exc()
            if error.filename is None:
                fail(f"internal error (OSError: {os_reason(error)}); rerun with --debug for the traceback", EXIT_INTERNAL)
            fail(f"{error.filename}: {os_reason(error)}", EXIT_BAD_INPUT)
        except Exception as error:  # a bug, not bad input: say so, in one line
            if debug_enabled():
                traceback.print_exc()
            fail(f"internal error ({type(error).__name__}: {str(error)[:300]}); rerun with --debug for the traceback", EXIT_INTERNAL)

    return app.command()(wrapper)


def main() -> None:
    install_signal_handlers(_raise_interrupted)
    try:
        _main()
    except Interrupted as interrupted:  # outside a command (parsing the arguments)
        print("error: interrupted", file=sys.stderr, flush=True)
        sys.exit(interrupted.exit_code)


def _main() -> None:
    argv = sys.argv[1:]
    if "--debug" in argv:
        argv = [a for a in argv if a != "--debug"]
        os.environ["KELLY_TC_DEBUG"] = "1"
    logging.basicConfig(level=logging.DEBUG if debug_enabled() else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app(args=argv, prog_name="kelly-tc")


# Importing the command modules registers them on ``app`` (they import ``app``/``command`` from here).
from toolchain import commands  # noqa: E402,F401  (must follow the definitions above)

