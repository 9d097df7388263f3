"""Progress reporting for long Kelly work (data preparation, training): a silent base and a rich one.

Library code calls a :class:`Reporter`; the CLI passes a :class:`RichReporter` that draws the bars.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class Reporter:
    """Receives progress; every method is a no-op here (what library callers and tests get)."""

    def stage(self, description: str, total: int | None = None) -> None:
        """Begin a new unit of work of ``total`` steps (None: unknown)."""

    def advance(self, steps: int = 1, description: str | None = None) -> None:
        """``steps`` more steps of the current stage done (optionally with a new description)."""

    def note(self, message: str) -> None:
        """Something the user should read (a dataset not found, a fallback taken)."""
        log.info("%s", message)


class RichReporter(Reporter):
    """Progress bars on the terminal (stderr), one per stage; notes are printed above the bars."""

    def __init__(self, console=None):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, transient=False)
        self.task = None

    def __enter__(self) -> "RichReporter":
        self.progress.start()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:  # failing: erase the bars (and skip Progress.stop's blank line on a
            self.progress.live.transient = True  # non-terminal), so the error is the one line on stderr
            self.progress.live.stop()
        else:
            self.progress.stop()

    def stage(self, description: str, total: int | None = None) -> None:
        self.task = self.progress.add_task(description, total=total)

    def advance(self, steps: int = 1, description: str | None = None) -> None:
        if self.task is not None:
            self.progress.update(self.task, advance=steps, **({"description": description} if description else {}))

    def note(self, message: str) -> None:
        super().note(message)
        self.progress.console.print(f"[yellow]note:[/yellow] {message}")
