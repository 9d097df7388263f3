"""Progress reporting for long Kelly work (data preparation, training): a silent base and a rich one.

Library code calls a :class:`Reporter`; the CLI passes a :class:`RichReporter` that draws the bars.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class Reporter:
    """Receives progress; every method is a no-op here (what library callers and tests get)."""

    def stage(self, description: str, total: int | None = None) -> None:
        """Begin a new unit of work of ``total`` steps (None: unknown); the previous one is finished."""

    def advance(self, steps: int = 1, description: str | None = None) -> None:
        """``steps`` more steps of the current stage done (optionally with a new description)."""

    def finish(self, description: str | None = None) -> None:
        """The current stage is over, possibly before all its steps (a model that stopped early)."""

    def note(self, message: str) -> None:
        """Something the user should read (a dataset not found, a fallback taken)."""
        log.info("%s", message)


def progress_reporter(console=None) -> "Reporter":
    """Bars on a terminal; plain lines (one per stage, description change and quarter) when stderr is a
    file or a pipe, where rich would print nothing until the end and then truncated bars."""
    from rich.console import Console

    console = console or Console(stderr=True)
    return RichReporter(console) if console.is_terminal else LineReporter(console.file)


class LineReporter(Reporter):
    """Progress as plain, flushed lines: ``[  12.3 s] EmotionRecognizer: training 50% (120/240)``."""

    def __init__(self, stream):
        import time

        self.stream, self.clock, self.started = stream, time.perf_counter, time.perf_counter()
        self.description, self.total, self.done, self.quarter = None, None, 0, 0

    def __enter__(self) -> "LineReporter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.finish()

    def _line(self, text: str) -> None:
        self.stream.write(f"[{self.clock() - self.started:7.1f} s] {text}\n")
        self.stream.flush()

    def stage(self, description: str, total: int | None = None) -> None:
        self.finish()
        self.description, self.total, self.done, self.quarter = description, total, 0, 0
        self._line(f"{description}" + (f" ({total} steps)" if total else ""))

    def advance(self, steps: int = 1, description: str | None = None) -> None:
        if self.description is None:
            return
        self.done += steps
        if description and description != self.description:
            self.description = description
            self._line(description)
        if self.total:
            quarter = min(4 * self.done // self.total, 4)
            if quarter > self.quarter and quarter < 4:
                self.quarter = quarter
                self._line(f"{self.description} {25 * quarter}% ({self.done}/{self.total})")

    def finish(self, description: str | None = None) -> None:
        if self.description is not None:
            done = f" ({self.done}/{self.total} steps)" if self.total and self.done < self.total else ""
            self._line(f"{description or self.description}: done{done}")
        self.description = None

    def note(self, message: str) -> None:
        super().note(message)
        self._line(f"note: {message}")


class RichReporter(Reporter):
    """Progress bars on the terminal (stderr), one per stage; notes are printed above the bars.

    A stage that ends before its last step (early stopping) is finished when the next stage begins or
    :meth:`finish` is called: its bar fills and its clock stops, instead of freezing while the clock runs."""

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
            self.finish()
            self.progress.stop()

    def stage(self, description: str, total: int | None = None) -> None:
        self.finish()
        self.task = self.progress.add_task(description, total=total)

    def advance(self, steps: int = 1, description: str | None = None) -> None:
        if self.task is not None:
            self.progress.update(self.task, advance=steps, **({"description": description} if description else {}))

    def finish(self, description: str | None = None) -> None:
        if self.task is None:
            return
        task = next(t for t in self.progress.tasks if t.id == self.task)
        # total = steps done: the bar reads N/N and rich freezes the finished task's elapsed time
        self.progress.update(self.task, total=task.completed, completed=task.completed,
                             **({"description": description} if description else {}))
        self.progress.stop_task(self.task)
        self.task = None

    def note(self, message: str) -> None:
        super().note(message)
        self.progress.console.print(f"[yellow]note:[/yellow] {message}")
