"""Mutation fuzzing of the two loaders of untrusted files: the ONNX importer and the RTNeural JSON reader.

Valid seed files (small graphs built with onnx.helper, legacy torch exports of the catalogue models,
every layer kind as JSON, INT8 JSON) are broken by ``tests/hostile/mutations.py`` and loaded. The only
exception allowed is the project's own :class:`toolchain.errors.KellyError` (a one-line message); a file
that loads must also write back, read back and run one frame in the reference engine. Anything else --
another exception type, a multi-line message, a hang past ``TIME_LIMIT`` s -- is a bug.

The bounded run is part of the test suite (tests/hostile/test_fuzz.py). The long run::

    python -m tests.hostile.fuzz --examples 20000               # both loaders, 20,000 files each
    python -m tests.hostile.fuzz --target json --examples 50000 --seed 7

prints the counts and stops at the first bug with hypothesis's shrunk reproducer. It runs under a
4 GiB address-space limit (``--memory-limit``), so an unguarded allocation shows as a MemoryError bug.

Coverage-guided fuzzing with atheris (optional, not a dependency; ``pip install atheris``): the harness
functions take raw bytes, so ::

    import atheris, sys, tempfile
    from pathlib import Path
    with atheris.instrument_imports():
        from tests.hostile.fuzz import check_onnx_bytes
    folder = Path(tempfile.mkdtemp())
    atheris.Setup(sys.argv, lambda data: check_onnx_bytes(data, folder))
    atheris.Fuzz()

(``check_json_bytes`` for the JSON loader) run with ``python that_script.py -max_total_time=600 corpus/``;
seed the corpus folder with ``python -m tests.hostile.fuzz --write-seeds corpus/``.
"""
from __future__ import annotations

import argparse
import contextlib
import resource
import signal
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from tests.hostile import mutations
from toolchain.errors import KellyError

#: Seconds one file may take to load (and, if accepted, to write back and run): beyond it, a hang.
TIME_LIMIT = 20.0


class FuzzTimeout(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` in the code under test hides it."""


@contextlib.contextmanager
def time_limit(seconds: float):
    def alarm(signum, frame):
        raise FuzzTimeout(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------------------------- seeds
def onnx_seeds() -> list[bytes]:
    """Small valid models of each op family, plus legacy torch exports of three catalogue models."""
    from tests.fixtures import onnx_graphs as graphs

    rng = np.random.default_rng(5)
    r = lambda *shape: graphs.random(rng, *shape)  # noqa: E731
    protos = [graphs.dense(r(5, 3), r(3), "Tanh"), graphs.lstm(r(1, 16, 3), r(1, 16, 4), r(1, 32)),
              graphs.lstm(r(1, 20, 2), r(1, 20, 5), r(1, 40), layout=1, squeeze=True),
              graphs.gru(r(1, 9, 4), r(1, 9, 3), r(1, 18), squeeze=True), graphs.conv(r(4, 2, 3), r(4), left_pad_node=2)]
    seeds = [proto.SerializeToString() for proto in protos]
    with contextlib.suppress(ImportError):
        seeds += _torch_exports()
    return seeds


def _torch_exports() -> list[bytes]:
    import torch

    from tests.fixtures import catalog, export, torch_models

    seeds = []
    with tempfile.TemporaryDirectory() as folder:
        for case in catalog.CASES:
            if case.name in ("mixed_stack", "causal_conv", "gru_time_major_elu", "dense_2d_gemm"):
                model = getattr(torch_models, case.model)()
                batch_first = case.axes.get(0) == "batch"
                shape = (2, 7, case.input_size) if batch_first else (7, 2, case.input_size) if 1 in case.axes else (7, case.input_size)
                path = Path(folder) / f"{case.name}.onnx"
                export.export_legacy(model, torch.zeros(shape), path, case.axes)
                seeds.append(path.read_bytes())
    return seeds


def json_seeds() -> list:
    """Parsed documents: every layer kind (float JSON), three INT8 JSON documents, RTNeural's test models."""
    import json

    from quant.int8_json import quantize_model, to_json
    from tests.conftest import RTNEURAL_TESTDATA
    from toolchain.layers import GRU, LSTM, Activation, BatchNorm, BatchNorm2D, Conv1D, Conv2D, Dense, Model, PRelu
    from toolchain.rtneural_json import model_to_json

    rng = np.random.default_rng(9)
    r = lambda *shape: (rng.standard_normal(shape) * 0.5).astype(np.float32)  # noqa: E731
    stacks = [
        Model(3, [Dense(r(5, 3), r(5), activation="tanh"), LSTM(r(16, 5), r(16, 4), r(16)), Dense(r(2, 4), r(2))]),
        Model(4, [GRU(r(9, 4), r(9, 3), r(9), r(9)), PRelu(r(3), size=3), Activation(activation="softmax", size=3)]),
        Model(2, [Conv1D(r(4, 1, 3), r(4), dilation=2, groups=2, activation="relu"),
                  BatchNorm(r(4), r(4), r(4), np.abs(r(4)) + 0.1, epsilon=1e-3), Activation(activation="elu", size=4)]),
        Model(2, [BatchNorm(r(2), r(2), r(2), np.abs(r(2)) + 0.1), PRelu(r(1), size=2), Dense(r(3, 2), r(3), activation="sigmoid")]),
        Model(10, [Conv2D(r(3, 2, 2, 3), r(3), num_features_in=5, dilation=2, stride=2, valid_pad=False, activation="relu"),
                   BatchNorm2D(r(3), r(3), r(3), np.abs(r(3)) + 0.1, num_features=3), Dense(r(2, 9), r(2))]),
    ]
    documents = [model_to_json(model) for model in stacks] + [to_json(quantize_model(model)) for model in stacks[:2] + stacks[-1:]]
    if (RTNEURAL_TESTDATA / "models").is_dir():
        documents += [json.loads(path.read_text()) for path in sorted((RTNEURAL_TESTDATA / "models").glob("*.json"))]
    return documents


# ---------------------------------------------------------------------------------------------- harness
def _exercise(model, folder: Path) -> None:
    """A loaded model must write back, read back the same, and run one frame."""
    from reference_engine.model import Engine
    from toolchain.layers import Model
    from toolchain.rtneural_json import read_model, write_model

    if isinstance(model, Model):
        again = read_model(write_model(model, folder / "again.json"))
        assert [(layer.kind, layer.in_size, layer.out_size) for layer in again.layers] == \
               [(layer.kind, layer.in_size, layer.out_size) for layer in model.layers]
    engine = Engine(model)
    engine.reset()
    engine.forward(np.zeros(engine.input_size, np.float32))


def _outcome(load, path: Path, folder: Path) -> str:
    try:
        with time_limit(TIME_LIMIT), warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning would be a second line on the CLI's stderr
            try:
                model = load(path)
            except KellyError as error:
                assert error.line().isprintable(), f"a message with a newline or control character: {error.line()!r}"
                return "refused"
            _exercise(model, folder)
    except KellyError as error:
        raise AssertionError(f"a loaded model failed to write back or run: {error.line()}") from error
    return "accepted"


def check_onnx_bytes(data: bytes, folder: Path) -> str:
    """Load ``data`` as an ONNX file: 'refused' (KellyError) or 'accepted'; anything else raises."""
    from toolchain.onnx_import import import_onnx

    path = folder / "model.onnx"
    path.write_bytes(data)
    return _outcome(lambda p: import_onnx(p).model, path, folder)


def check_json_bytes(data: bytes, folder: Path) -> str:
    """Load ``data`` as a JSON model file (RTNeural or INT8, as ``kelly-tc run`` does)."""
    from reference_engine.model import read_engine_model

    path = folder / "model.json"
    path.write_bytes(data)
    return _outcome(read_engine_model, path, folder)


# ---------------------------------------------------------------------------------------------- runs
def run(target: str, examples: int, folder: Path, counts: Counter, derandomize: bool = False, seed: int | None = None) -> None:
    """Fuzz ``target`` ('onnx' or 'json') for ``examples`` mutated files, tallying outcomes in ``counts``."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis import strategies as st

    seeds = onnx_seeds() if target == "onnx" else json_seeds()
    kinds = mutations.ONNX_MUTATIONS if target == "onnx" else mutations.JSON_MUTATIONS
    mutate, check = (mutations.mutate_onnx, check_onnx_bytes) if target == "onnx" else (mutations.mutate_json, check_json_bytes)
    steps = st.lists(st.tuples(st.sampled_from(kinds), st.integers(0, 2**32 - 1)), min_size=1, max_size=4)

    @settings(max_examples=examples, deadline=None, derandomize=derandomize, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(index=st.integers(0, len(seeds) - 1), changes=steps)
    def fuzz(index, changes):
        counts[check(mutate(seeds[index], changes), folder)] += 1

    if seed is not None:
        fuzz = fixed_seed(seed)(fuzz)
    fuzz()


def limit_memory(gibibytes: float) -> None:
    limit = int(gibibytes * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


@contextlib.contextmanager
def memory_headroom(gibibytes: float):
    """Limit this process's address space to what it uses now plus ``gibibytes`` for the duration, so
    that a file making the loader allocate gigabytes fails with MemoryError (a bug) instead of paging."""
    with open("/proc/self/statm") as handle:
        used = int(handle.read().split()[0]) * resource.getpagesize()
    previous = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (used + int(gibibytes * (1 << 30)), previous[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, previous)


def write_seeds(folder: Path) -> None:
    import json

    folder.mkdir(parents=True, exist_ok=True)
    for index, data in enumerate(onnx_seeds()):
        (folder / f"seed{index}.onnx").write_bytes(data)
    for index, document in enumerate(json_seeds()):
        (folder / f"seed{index}.json").write_text(json.dumps(document))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Mutation fuzzing of the ONNX importer and the JSON loader.")
    parser.add_argument("--examples", type=int, default=10_000, help="Mutated files per target.")
    parser.add_argument("--target", choices=("onnx", "json", "both"), default="both")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random).")
    parser.add_argument("--memory-limit", type=float, default=4.0, help="Address-space limit in GiB (0: none).")
    parser.add_argument("--write-seeds", type=Path, default=None, help="Only write the seed files here (an atheris corpus).")
    args = parser.parse_args(argv)
    if args.write_seeds:
        write_seeds(args.write_seeds)
        return 0
    if args.memory_limit:
        onnx_seeds(), json_seeds()  # import everything (torch, numba, onnxruntime) before the limit
        limit_memory(args.memory_limit)
    print(f"{'target':8} {'files':>8} {'accepted':>9} {'refused':>8} {'seconds':>8}")
    for target in ("onnx", "json") if args.target == "both" else (args.target,):
        counts, started = Counter(), time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"kelly-tc-fuzz-{target}-") as folder:
            run(target, args.examples, Path(folder), counts, seed=args.seed)
        print(f"{target:8} {sum(counts.values()):>8} {counts['accepted']:>9} {counts['refused']:>8} {time.perf_counter() - started:>8.1f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
