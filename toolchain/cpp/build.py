"""Find a user's RTNeural checkout and compile C++ programs against it, once, into a cache folder.

RTNeural is header-only, so "building RTNeural" means compiling one of our programs (the harnesses in
this folder, or a program around a generated ``kelly-tc cpp`` header) with RTNeural on the include
path. Each binary is cached under a key hashed from everything that decides its machine code: the
program's sources and local headers, the RTNeural tree, the compiler's version and the flags. A second
run with the same inputs reuses the binary; editing any of them rebuilds.

Backends (RTNeural's own names): ``stl`` needs nothing but a C++17 compiler; ``eigen`` needs Eigen 3.4
headers, taken from the checkout's own ``modules/Eigen`` submodule when present, else Debian's
``libeigen3-dev`` (``/usr/include/eigen3``).
"""
from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import logging
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from toolchain import atomic
from toolchain.errors import InputError, UnsupportedError

log = logging.getLogger(__name__)

#: This folder: the harness sources ship inside the package.
HERE = Path(__file__).resolve().parent
BACKENDS = ("stl", "eigen")
#: RTNeural reads input frames as aligned to this many bytes; we pass it explicitly because RTNeural
#: warns at every compile when it is left undefined.
ALIGNMENT_FLAG = "-DRTNEURAL_DEFAULT_ALIGNMENT=16"
SYSTEM_EIGEN = Path("/usr/include/eigen3")


class RTNeuralNotFound(InputError):
    """No RTNeural source tree was given or found (the C++ checks cannot run)."""


def find_rtneural(src: str | Path | None = None) -> Path:
    """The root of an RTNeural checkout (the folder holding ``RTNeural/RTNeural.h``).

    ``src`` wins; else the ``RTNEURAL_SRC`` environment variable. Pointing at the inner ``RTNeural/``
    folder also works. Raises :class:`RTNeuralNotFound` naming what was tried.
    """
    given = src if src is not None else os.environ.get("RTNEURAL_SRC")
    if not given:
        raise RTNeuralNotFound("RTNeural's source was not given: pass its path (--rtneural SRC) or set RTNEURAL_SRC")
    path = Path(given).expanduser().resolve()
    for root in (path, path.parent):
        if (root / "RTNeural" / "RTNeural.h").is_file():
            if not (root / "modules" / "json" / "json.hpp").is_file():
                raise RTNeuralNotFound("has no modules/json/json.hpp (RTNeural's JSON parser includes it); "
                                       "clone with submodules", file=root)
            return root
    raise RTNeuralNotFound("not an RTNeural checkout (no RTNeural/RTNeural.h)", file=path)


def eigen_include(root: Path) -> Path | None:
    """Eigen's include folder for the Eigen backend, or None when neither source has it."""
    for candidate in (root / "modules" / "Eigen", SYSTEM_EIGEN):
        if (candidate / "Eigen" / "Core").is_file():
            return candidate
    return None


def backend_flags(root: Path, backend: str) -> list[str]:
    """Compiler flags selecting RTNeural's backend."""
    if backend == "stl":
        return []
    if backend == "eigen":
        eigen = eigen_include(root)
        if eigen is None:
            raise UnsupportedError(f"the Eigen backend needs Eigen 3.4 headers: none in {root}/modules/Eigen or "
                                   f"{SYSTEM_EIGEN} (install libeigen3-dev)")
        return ["-DRTNEURAL_USE_EIGEN=1", "-isystem", str(eigen)]
    raise UnsupportedError(f"unknown RTNeural backend {backend!r}; known: {BACKENDS}")


def compiler() -> list[str]:
    """The C++ compiler command (``CXX`` if set, else g++)."""
    return shlex.split(os.environ.get("CXX", "g++"))


@functools.lru_cache(maxsize=None)
def compiler_version(command: tuple[str, ...]) -> str:
    try:
        result = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise UnsupportedError(f"no working C++ compiler ({' '.join(command)}: {error}); install g++ or set CXX") from None
    return result.stdout.splitlines()[0] if result.stdout else ""


@functools.lru_cache(maxsize=None)
def tree_hash(root: Path) -> str:
    """A hash of RTNeural's headers and the JSON library it includes (path and content of each)."""
    digest = hashlib.sha256()
    for folder in (root / "RTNeural", root / "modules" / "json"):
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".h", ".hpp", ".tpp", ".cpp"):
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where binaries are kept: ``KELLY_TC_CACHE_DIR`` or ``~/.cache/kelly-tc``, subfolder ``rtneural``."""
    base = os.environ.get("KELLY_TC_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kelly-tc"
    return Path(base) / "rtneural"


def _local_files(sources: Sequence[Path], include_dirs: Iterable[Path]) -> list[Path]:
    """Every file whose content the build depends on, besides RTNeural: the sources and the headers
    beside them or in the extra include folders (our harness headers, generated model headers)."""
    files = {Path(s).resolve() for s in sources}
    for folder in {Path(s).resolve().parent for s in sources} | {Path(d).resolve() for d in include_dirs}:
        files.update(p for p in folder.iterdir() if p.is_file() and p.suffix in (".h", ".hpp", ".inc"))
    return sorted(files)


def build_key(sources: Sequence[Path], root: Path, flags: Sequence[str], include_dirs: Sequence[Path] = ()) -> str:
    digest = hashlib.sha256()
    digest.update(compiler_version(tuple(compiler())).encode())
    digest.update("\0".join(flags).encode())
    digest.update(tree_hash(root).encode())
    for path in _local_files(sources, include_dirs):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def build_jobs() -> int:
    """Compilers run at once for a multi-file program: ``KELLY_TC_BUILD_JOBS`` or the CPU count."""
    return max(1, int(os.environ.get("KELLY_TC_BUILD_JOBS") or os.cpu_count() or 1))


def _run_compiler(command: list[str], name: str, backend: str, root: Path, log_path: Path) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        atomic.write_text(log_path, shlex.join(command) + "\n\n" + result.stderr)
        first_error = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr[:300])
        raise InputError(f"C++ build of {name} failed ({backend} backend): {first_error.strip()[:400]} "
                         f"(full log: {log_path})", file=root)


def compile_program(sources: Sequence[Path], *, src: str | Path | None = None, backend: str = "stl",
                    name: str = "program", optimization: str = "-O2", include_dirs: Sequence[Path] = (),
                    extra_flags: Sequence[str] = ()) -> Path:
    """Compile ``sources`` against RTNeural into the cache (or reuse the cached binary); return its path.

    Several sources compile in parallel (``build_jobs()``), then link: ModelT-heavy programs are split
    into parts so that both cores of a small CI machine work on them."""
    root = find_rtneural(src)
    flags = ["-std=c++17", optimization, ALIGNMENT_FLAG, *backend_flags(root, backend), *extra_flags]
    includes = ["-I", str(root), "-I", str(HERE)] + [a for d in include_dirs for a in ("-I", str(d))]
    key = build_key(sources, root, flags, include_dirs)
    binary = cache_dir() / f"{name}-{backend}-{key}"
    if binary.is_file():
        return binary
    log.info("compiling %s (%s backend) against RTNeural at %s", name, backend, root)
    binary.parent.mkdir(parents=True, exist_ok=True)
    log_path = binary.with_suffix(".log")
    with atomic.atomic_path(binary) as temporary, tempfile.TemporaryDirectory(prefix="kelly-tc-build-") as objects:
        if len(sources) == 1:
            _run_compiler([*compiler(), *flags, *includes, str(sources[0]), "-o", str(temporary)], name, backend, root, log_path)
        else:
            outputs = [Path(objects) / f"{index}.o" for index in range(len(sources))]
            commands = [[*compiler(), *flags, *includes, "-c", str(source), "-o", str(output)] for source, output in zip(sources, outputs)]
            with concurrent.futures.ThreadPoolExecutor(min(build_jobs(), len(commands))) as pool:
                for done in [pool.submit(_run_compiler, c, name, backend, root, log_path) for c in commands]:
                    done.result()
            _run_compiler([*compiler(), *map(str, outputs), "-o", str(temporary)], name, backend, root, log_path)
    binary.chmod(0o755)
    return binary


def harness_binary(src: str | Path | None = None, backend: str = "stl") -> Path:
    """The dynamic-API harness (``harness.cpp``) built against RTNeural at ``src``."""
    return compile_program([HERE / "harness.cpp"], src=src, backend=backend, name="harness")
