"""One progress-bar style for every long step (indexing, training), off when asked."""

from __future__ import annotations

from contextlib import nullcontext

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)


def progress_bar(enabled: bool, *extra: ProgressColumn, transient: bool = False) -> Progress | nullcontext:
    """A rich Progress (description, bar, n/total, time left, extra columns) or a no-op context."""
    if not enabled:
        return nullcontext()
    return Progress(*_columns(), *extra, transient=transient)


def quiet_bar(enabled: bool, transient: bool = True) -> Progress:
    """The same bar as a Progress that is always one (`add_task` works), drawing nothing unless
    `enabled`: for loops that update it unconditionally."""
    return Progress(*_columns(), transient=transient, disable=not enabled)


def _columns() -> tuple[ProgressColumn, ...]:
    # markup off: descriptions hold users' paths and names, where `[/i]` is text, not a tag
    text = TextColumn("{task.description}", markup=False)
    return (text, BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
