"""Programs around ``kelly-tc cpp`` headers: RTNeural's compile-time API, several models per program.

A ``ModelT`` type takes seconds to compile; a program holding many models (each header in its own
namespace) is compiled once and then run per model with ``--model KEY``. The generated sources go to
a folder named by their hash inside the build cache, so an unchanged set of models is never rebuilt.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from toolchain import atomic
from toolchain.cpp.build import HERE, cache_dir, compile_program
from toolchain.cpp.header import generate_header, raw_layers
from toolchain.cpp.runner import invoke, run_program, time_program
from toolchain.errors import InputError
from toolchain.layers import Model


@dataclass(frozen=True)
class StaticModel:
    """One model of a program: ``key`` selects it at run time; ``json_path`` feeds the JSON loader
    (headers generated without ``embed_weights``)."""

    key: str
    model: Model = field(compare=False)
    json_path: Path | None = None
    embed_weights: bool = False
    precision: str = "float"


def _entry(index: int, entry: StaticModel) -> str:
    namespace = f"kelly_model_{index}"
    load = f"{namespace}::load(*model)" if entry.embed_weights else f"{namespace}::load(*model, arguments.json)"
    return f"""#include "model_{index}.h"
static void run_model_{index}(const kelly_harness::Arguments& arguments)
{{
    auto model = std::make_unique<{namespace}::Model>();
    if(!{load})
        throw std::runtime_error("load() failed for model '{entry.key}'");
    kelly_harness::run_loaded<{namespace}::scalar_type>(*model, arguments, {namespace}::input_size, {namespace}::output_size, &{namespace}::self_test);
}}
"""


def write_sources(models: Sequence[StaticModel]) -> Path:
    """Generate every header and ``kelly_models.inc`` into a folder named by their content hash."""
    keys = [m.key for m in models]
    if len(set(keys)) != len(keys) or not keys:
        raise InputError(f"model keys must be unique and non-empty, got {keys}")
    files = {f"model_{i}.h": generate_header(m.model, name="Model", namespace=f"kelly_model_{i}", embed_weights=m.embed_weights,
                                             precision=m.precision, source=m.json_path.name if m.json_path else "model.json",
                                             file_layers=raw_layers(m.json_path) if m.json_path else None)
             for i, m in enumerate(models)}
    entries = ",\n".join(f'    {{"{m.key}", &run_model_{i}}}' for i, m in enumerate(models))
    files["kelly_models.inc"] = "".join(_entry(i, m) for i, m in enumerate(models)) + \
        f"\nstatic const kelly_harness::Entry kelly_entries[] = {{\n{entries}\n}};\n"
    digest = hashlib.sha256("\0".join(f"{k}\0{v}" for k, v in sorted(files.items())).encode()).hexdigest()[:20]
    folder = cache_dir() / "sources" / digest
    if not (folder / "kelly_models.inc").is_file():
        for file_name, text in files.items():
            atomic.write_text(folder / file_name, text)  # the .inc last: its presence marks a complete folder
    return folder


@dataclass
class StaticProgram:
    binary: Path
    models: dict[str, StaticModel]

    def _arguments(self, key: str) -> list:
        entry = self.models[key]
        return ["--model", key] + (["--json", entry.json_path] if not entry.embed_weights else [])

    def run(self, key: str, frames: np.ndarray, extra: Sequence[str] = ()) -> np.ndarray:
        """Outputs [T, out] (float64) of the compile-time model ``key`` on ``frames`` (reset first)."""
        return run_program(self.binary, [*self._arguments(key), *extra], frames, file=self.models[key].json_path)

    def self_test(self, key: str) -> float:
        """What the header's ``self_test()`` returns (NaN when the model has no reference pair)."""
        output = invoke([self.binary, *self._arguments(key), "--self-test"], self.models[key].json_path)
        error = json.loads(output.strip().splitlines()[-1])["self_test"]
        return float("nan") if error is None else float(error)

    def time(self, key: str, frames: np.ndarray, repeats: int) -> dict:
        return time_program(self.binary, self._arguments(key), frames, repeats, file=self.models[key].json_path)


def build_static_program(models: Sequence[StaticModel], src: str | Path | None = None, backend: str = "stl",
                         optimization: str = "-O2") -> StaticProgram:
    """Compile (or reuse) one program holding every model of ``models``."""
    folder = write_sources(models)
    # The harness includes RTNeural (and so Eigen) before the headers, whose own lifting of Eigen's
    # fixed-size limit then comes too late; the models live on the heap, so lift it for the program.
    flags = ["-DEIGEN_STACK_ALLOCATION_LIMIT=0"] if backend == "eigen" else []
    binary = compile_program([HERE / "static_harness.cpp"], src=src, backend=backend, name="static-harness",
                             optimization=optimization, include_dirs=[folder], extra_flags=flags)
    return StaticProgram(binary, {m.key: m for m in models})
