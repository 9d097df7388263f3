"""Run the README's commands as written, from a fresh clone: ``python tests/readme_commands.py [--ci]``.

1. ``git clone`` this repository's last commit (HEAD; commit first) into a temporary folder -- a clean
   clone: no ``kelly-out/``, no caches, nothing untracked;
2. make a virtual environment beside it with ``--system-site-packages`` (the packages already installed on
   the machine are reused, so ``pip install`` lines resolve as they would on a user's machine after the
   first install, without downloading gigabytes again) and put it first on PATH;
3. run every ```` ```bash ```` and ```` ```python ```` block of README.md in order, in the clone's root: a bash
   block as one ``bash -e -o pipefail`` script (variables it exports carry on to the next blocks, as in one
   terminal), a python block with the environment's python.

``--ci`` leaves out the commands listed in :data:`NOT_IN_CI`, each with its reason (printed), to stay within
CI's time. Exit 0 when every command that ran succeeded; otherwise the failing command, its output's tail,
and exit 1.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Command (as written in the README, exactly) -> why CI does not run it. Everything else runs in CI.
NOT_IN_CI = {
    "pytest": "the suite: CI's own next step, on its own clean clone",
    "git clone https://github.com/jatinchowdhury18/RTNeural ../RTNeural": "needs github; CI provides RTNEURAL_SRC from ../shared",
    "export RTNEURAL_SRC=$PWD/../RTNeural": "CI provides RTNEURAL_SRC from ../shared (the checkout is not cloned)",
    "kelly-tc train --output kelly-out/training": "minutes of training; `kelly-tc pipeline` just trained the same five models into kelly-out/training",
    "kelly-tc features --source corpus --store kelly-store --workers 2": "renders and featurizes 24 chorales on a Dask cluster (minutes); tests/toolchain/kelly/test_store.py and test_scale_cluster.py run it on small inputs",
    "kelly-tc train --store kelly-store --output kelly-out/training-store": "trains the five models from the store (minutes); covered by tests/toolchain/kelly/test_store.py",
    "torchrun --standalone --nproc-per-node 2 -m toolchain.cli train --store kelly-store --batch-size 32 --output kelly-out/training-ddp": "two-process DDP training (minutes); covered by tests/toolchain/kelly/test_scale_cluster.py",
    "python -m bench.compare_runtimes": "the full comparison (minutes, and it rewrites the committed results); CI runs the --quick line above it",
    "python -m tests.hostile.fuzz --examples 20000": "the long fuzz run (the suite runs a bounded one)",
    "python -m reference_engine.soak --frames 1000000": "the long soak run (the suite runs 10^5 frames)",
}


def blocks(readme: str) -> list[tuple[str, str]]:
    """(language, code) of every ```bash and ```python block, in order."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(bash|python)\n(.*?)^```", readme, re.S | re.M)]


def commands(code: str) -> list[str]:
    """The commands of a bash block: one per line, split at `` && `` (same meaning under ``set -e``),
    comment lines dropped. A trailing ``# comment`` stays: bash ignores it."""
    found = []
    for line in code.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        found += [part.strip() for part in line.split(" && ")]
    return found


def without_comment(command: str) -> str:
    """``command`` without a trailing ``# ...`` comment (for matching :data:`NOT_IN_CI`)."""
    return " ".join(shlex.split(command, comments=True)) if "#" in command else command


def run_bash(command: str, cwd: Path, environment: dict, log) -> subprocess.CompletedProcess:
    env_out = cwd.parent / "environment.out"
    script = f"set -e -o pipefail\n{command}\nenv -0 > {shlex.quote(str(env_out))}\n"
    result = subprocess.run(["bash", "-c", script], cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    if result.returncode == 0 and env_out.exists():  # an `export` carries on to the next commands
        environment.clear()
        environment.update(dict(item.split("=", 1) for item in env_out.read_text().split("\0") if "=" in item))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ci", action="store_true", help="leave out the long runs listed in NOT_IN_CI")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone (its path is printed)")
    arguments = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="kelly-tc-readme-"))
    clone, venv = work / "kelly-tc", work / "venv"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)], check=True)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment.update(PATH=f"{venv / 'bin'}{os.pathsep}{environment.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    print(f"README commands in a fresh clone: {clone}", flush=True)

    left_out, ran = [], 0
    for language, code in blocks((clone / "README.md").read_text()):
        steps = commands(code) if language == "bash" else [code]
        for step in steps:
            label = step if language == "bash" else f"python <<EOF ({len(step.splitlines())} lines) EOF"
            if arguments.ci and language == "bash" and without_comment(step) in NOT_IN_CI:
                left_out.append((step, NOT_IN_CI[without_comment(step)]))
                print(f"  -    {label}   [not in CI: {NOT_IN_CI[without_comment(step)]}]", flush=True)
                continue
            started = time.perf_counter()
            with open(work / "output.log", "w") as log:
                if language == "bash":
                    result = run_bash(step, clone, environment, log)
                else:
                    result = subprocess.run([str(venv / "bin" / "python"), "-c", step], cwd=clone, env=environment,
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            seconds = time.perf_counter() - started
            ran += 1
            if result.returncode != 0:
                tail = (work / "output.log").read_text().splitlines()[-25:]
                print(f"  FAIL {label}   (exit {result.returncode}, {seconds:.0f} s)\n" + "\n".join(f"       {t}" for t in tail))
                print(f"README command failed; clone kept at {clone}")
                return 1
            print(f"  ok   {label}   ({seconds:.0f} s)", flush=True)
    print(f"{ran} README commands ran as written from a fresh clone"
          + (f"; {len(left_out)} left out in CI (reasons above)" if left_out else ""))
    if not arguments.keep:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
