"""`tessera` command line: one module per command group, each command one call into the Python API."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import warnings
from collections.abc import Callable

from tessera.cli import data, evaluation, index, rag, search, serve, train  # noqa: F401  (each module registers its commands)
from tessera.cli.app import MULTI_VALUE_OPTIONS, app, state
from tessera.errors import TesseraError, TesseraWarning

__all__ = ["app", "at_least", "main", "report_errors"]
FULL_DISK = ("No space left on device", "database or disk is full")
INTERRUPTED = "interrupted"
RESUMES = " (run the same command again to resume)"
# Commands whose interrupted runs resume; with an option, only when it is given (eval-rag's journal).
_RESUMABLE = {
    ("index",): None,
    ("train", "dense"): None,
    ("train", "colbert"): None,
    ("train", "xtr"): None,
    ("train", "cross-encoder"): None,
    ("train", "m2"): None,
    ("data", "synth-queries"): None,
    ("eval-suite",): None,
    ("eval-rag",): "--json",
}


def _expand_multi_value(argv: list[str]) -> list[str]:
    """Let `--metrics nDCG@10 R@100` take several values, as the docs promise."""
    expanded: list[str] = []
    taking: str | None = None
    for arg in argv:
        if arg.startswith("-"):
            taking = arg if arg in MULTI_VALUE_OPTIONS else None
            if taking is None:
                expanded.append(arg)
            continue
        if taking:
            expanded += [taking, arg]
        else:
            expanded.append(arg)
    return expanded


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Tessera's own warnings as one `warning:` line; anything else as Python shows it."""
    if issubclass(category, TesseraWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type for a benchmark's counts (`--repeats`, `--seeds`, `--queries`): a whole
    number of at least `minimum`, so `--repeats 0` is a usage error, not a traceback later."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
        return number

    parse.__name__ = f"at_least_{minimum}"
    return parse


def resumes(argv: list[str]) -> bool:
    """Whether the command line `argv` (without the program) names a command that an interrupted
    run of resumes, so that Ctrl-C says so only where it is true (not after `search` or `info`)."""
    words = [arg for arg in argv if not arg.startswith("-")]
    for command, needs in _RESUMABLE.items():
        if tuple(words[: len(command)]) == command:
            return needs is None or any(arg == needs or arg.startswith(needs + "=") for arg in argv)
    return False


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit."""
    argv = sys.argv[1:]
    report_errors(lambda: app(args=_expand_multi_value(argv), prog_name="tessera"), resumable=resumes(argv))


def report_errors(run: Callable[[], object], resumable: bool = False) -> None:
    """Run `run` as a command runs: Tessera's errors and warnings one line each on stderr, exit 1
    (130 when interrupted, with how to resume where `resumable`); tracebacks with `--debug` only.
    The benchmark scripts run their `main` through it too."""
    interrupted = INTERRUPTED + (RESUMES if resumable else "")
    warnings.showwarning = _show_warning
    try:
        run()
    except (TesseraError, OSError) as exc:  # OSError: unwritable output, full disk, ...
        if state["debug"]:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except (RuntimeError, sqlite3.OperationalError) as exc:  # faiss' and SQLite's words for a full disk
        if state["debug"] or not any(words in str(exc) for words in FULL_DISK):
            raise
        said = " ".join(str(exc).split())
        print(f"error: no space left on device (...{said[-200:]})", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 130:  # typer turns Ctrl-C inside a command into a silent exit 130
            print(interrupted, file=sys.stderr)
        raise
