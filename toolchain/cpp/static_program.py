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
from toolchain.cpp.build import HERE, build_jobs, cache_dir, compile_program
from toolchain.cpp.cpp_text import string_literal
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
    return f"""
static void run_model_{index}(const kelly_harness::Arguments& arguments)
{{
    auto model = std::make_unique<{namespace}::Model>();
    if(!{load})
        throw std::runtime_error({string_literal(f"load() failed for model '{entry.key}'")});
    kelly_harness::run_loaded<{namespace}::scalar_type>(*model, arguments, {namespace}::input_size, {namespace}::output_size, &{namespace}::self_test);
}}
"""


def _parts(models: Sequence[StaticModel], count: int) -> list[list[int]]:
    """Model indexes per translation unit, balanced by a rough compile cost (a ModelT type, plus its
    compiled-in weights)."""
    parts: list[list[int]] = [[] for _ in range(max(1, min(count, len(models))))]
    costs = [0.0] * len(parts)
    cost = lambda m: 1.0 + (m.model.parameter_count() / 1e5 if m.embed_weights else 0.0)  # noqa: E731
    for index in sorted(range(len(models)), key=lambda i: -cost(models[i])):
        lightest = costs.index(min(costs))
        parts[lightest].append(index)
        costs[lightest] += cost(models[index])
    return [sorted(p) for p in parts]


def _part_source(part: int, indexes: list[int], models: Sequence[StaticModel]) -> str:
    includes = "".join(f'#include "model_{i}.h"\n' for i in indexes)
    entries = ",\n".join(f'    {{{string_literal(models[i].key)}, &run_model_{i}}}' for i in indexes)
    return ("#include <memory>\n#include <stdexcept>\n\n#include \"static_harness.h\"\n" + includes
            + "".join(_entry(i, models[i]) for i in indexes)
            + f"\nextern const kelly_harness::Entry kelly_entries_{part}[] = {{\n{entries}\n}};\n"
            + f"extern const int kelly_entries_{part}_count = {len(indexes)};\n")


def write_sources(models: Sequence[StaticModel], parts: int = 1) -> tuple[Path, list[Path]]:
    """Generate every header, ``parts`` translation units holding the models' entries and the
    ``kelly_models.inc`` the main file includes, into a folder named by their content hash.
    Returns the folder and the part sources."""
    keys = [m.key for m in models]
    if len(set(keys)) != len(keys) or not keys:
        raise InputError(f"model keys must be unique and non-empty, got {keys}")
    files = {f"model_{i}.h": generate_header(m.model, name="Model", namespace=f"kelly_model_{i}", embed_weights=m.embed_weights,
                                             precision=m.precision, source=m.json_path.name if m.json_path else "model.json",
                                             file_layers=raw_layers(m.json_path) if m.json_path else None)
             for i, m in enumerate(models)}
    split = _parts(models, parts)
    for part, indexes in enumerate(split):
        files[f"kelly_models_{part}.cpp"] = _part_source(part, indexes, models)
    declarations = "".join(f"extern const kelly_harness::Entry kelly_entries_{p}[];\nextern const int kelly_entries_{p}_count;\n"
                           for p in range(len(split)))
    lists = ", ".join(f"{{kelly_entries_{p}, kelly_entries_{p}_count}}" for p in range(len(split)))
    files["kelly_models.inc"] = declarations + f"static const kelly_harness::EntryList kelly_entry_lists[] = {{{lists}}};\n"
    digest = hashlib.sha256("\0".join(f"{k}\0{v}" for k, v in sorted(files.items())).encode()).hexdigest()[:20]
    folder = cache_dir() / "sources" / digest
    if not (folder / "kelly_models.inc").is_file():
        for file_name, text in sorted(files.items(), key=lambda item: item[0] == "kelly_models.inc"):
            atomic.write_text(folder / file_name, text)  # the .inc last: its presence marks a complete folder
    return folder, [folder / f"kelly_models_{p}.cpp" for p in range(len(split))]


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

    def time(self, key: str, frames: np.ndarray, repeats: int, block: int = 1) -> dict:
        return time_program(self.binary, self._arguments(key), frames, repeats, file=self.models[key].json_path, block=block)


def build_static_program(models: Sequence[StaticModel], src: str | Path | None = None, backend: str = "stl",
                         optimization: str = "-O2") -> StaticProgram:
    """Compile (or reuse) one program holding every model of ``models``."""
    folder, parts = write_sources(models, build_jobs())
    # The headers lift Eigen's fixed-size limit only when they come before any Eigen include; several
    # headers share a part here, so lift it for the whole program (the models live on the heap).
    flags = ["-DEIGEN_STACK_ALLOCATION_LIMIT=0"] if backend == "eigen" else []
    binary = compile_program([HERE / "static_harness.cpp", *parts], src=src, backend=backend, name="static-harness",
                             optimization=optimization, include_dirs=[folder], extra_flags=flags)
    return StaticProgram(binary, {m.key: m for m in models})
