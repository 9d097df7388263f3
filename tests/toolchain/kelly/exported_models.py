"""The five Kelly models, seeded random initial weights, exported once per session (``kelly_models``).

Random weights (not trained ones) keep the fixture fast; export, conversion and the checks do not care
whether a model learned anything. Each model is exported with the default TorchScript exporter through
``toolchain.kelly.export.export_models`` into one folder, as ``kelly-tc export`` writes it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Seed of model ``index`` of ``spec.MODEL_NAMES``: seed base + index.
SEED = 20_250


@dataclass
class KellyModels:
    """``directory`` holds NAME.onnx and NAME.json for the five models; ``torch_models`` the PyTorch
    modules they were exported from (eval mode); ``report`` the export's ExportReport."""

    directory: Path
    json_paths: dict
    onnx_paths: dict
    torch_models: dict
    report: object

    def copy_json(self, target: Path, names=None) -> Path:
        """A private copy of the JSON files in ``target`` (for tests that alter or delete them)."""
        import shutil

        target.mkdir(parents=True, exist_ok=True)
        for name in names if names is not None else self.json_paths:
            shutil.copy(self.json_paths[name], target / f"{name}.json")
        return target


def export_random_models(directory: Path) -> KellyModels:
    from toolchain.kelly.export import export_models
    from toolchain.kelly.models import build_model
    from toolchain.kelly.spec import MODEL_NAMES

    models = {name: build_model(name, seed=SEED + index).eval() for index, name in enumerate(MODEL_NAMES)}
    report = export_models(models, directory)
    return KellyModels(directory, {n: directory / f"{n}.json" for n in MODEL_NAMES},
                       {n: directory / f"{n}.onnx" for n in MODEL_NAMES}, models, report)
