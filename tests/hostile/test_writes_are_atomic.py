"""Nothing lost, nothing unpickled: a source audit of every file writer and every loader.

The audits are real checks: each is also run on a snippet with the mistakes it must catch."""
from __future__ import annotations

import textwrap

from tests.conftest import REPO
from tests.hostile.writers import audit, unsafe_loads

PRODUCT = ("kelly_tc", "toolchain", "reference_engine", "quant", "bench", "examples")
#: The implementation of the atomic write itself (its fsync reopens the temporary file "rb+").
ATOMIC_IMPLEMENTATION = ("toolchain/atomic.py",)


def test_every_file_writer_in_the_product_goes_through_toolchain_atomic():
    violations = audit(REPO, PRODUCT, exclude=ATOMIC_IMPLEMENTATION)
    assert violations == [], "write these through toolchain.atomic:\n" + "\n".join(map(str, violations))


def test_no_loader_can_unpickle_a_file_anywhere_in_the_tree():
    found = unsafe_loads(REPO, PRODUCT + ("tests",))
    assert found == [], "torch.load needs weights_only=True; never allow_pickle=True or pickle:\n" + "\n".join(map(str, found))


def _snippet(tmp_path, code: str):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "module.py").write_text(textwrap.dedent(code))
    return tmp_path


def test_the_writer_audit_flags_bare_writes_and_passes_atomic_ones(tmp_path):
    root = _snippet(tmp_path, """
        import io, json, shutil, tempfile
        import numpy as np, onnx, soundfile, torch
        from pathlib import Path
        from toolchain import atomic
        from toolchain.atomic import atomic_path

        def bare(path, model, figure, midi, array):
            Path(path).write_text("x")                        # flagged
            np.save(path, array)                              # flagged
            onnx.save(model, str(path))                       # flagged
            torch.save(model, path)                           # flagged
            torch.onnx.export(model, (array,), str(path))     # flagged
            figure.savefig(path)                              # flagged
            soundfile.write(path, array, 22050)               # flagged
            midi.write(str(path))                             # flagged
            shutil.copy(path, "out.json")                     # flagged
            with open(path, "w") as handle:                   # flagged
                json.dump({}, handle)
            with Path(path).open("ab") as handle:             # flagged
                handle.write(b"x")

        def safe(path, model, figure, midi, array):
            atomic.write_text(path, "x")
            with atomic_path(path, suffix=".npy") as tmp:
                np.save(tmp, array)
                midi.write(str(tmp))
            with atomic.atomic_path(path) as temporary:
                inner = temporary.with_suffix(".png")
                figure.savefig(inner)
                with open(temporary, "w") as handle:
                    handle.write("x")
            buffer = io.BytesIO()
            torch.save(model, buffer)
            with tempfile.TemporaryDirectory() as folder:
                onnx.save(model, str(Path(folder) / "scratch.onnx"))
            with open(path) as handle:
                handle.read()
        """)
    flagged = [v.line for v in audit(root, ("pkg",))]
    assert flagged == [9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20]


def test_the_unpickling_audit_flags_every_way_to_unpickle(tmp_path):
    root = _snippet(tmp_path, """
        import pickle, numpy as np, torch
        from torch import load

        torch.load("m.pt")
        torch.load("m.pt", weights_only=False)
        np.load("x.npy", allow_pickle=True)
        pickle.load(open("x", "rb"))
        pickle.loads(b"")
        torch.load("m.pt", weights_only=True)
        np.load("x.npy")
        np.load("x.npy", allow_pickle=False)
        """)
    assert [v.line for v in unsafe_loads(root, ("pkg",))] == [3, 5, 6, 7, 8, 9]
