"""Fine-tuning a pruned Kelly model on its training data (``kelly-tc prune --finetune``); needs torch.

The pruned ONNX model is converted to its layer list (``toolchain.onnx_import``), recognised as one of
the five Kelly models by its stack (sizes aside), rebuilt as a smaller ``KellyModel`` holding the
pruned weights (the inverse of ``toolchain.kelly.models.to_layer_model``), trained a few epochs with
the Kelly training loop and data (``toolchain.kelly``: real datasets, else the music21 corpus, else
synthetic data), keeping the epoch with the best validation loss, and exported back to ONNX
(``toolchain.kelly.export.export_onnx``). The losses are measured on the validation split: the
unpruned model, the pruned one before and after fine-tuning, and the predict-the-mean baseline.
"""
from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

from toolchain.errors import UnsupportedError
from toolchain.gates import GRU_CANONICAL, GRU_TORCH, LSTM_CANONICAL, LSTM_TORCH, reorder_gates
from toolchain.layers import GRU, LSTM, Dense, Model

log = logging.getLogger(__name__)

#: Fine-tuning runs at this fraction of the training learning rate (the weights are already trained).
LEARNING_RATE_SCALE = 0.5


def kelly_spec_of(model: Model):
    """The Kelly spec whose stack ``model`` has (layer kinds and activations; sizes may be pruned)."""
    from toolchain.kelly.spec import SPECS

    kinds = [(layer.kind, getattr(layer, "activation", "")) for layer in model.layers]
    for spec in SPECS:
        if (spec.input_size, spec.output_size) == (model.input_size, model.output_size) and \
                kinds == [(layer.kind, layer.activation if layer.kind == "dense" else "") for layer in spec.layers]:
            return spec
    raise UnsupportedError(f"--finetune needs one of the five Kelly models; this stack ({model.input_size} -> "
                           f"{', '.join(k for k, _ in kinds)} -> {model.output_size}) is none of them")


def kelly_module(model: Model):
    """A ``KellyModel`` of ``model``'s (possibly pruned) sizes holding its weights."""
    import torch

    from toolchain.kelly.models import KellyModel

    spec = kelly_spec_of(model)
    sized = dataclasses.replace(spec, layers=tuple(dataclasses.replace(layer_spec, size=layer.out_size)
                                                   for layer_spec, layer in zip(spec.layers, model.layers)))
    module = KellyModel(sized)
    blocks = [block for block in module.body if isinstance(block, torch.nn.Linear) or hasattr(block, "rnn")]
    with torch.no_grad():
        for block, layer in zip(blocks, model.layers):
            for name, value in _torch_tensors(layer).items():
                _set(block, name, torch.from_numpy(value))
    return module


def _torch_tensors(layer) -> dict:
    """PyTorch parameter name (on the Linear, or ``rnn.*``) -> array, from a canonical layer record."""
    if isinstance(layer, Dense):
        return {"weight": layer.weight, "bias": layer.bias}
    if isinstance(layer, LSTM):  # one canonical bias: all of it in bias_ih, zero bias_hh (their sum is what counts)
        return {"rnn.weight_ih_l0": reorder_gates(layer.weight_ih, LSTM_CANONICAL, LSTM_TORCH),
                "rnn.weight_hh_l0": reorder_gates(layer.weight_hh, LSTM_CANONICAL, LSTM_TORCH),
                "rnn.bias_ih_l0": reorder_gates(layer.bias, LSTM_CANONICAL, LSTM_TORCH),
                "rnn.bias_hh_l0": 0 * layer.bias}
    if isinstance(layer, GRU):
        return {f"rnn.{name}_l0": reorder_gates(getattr(layer, name), GRU_CANONICAL, GRU_TORCH)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    raise UnsupportedError(f"no PyTorch form for a {layer.kind} layer")


def _set(module, dotted: str, value) -> None:
    *path, name = dotted.split(".")
    for part in path:
        module = getattr(module, part)
    getattr(module, name).copy_(value)


def finetune_file(original_path: Path, pruned_path: Path, output_path: Path, epochs: int = 4,
                  datasets_dir: str | None = None, reporter=None, source: str = "auto") -> dict:
    """Fine-tune the pruned model at ``pruned_path`` into ``output_path`` (ONNX); return the losses."""
    import torch

    from toolchain.kelly.config import TrainConfig
    from toolchain.kelly.datasets import load_model_data
    from toolchain.kelly.export import export_onnx
    from toolchain.kelly.losses import baseline_loss
    from toolchain.kelly.progress import Reporter
    from toolchain.kelly.training import epoch_generator, evaluate, torch_threads, train_epoch
    from toolchain.onnx_import import import_onnx

    pruned = kelly_module(import_onnx(pruned_path).model)
    original = kelly_module(import_onnx(original_path).model)
    spec, sized = kelly_spec_of(import_onnx(original_path).model), pruned.spec
    with tempfile.TemporaryDirectory(prefix="kelly-tc-finetune-") as folder:
        config = TrainConfig(models=[spec.name], datasets_dir=datasets_dir, source=source, output=folder, epochs=epochs,
                             plot=False).validate()
        data = load_model_data(config, reporter)[0][spec.name]
    reporter = reporter or Reporter()
    losses = {"unpruned": evaluate(original, spec, data.validation, config.batch_size),
              "baseline": baseline_loss(spec, data.train.targets, data.validation.targets),
              "pruned": evaluate(pruned, sized, data.validation, config.batch_size)}
    best, best_state, history = losses["pruned"], {k: v.clone() for k, v in pruned.state_dict().items()}, []
    optimizer = torch.optim.Adam(pruned.parameters(), lr=config.learning_rate * LEARNING_RATE_SCALE)
    with torch_threads(config.threads):
        for epoch in range(1, epochs + 1):
            train_epoch(pruned, optimizer, sized, data.train, config.batch_size, epoch_generator(config.seed, epoch), reporter)
            loss = evaluate(pruned, sized, data.validation, config.batch_size)
            history.append(loss)
            if loss < best:
                best, best_state = loss, {k: v.clone() for k, v in pruned.state_dict().items()}
    pruned.load_state_dict(best_state)
    losses["finetuned"] = best
    export_onnx(pruned, Path(output_path))
    return {"model": spec.name, "data": data.sources, "epochs": epochs, "validation_loss": losses,
            "validation_loss_per_epoch": history, "validation_sequences": len(data.validation)}
