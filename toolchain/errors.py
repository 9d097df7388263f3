"""The project's exception types.

Every error that reaches the command line is a :class:`KellyError`: it carries the file, the place in
the file (a node name and op type, a layer index, a JSON field) and the reason, and renders as the one
line ``FILE: WHERE: reason``. The CLI prints ``error: `` + that line and exits with ``exit_code``.
"""
from __future__ import annotations

from pathlib import Path


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``): a node name read from a hostile file
    may hold a newline or a terminal escape sequence, and an error must stay one inert line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


#: An error line longer than this is shortened; a single word (a name) longer than MAX_WORD is elided
#: in the middle, so a 1 MB node name still gives a readable one-line error.
MAX_LINE, MAX_WORD = 2000, 160


def elide(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters by cutting out its middle (``head...tail``)."""
    if len(text) <= limit:
        return text
    keep = max(limit - 3, 2)
    return text[: keep - keep // 2] + "..." + text[len(text) - keep // 2:]


def cap_line(line: str) -> str:
    """An error line of bounded length: long words elided in the middle, then the whole line."""
    words = [elide(word, MAX_WORD) for word in line.split(" ")]
    return elide(" ".join(words), MAX_LINE)


class Interrupted(BaseException):
    """SIGINT or SIGTERM while a command runs (a BaseException, like KeyboardInterrupt: no ``except
    Exception`` may swallow it). ``exit_code`` is 128 + the signal number (130, 143)."""

    def __init__(self, exit_code: int = 130):
        self.exit_code = exit_code
        super().__init__(f"interrupted (exit {exit_code})")


class KellyError(Exception):
    """Base class of all errors kelly-tc raises on purpose."""

    exit_code = 2

    def __init__(self, reason: str, *, file: str | Path | None = None, where: str | None = None):
        self.reason = reason
        self.file = str(file) if file is not None else None
        self.where = where
        super().__init__(self.line())

    def line(self) -> str:
        parts = [p for p in (self.file, self.where) if p]
        return printable(": ".join(parts + [self.reason]))

    def with_file(self, file: str | Path) -> "KellyError":
        """Return the same error with ``file`` filled in where it was unknown."""
        if self.file is None:
            self.file = str(file)
            self.args = (self.line(),)
        return self


class InputError(KellyError):
    """Bad or unsupported input: a corrupt file, an unsupported op, a malformed JSON (exit 2)."""

    exit_code = 2


class UnsupportedError(InputError):
    """Valid input that kelly-tc cannot represent faithfully (exit 2)."""


class CheckFailed(KellyError):
    """A numerical check or a budget was not met (exit 1)."""

    exit_code = 1


def node_where(name: str | None, op_type: str | None) -> str:
    """The ``WHERE`` part for an ONNX node: ``node 'name' (OpType)``."""
    label = f"node '{name}'" if name else "node <unnamed>"
    return f"{label} ({op_type})" if op_type else label
