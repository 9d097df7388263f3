"""``python -m tests.hostile.paused_cli NAME:N ARGUMENTS...``: the real ``kelly-tc ARGUMENTS...``, stopped
at the N-th atomic write of a file named NAME just before its rename -- the temporary file complete and
fsynced, the target not yet replaced. It prints one ``PAUSED ...`` line on stderr and sleeps, so a test
can SIGKILL it at exactly that point (tests/hostile/test_kill.py); the product code has no test hook.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

PAUSED = "PAUSED before renaming"


def pause_before_rename(name: str, count: int) -> None:
    """Make ``toolchain.atomic`` stop before its ``count``-th ``os.replace`` onto a file named ``name``."""
    import toolchain.atomic as atomic

    real_os, seen = atomic.os, {"count": 0}

    class PausingOs:
        def __getattr__(self, attribute):
            return getattr(real_os, attribute)

        @staticmethod
        def replace(source, target):
            if Path(target).name == name:
                seen["count"] += 1
                if seen["count"] == count:
                    print(f"{PAUSED} {source} onto {target}", file=sys.stderr, flush=True)
                    time.sleep(3600)
            real_os.replace(source, target)

    atomic.os = PausingOs()


def main() -> None:
    name, count = sys.argv[1].rsplit(":", 1)
    pause_before_rename(name, int(count))
    sys.argv = ["kelly-tc", *sys.argv[2:]]
    from toolchain.cli import main as kelly_tc

    kelly_tc()


if __name__ == "__main__":
    main()
