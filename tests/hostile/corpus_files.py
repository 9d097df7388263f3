"""Hostile RTNeural JSON, frame, calibration, config and checkpoint files: one builder per case.

Each builder takes a folder and returns the path of the bad file it wrote there. The JSON cases start
from one small valid model (:func:`valid_document`) and break one thing, so each case shows one
problem. ``CASES`` pairs each with the WHERE part and a regular expression of the reason.
"""
from __future__ import annotations

import copy
import io
import json
import os
from pathlib import Path

import numpy as np

from toolchain.rtneural_json import MAX_JSON_BYTES

KNOWN_TYPES = r"\['activation', 'batchnorm', 'batchnorm2d', 'conv1d', 'conv2d', 'dense', 'gru', 'lstm', 'prelu'\]"


def valid_document() -> dict:
    """dense 3->4 tanh, lstm 4->5, dense 5->2: small, odd sizes, every value finite."""
    rng = np.random.default_rng(7)

    def values(*shape):
        return np.round(rng.standard_normal(shape) * 0.5, 4).tolist()

    return {"in_shape": [None, None, 3], "layers": [
        {"type": "dense", "activation": "tanh", "shape": [None, None, 4], "weights": [values(3, 4), values(4)]},
        {"type": "lstm", "activation": "", "shape": [None, None, 5], "weights": [values(4, 20), values(5, 20), values(20)]},
        {"type": "dense", "activation": "", "shape": [None, None, 2], "weights": [values(5, 2), values(2)]},
    ]}


def _write_document(folder: Path, document, name: str = "model.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(document))
    return path


def _broken(change):
    """A builder writing the valid document after ``change(document)``."""
    def build(folder: Path) -> Path:
        document = copy.deepcopy(valid_document())
        change(document)
        return _write_document(folder, document)
    build.__doc__ = change.__doc__
    return build


def _text(content: str | bytes):
    def build(folder: Path) -> Path:
        path = folder / "model.json"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path
    return build


def json_too_big(folder: Path) -> Path:
    """A sparse file one byte above the default size limit: refused from its size, never read."""
    path = folder / "model.json"
    with open(path, "wb") as handle:
        handle.truncate(MAX_JSON_BYTES + 1)
    return path


def json_directory(folder: Path) -> Path:
    path = folder / "model.json"
    path.mkdir()
    return path


def json_conv1d_history_bomb(folder: Path) -> Path:
    """A depthwise conv1d over 16384 channels, kernel 2, dilation 65536: 200 KB of JSON weights, but a
    streaming conv1d keeps (K-1)*dilation+1 = 65537 past frames of every channel (4 GiB of state)."""
    channels = 16384
    document = {"in_shape": [None, None, channels], "layers": [
        {"type": "conv1d", "activation": "", "shape": [None, None, channels], "kernel_size": [2], "dilation": [65536],
         "groups": channels, "weights": [[[[0.5] * channels]] * 2, [0.0] * channels]}]}
    return _write_document(folder, document)


def _set(path_keys, value):
    def change(document):
        target = document
        for key in path_keys[:-1]:
            target = target[key]
        target[path_keys[-1]] = value
    return change


def _delete(path_keys):
    def change(document):
        target = document
        for key in path_keys[:-1]:
            target = target[key]
        del target[path_keys[-1]]
    return change


def _lstm_recurrent_kernel_too_narrow(document):
    document["layers"][1]["weights"][1] = [row[:16] for row in document["layers"][1]["weights"][1]]


def _second_dense_takes_six(document):
    document["layers"][2]["weights"][0].append([0.1, 0.2])


#: name -> (builder, WHERE, reason regex).
JSON_CASES = {
    "json_missing_file": (lambda folder: folder / "absent.json", None, r"no such file"),
    "json_directory": (json_directory, None, r"is a directory, not a regular file"),
    "json_fifo": (lambda folder: fifo(folder / "model.json"), None, r"is a FIFO \(named pipe\), not a regular file"),
    "json_link_to_dev_zero": (lambda folder: link(folder / "model.json", "/dev/zero"), None, r"is a character device, not a regular file"),
    "json_empty_file": (_text(""), None, r"not a readable JSON file: Expecting value: line 1 column 1 \(char 0\)"),
    "json_not_json": (_text("in_shape = 3; layers = []\n"), None, r"not a readable JSON file: Expecting value: line 1 column 1 \(char 0\)"),
    "json_truncated": (_text(json.dumps(valid_document())[:200]), None, r"not a readable JSON file: .*"),
    "json_not_utf8": (_text(b'{"in_shape": "\xff\xfe"}'), None, r"not a readable JSON file: 'utf-8' codec can't decode byte 0xff .*"),
    "json_nan_literal": (_text(json.dumps(valid_document()).replace("0.", "NaN, 0.", 1)), None,
                         r"not a readable JSON file: NaN is not valid JSON \(RTNeural's parser rejects it\)"),
    "json_infinity_literal": (_text(json.dumps(valid_document()).replace("0.", "-Infinity, 0.", 1)), None,
                              r"not a readable JSON file: -Infinity is not valid JSON \(RTNeural's parser rejects it\)"),
    "json_deep_nesting": (_text("[" * 200_000 + "]" * 200_000), None, r"not a readable JSON file: maximum recursion depth exceeded.*"),
    "json_too_big": (json_too_big, None, rf"file is {MAX_JSON_BYTES + 1} bytes, above the {MAX_JSON_BYTES}-byte limit \(KELLY_TC_MAX_JSON_BYTES\)"),
    "json_top_level_array": (_text("[]"), None, r"the top level must be an object, got list"),
    "json_in_shape_string": (_broken(_set(["in_shape"], "3")), "in_shape", r"expected an array like \[null, null, N\], got '3'"),
    "json_in_shape_boolean": (_broken(_set(["in_shape"], [None, None, True])), "in_shape", r"the last element must be a positive integer, got True"),
    "json_missing_layers": (_broken(_delete(["layers"])), "layers", r"missing, empty or not an array"),
    "json_layers_object": (_broken(_set(["layers"], {"0": {}})), "layers", r"missing, empty or not an array"),
    "json_layer_not_object": (_broken(_set(["layers", 1], "lstm")), "layers[1]", r"expected an object, got str"),
    "json_unknown_layer_type": (_broken(_set(["layers", 1, "type"], "attention")), "layers[1]/type",
                                rf"unknown layer type 'attention' \(RTNeural would silently skip it\); known: {KNOWN_TYPES}"),
    "json_unknown_activation": (_broken(_set(["layers", 0, "activation"], "swish")), "layers[0] (dense)/activation",
                                r"activation 'swish' is not one of \('', 'tanh', 'relu', 'sigmoid', 'softmax', 'elu'\) \(RTNeural crashes on it\)"),
    "json_missing_weights": (_broken(_delete(["layers", 1, "weights"])), "layers[1] (lstm)/weights", r"missing or not an array"),
    "json_missing_shape": (_broken(_delete(["layers", 2, "shape"])), "layers[2] (dense)/shape",
                           r"expected an array like \[null, null, N\], got None"),
    "json_weights_wrong_count": (_broken(_set(["layers", 1, "weights"], [[[0.0]], [[0.0]]])), "layers[1] (lstm)/weights",
                                 r"expected 3 weight arrays, got 2"),
    "json_weight_is_string": (_broken(_set(["layers", 0, "weights", 1], "0.5 0.5 0.5 0.5")), "layers[0] (dense)/weights[1]",
                              r"expected a 1-D array of numbers, got a 0-D array of strings"),
    "json_weight_ragged": (_broken(lambda d: d["layers"][0]["weights"][0][1].pop()), "layers[0] (dense)/weights[0]",
                           r"not a rectangular array of numbers \(.*\)"),
    "json_weight_wrong_nesting": (_broken(lambda d: d["layers"][0]["weights"].__setitem__(0, [d["layers"][0]["weights"][0]])),
                                  "layers[0] (dense)/weights[0]", r"expected a 2-D array of numbers, got a 3-D array of numbers"),
    "json_weight_wrong_shape": (_broken(_lstm_recurrent_kernel_too_narrow), r"layers[1] (lstm)/weight_hh",
                                r"shape \[16, 5\] does not match the expected \[20, 5\]"),
    "json_huge_number": (_broken(_set(["layers", 0, "weights", 1, 2], 1e39)), "layers[0] (dense)/weights[1]",
                         r"contains NaN or Inf \(or a value outside float32 range\)"),
    "json_huge_integer": (_broken(_set(["layers", 0, "weights", 1, 2], 10**400)), "layers[0] (dense)/weights[1]",
                          r"expected a 1-D array of numbers, got a 1-D array of mixed or ragged values"),
    "json_sizes_do_not_chain": (_broken(_second_dense_takes_six), "layers[2] (dense)",
                                r"weights take 6 inputs but the previous layer gives 5"),
    "json_shape_contradicts_weights": (_broken(_set(["layers", 0, "shape", 2], 7)), "layers[0] (dense)/shape",
                                       r"weights give 4 outputs but shape declares 7"),
    "json_absurd_size": (_text(json.dumps({"in_shape": [None, None, 10**12], "layers": [
        {"type": "activation", "activation": "tanh", "shape": [None, None, 10**12], "weights": []}]})),
        "in_shape", r"size 1000000000000 outside 1\.\.65536"),
    "json_conv1d_history_bomb": (json_conv1d_history_bomb, "layers[0] (conv1d)",
                                 r"a streaming conv1d keeps \(K-1\)\*dilation\+1 = 65537 past frames of 16384 channels: 1073758208 "
                                 r"values of state, above the 16777216 limit"),
}


# ----------------------------------------------------------------------------------------- frames
def _npy(array_factory, name: str = "frames.npy"):
    def build(folder: Path) -> Path:
        path = folder / name
        np.save(path, array_factory(), allow_pickle=True)
        return path
    return build


def _raw(content: bytes, name: str = "frames.npy"):
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content)
        return path
    return build


def _truncated_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((50, 3), np.float32))
    return buffer.getvalue()[:300]


def fifo(path: Path) -> Path:
    """A named pipe nobody writes to: a reader that opens it blocks forever (issue 17, point 3)."""
    os.mkfifo(path)
    return path


def link(path: Path, target: str) -> Path:
    """A symbolic link to ``target`` (``/dev/zero``: a reader that follows it reads until memory runs out)."""
    os.symlink(target, path)
    return path


def npy_header_bomb() -> bytes:
    """128 bytes whose header declares a (10**10, 3) float32 array: 112 GiB if numpy were let allocate it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": (10**10, 3)})
    return buffer.getvalue() + b"\0" * 16


def _npz_named_npy(folder: Path) -> Path:
    path = folder / "frames.npy"
    with open(path, "wb") as handle:
        np.savez(handle, a=np.zeros((4, 3), np.float32), b=np.zeros((4, 3), np.float32))
    return path


def _npz_bomb(folder: Path) -> Path:
    import zipfile

    path = folder / "calibration.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", npy_header_bomb())
    return path


def _both(reason: str) -> dict:
    """The same reason from ``run --input`` and ``check --input``: both read frames through one reader."""
    return {"run": reason, "check": reason}


#: ``validate`` judges each file itself (toolchain/kelly/validate.py) and words these two differently.
def valid_graph_document() -> dict:
    """The valid document's layers as a kelly-tc graph file, plus a residual add of the lstm's output."""
    dense, lstm, head = valid_document()["layers"]
    return {"format": "kelly-tc-graph", "version": 1, "in_shape": "graph file", "layers": "graph file",
            "graph": {"input": {"name": "input", "size": 3}, "output": "head", "nodes": [
                {"name": "dense", "inputs": ["input"], "layer": dense},
                {"name": "lstm", "inputs": ["dense"], "layer": lstm},
                {"name": "res", "inputs": ["lstm", "lstm"], "op": "add"},
                {"name": "head", "inputs": ["res"], "layer": head}]}}


def _broken_graph(change):
    def build(folder: Path) -> Path:
        document = valid_graph_document()
        change(document)
        return _write_document(folder, document)
    return build


#: Graph files (docs/GRAPH_FORMAT.md) and in_skip files, read by the commands that run any model file.
GRAPH_JSON_CASES = {
    "graph_unknown_version": (_broken_graph(_set(["version"], 7)), "version", r"version 7 is not supported \(this kelly-tc reads version 1\)"),
    "graph_dangling_input": (_broken_graph(_set(["graph", "nodes", 2, "inputs"], ["lstm", "ghost"])), "graph.nodes[2] (res)/inputs",
                             r"reads 'ghost': dangling"),
    "graph_cycle": (_broken_graph(_set(["graph", "nodes", 1, "inputs"], ["head"])), "graph.nodes[1] (lstm)/inputs",
                    r"reads 'head': a cycle or forward reference \(nodes must be in topological order\)"),
    "graph_dead_branch": (_broken_graph(_set(["graph", "nodes", 3, "inputs"], ["lstm"])), "graph.nodes[2] (res)",
                          r"is never read \(a dead branch\); every value but the output must feed a node"),
    "graph_size_mismatch": (_broken_graph(_set(["graph", "nodes", 2, "inputs"], ["lstm", "dense"])), "graph.nodes[2] (res)/inputs",
                            r"inputs have different sizes \[5, 4\]; an elementwise add needs equal sizes"),
    "json_in_skip_not_0_or_1": (_broken(_set(["in_skip"], 2)), "in_skip",
                                r"expected 0 or 1 \(AIDA-X adds input feature 0 to the output\), got 2"),
    "json_in_skip_on_two_outputs": (_broken(_set(["in_skip"], 1)), "in_skip",
                                    r"in_skip adds input feature 0 to a 1-feature output, but the model gives 2"),
}

VALIDATE_REASONS = {"json_missing_file": r"missing \(export writes it: kelly-tc export\)", "json_directory": r"not a regular file",
                    "json_fifo": r"not a regular file", "json_link_to_dev_zero": r"not a regular file"}


#: Frame files for ``run --input`` and ``check --input`` (the good model takes 3 features). Reasons
#: differ by command where the readers word them differently: {command: reason}; WHERE is None.
FRAME_CASES = {
    "frames_missing_file": (lambda folder: folder / "absent.npy", {"run": r"no such file", "check": r"no such file"}),
    "frames_not_npy": (_raw(b"\x93NUMPY garbage that is not a header" * 4), _both(r"not a readable \.npy array: .*")),
    "frames_truncated_npy": (_raw(_truncated_npy()),
                             _both(r"truncated: header declares shape \[50, 3\] of float32 \(600 bytes\) but the file holds 172")),
    "frames_pickled_objects": (_npy(lambda: np.array([{"a": 1}, None], dtype=object)), _both(r"expected numbers, got dtype object")),
    "frames_header_bomb": (_raw(npy_header_bomb()),
                           _both(r"header declares shape \[10000000000, 3\] of float32 \(120000000000 bytes\), above the "
                                 r"\d+-byte limit \(KELLY_TC_MAX_ARRAY_BYTES\)")),
    "frames_npz_named_npy": (_npz_named_npy, _both(r"is an \.npz archive of 2 arrays; frames need one \[frames, features\] array")),
    "frames_fifo": (lambda folder: fifo(folder / "frames.npy"), _both(r"is a FIFO \(named pipe\), not a regular file")),
    "frames_link_to_dev_zero": (lambda folder: link(folder / "frames.npy", "/dev/zero"), _both(r"is a character device, not a regular file")),
    "frames_csv_empty": (_raw(b"", name="frames.csv"), _both(r"empty CSV file: no frames")),
    "frames_wrong_width": (_npy(lambda: np.zeros((10, 5), np.float32)),
                           _both(r"expected frames of shape \[frames, 3\], got \[10, 5\]")),
    "frames_three_axes": (_npy(lambda: np.zeros((2, 10, 3), np.float32)),
                          _both(r"expected frames of shape \[frames, 3\], got \[2, 10, 3\]")),
    "frames_strings": (_npy(lambda: np.array([["a", "b", "c"]] * 4)),
                       _both(r"expected numbers, got dtype <U1")),
    "frames_complex": (_npy(lambda: np.ones((4, 3), np.complex64)),
                       _both(r"expected numbers, got dtype complex64")),
    "frames_nan": (_npy(lambda: np.full((6, 3), np.nan, np.float32)),  # run: see test_engine_input
                   {"check": r"must hold finite float32 numbers \(NaN, Inf or a value beyond \+-3\.4e38 found\)"}),
    "frames_float64_beyond_float32": (_npy(lambda: np.full((6, 3), 1e39, np.float64)),  # finite in float64, inf in float32
                                      {"check": r"must hold finite float32 numbers \(NaN, Inf or a value beyond \+-3\.4e38 found\)"}),
    "frames_wrong_suffix": (_raw(b"0.1,0.2,0.3\n", name="frames.txt"),
                            _both(r"unsupported frame file type '\.txt'; use \.npy or \.csv")),
    "frames_csv_text": (_raw(b"0.1,0.2,0.3\n0.4,zero,0.6\n", name="frames.csv"),
                        _both(r"not a readable CSV frame file: could not convert string 'zero' to float64 at row 1, column 2\.")),
}

#: Calibration files for ``quantize``/``prune --calibration`` (the good ONNX input is [batch, time, 3]).
CALIBRATION_CASES = {
    "calibration_missing_file": (lambda folder: folder / "absent.npy", r"no such file"),
    "calibration_pickled_objects": (_npy(lambda: np.array([{"a": 1}, None], dtype=object)), r"expected numbers, got dtype object"),
    "calibration_not_npy": (_raw(b"not numpy at all"), r"not a \.npy or \.npz file \(no NumPy or zip magic bytes\)"),
    "calibration_npz_header_bomb": (_npz_bomb, r"array 'x': header declares shape \[10000000000, 3\] of float32 \(120000000000 bytes\), "
                                               r"above the \d+-byte limit \(KELLY_TC_MAX_ARRAY_BYTES\)"),
    "calibration_fifo": (lambda folder: fifo(folder / "frames.npy"), r"is a FIFO \(named pipe\), not a regular file"),
    "calibration_nan": (_npy(lambda: np.full((2, 1, 8, 3), np.nan, np.float32)), r"'x' contains NaN or Inf"),
    "calibration_strings": (_npy(lambda: np.array([["a", "b", "c"]] * 4)), r"expected numbers, got dtype <U1"),
    "calibration_wrong_shape": (_npy(lambda: np.zeros((4, 5), np.float32)),
                                r"'x' has shape \[4, 5\]; the model input has 3 dims .*"),
}


# ----------------------------------------------------------------------------------------- configs
def _config(content: str | bytes):
    def build(folder: Path) -> Path:
        path = folder / "config.json"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path
    return build


def config_directory(folder: Path) -> Path:
    path = folder / "config.json"
    path.mkdir()
    return path


#: ``train --config`` files: name -> (builder, WHERE, reason regex).
CONFIG_CASES = {
    "config_missing_file": (lambda folder: folder / "absent.json", None, r"no such file"),
    "config_directory": (config_directory, None, r"is a directory, not a regular file"),
    "config_fifo": (lambda folder: fifo(folder / "config.json"), None, r"is a FIFO \(named pipe\), not a regular file"),
    "config_link_to_dev_zero": (lambda folder: link(folder / "config.json", "/dev/zero"), None, r"is a character device, not a regular file"),
    "config_not_json": (_config("epochs: 3\n"), None, r"not a readable JSON file: Expecting value: line 1 column 1 \(char 0\)"),
    "config_not_utf8": (_config(b'{"source": "\xff"}'), None, r"not UTF-8 text \(byte 12\)"),
    "config_top_level_array": (_config('["epochs", 3]'), None, r"the top level must be an object, got list"),
    "config_unknown_key": (_config('{"epochz": 3}'), "epochz", r"unknown setting; known: models, .*"),
    "config_wrong_type": (_config('{"epochs": "3"}'), "epochs", r"must be int, got str '3'"),
    "config_boolean_for_int": (_config('{"batch_size": true}'), "batch_size", r"must be int, got bool True"),
    "config_nan_learning_rate": (_config('{"learning_rate": NaN}'), None,
                                 r"not a readable JSON file: NaN is not valid JSON"),
    "config_infinite_seconds": (_config('{"max_seconds": Infinity}'), None,
                                r"not a readable JSON file: Infinity is not valid JSON"),
    "config_negative_epochs": (_config('{"epochs": -1}'), "epochs", r"must be between 1 and 100000, got -1"),
    "config_huge_seq_len": (_config('{"seq_len": 100000000}'), "seq_len", r"must be between 1 and 65536, got 100000000"),
    "config_negative_seed": (_config('{"seed": -1}'), "seed", r"must be between 0 and 4294967295, got -1"),
    "config_unknown_model": (_config('{"models": ["Nope"]}'), "models", r"unknown Kelly model .*"),
    "config_bad_source": (_config('{"source": "internet"}'), "source", r"must be one of auto, datasets, corpus, synthetic, not 'internet'"),
    "config_deep_nesting": (_config('{"models": ' + "[" * 100_000 + "]" * 100_000 + "}"), None,
                            r"not a readable JSON file: maximum recursion depth exceeded.*"),
}


# ----------------------------------------------------------------------------------------- audio
def _wav(samples_factory, subtype: str = "FLOAT", cut: int | None = None):
    def build(folder: Path) -> Path:
        import soundfile

        path = folder / "recording.wav"
        soundfile.write(path, samples_factory(), 22050, subtype=subtype)
        if cut is not None:
            path.write_bytes(path.read_bytes()[:cut])
        return path
    return build


def audio_directory(folder: Path) -> Path:
    path = folder / "recording.wav"
    path.mkdir()
    return path


def _noise(seconds: float = 1.0):
    return lambda: np.random.default_rng(3).uniform(-0.1, 0.1, int(22050 * seconds)).astype(np.float32)


#: ``pipeline --audio`` files: name -> (builder, reason regex; no WHERE part).
AUDIO_CASES = {
    "audio_missing_file": (lambda folder: folder / "absent.wav", r"no such audio file"),
    "audio_directory": (audio_directory, r"not a regular file"),
    "audio_empty_file": (_raw(b"", name="recording.wav"), r"unreadable audio \(.*\)"),
    "audio_text_file": (_raw(b"RIFF? no, just text\n" * 3, name="recording.wav"), r"unreadable audio \(.*\)"),
    "audio_random_mp3": (_raw(np.random.default_rng(5).bytes(3000), name="recording.mp3"), r"unreadable audio \(.*\)"),
    "audio_truncated_wav": (_wav(_noise(), cut=60), r"unreadable audio \(NoBackendError: no decoder recognises the content: not audio, cut short, or a format that needs ffmpeg\)"),
    "audio_nan_samples": (_wav(lambda: np.full(22050, np.nan, np.float32)), r"unreadable audio \(ParameterError: Audio buffer is not finite everywhere\)"),
    "audio_too_short": (_wav(lambda: np.zeros(100, np.float32)), r"too short: 0.005 s, the pipeline needs at least 1 s"),
}
