"""Helpers shared by the hostile-input tests: the real ``kelly-tc`` in a subprocess, file-tree
snapshots, and the model the checkpoint cases are about."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

#: The model every checkpoint case is about (the smallest Kelly model).
CHECKPOINT_MODEL = "DynamicsEngine"


def tree(folder: Path) -> set[str]:
    """Every path under ``folder`` (dotfiles included), for 'nothing was written' checks."""
    return {str(path.relative_to(folder)) for path in Path(folder).rglob("*")}


def kelly_tc_command() -> list[str]:
    """The installed ``kelly-tc`` script, or the same entry point through this interpreter."""
    script = shutil.which("kelly-tc")
    return [script] if script else [sys.executable, "-c", "from toolchain.cli import main; main()"]


def kelly_tc_environment(**extra: str) -> dict:
    environment = {key: value for key, value in os.environ.items() if key != "KELLY_TC_DEBUG"}
    environment.update(extra)
    return environment


def kelly_tc(*arguments, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real ``kelly-tc`` in a fresh process and wait for it."""
    return subprocess.run([*kelly_tc_command(), *map(str, arguments)], cwd=REPO, env=kelly_tc_environment(**(env or {})),
                          capture_output=True, text=True, timeout=timeout)
