"""Process entry of ``lic``: run a command, and end every way out of it as the command promises.

Every failure is one line on stderr with its exit status (``_main``): ``lic: error: ...`` and 2
for a bad command line, 1 for a bad input or the system refusing; a bug in lic is
``lic: internal error: ...`` (``LIC_DEBUG=1`` shows its traceback).  SIGTERM and SIGHUP unwind
as Ctrl-C does, so an output being written is removed, and exit with 128 + the signal number.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

from bitstream import InputError

from .args import build_parser
from .decode import cmd_decode
from .demo import cmd_demo
from .encode import cmd_encode
from .errors import RUNTIME, USAGE, CliError
from .info import cmd_info

__all__ = ["main"]

COMMANDS = {"encode": cmd_encode, "decode": cmd_decode, "info": cmd_info, "demo": cmd_demo}
# Signals that end the process normally; each unwinds like Ctrl-C (SIGINT, KeyboardInterrupt) does.
TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(BaseException):
    """A terminating signal arrived.  A BaseException, like KeyboardInterrupt, so that only
    cleanup (``finally``, ``except BaseException``) sees it on the way out."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _terminating_signals():
    """SIGTERM and SIGHUP raise ``Terminated`` (as SIGINT raises KeyboardInterrupt), so the
    temporary file of an output being written is removed on the way out.  Restored after."""
    def terminate(signum, frame):
        for sig in TERMINATING:  # one is enough: let the unwinding finish
            signal.signal(sig, signal.SIG_IGN)
        raise Terminated(signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, terminate) for sig in TERMINATING}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """Run ``lic``; returns the exit status (the console script exits with it).

    Without ``argv`` this is the process's entry point (the ``lic`` script, ``python -m codec``):
    it ends the process itself, see ``_exit_now``.
    """
    try:
        with _terminating_signals():
            status = _main(argv)
    except Terminated as e:
        print(f"lic: error: terminated by {signal.Signals(e.signum).name}", file=sys.stderr)
        status = 128 + e.signum
    if argv is None:
        _exit_now(status)
    return status


def _exit_now(status: int) -> None:
    """End the process without the interpreter's teardown, which has nothing left to do (every
    output is closed and renamed into place, and stdout and stderr are flushed here) and costs CPU:
    about 0.05 s with ONNX Runtime and the weights loaded (a twentieth of a ``lic decode``), 0.5 s
    with torch (a fifth of a ``lic encode``)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away, a closed stream
            status = status or RUNTIME
    os._exit(status)


def _run(argv: list[str] | None) -> int:
    """Parse the command line and run its command."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version: printed, done
        return e.code if isinstance(e.code, int) else 0
    if args.command is None:
        sys.stderr.write(parser.format_usage())
        print("lic: a command is needed: encode, decode, info or demo (lic --help; lic COMMAND --help)",
              file=sys.stderr)
        return USAGE
    if getattr(args, "weights", None) and not os.path.isdir(args.weights):
        raise CliError(f"--weights {args.weights}: not a directory", USAGE)
    return COMMANDS[args.command](args)


def _main(argv: list[str] | None) -> int:
    """``_run``, with every failure made one line and an exit status."""
    try:
        return _run(argv)
    except CliError as e:
        print(f"lic: error: {e}", file=sys.stderr)
        return e.status
    except InputError as e:  # bad input (LicFormatError included): the reason is for the user
        print(f"lic: error: {e}", file=sys.stderr)
        return RUNTIME
    except KeyboardInterrupt:
        print("lic: error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `lic decode x.lic -o - | head`): stop quietly, and keep
        # Python from failing again while flushing stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return RUNTIME
    except (OSError, MemoryError) as e:  # the system said no (disk full, no memory): not lic's bug
        if os.environ.get("LIC_DEBUG"):
            raise
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"lic: error: {message}", file=sys.stderr)
        return RUNTIME
    except Exception as e:  # noqa: BLE001 - a bug in lic (a plain ValueError included): one line
        if os.environ.get("LIC_DEBUG"):
            raise
        message = str(e).splitlines()[0] if str(e) else ""
        print(f"lic: internal error: {type(e).__name__}: {message} "
              "(please report; LIC_DEBUG=1 shows the traceback)", file=sys.stderr)
        return RUNTIME
