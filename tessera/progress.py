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
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, *extra, transient=transient)
