"""``kelly-tc cpp`` for graph files and in_skip files: what the header says (no compiler), and that it
compiles against the real RTNeural (STL and Eigen, float and double, weights from the file or compiled
in) and computes what the reference engine and a node-by-node evaluation compute, frame by frame.
The converted torch models (compared with onnxruntime too) are in test_graph_onnx.py."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.cpp.conftest import TOLERANCE, require_backend
from tests.cpp.graph_cases import graph_models, in_skip, in_skip_models, layerwise_outputs, wavenet
from toolchain import atomic, graph_json
from toolchain.cli import app
from toolchain.cpp.build import compile_program
from toolchain.cpp.header import generate_header
from toolchain.cpp.reference_pair import reference_pair, set_reference_pair
from toolchain.cpp.runner import invoke, run_program
from toolchain.cpp.static_program import StaticModel, build_static_program
from toolchain.errors import InputError
from toolchain.layers import Add, Dense, Model, Slice, f32

FRAMES = 61  # every conv history here spans at most 9 frames: it fills and rolls
REFERENCE_FRAMES = 7
#: Compiled in double precision too (the rest in float only: a graph header takes seconds to compile).
DOUBLE_MODELS = ("wavenet", "branches", "in_skip_gru_knob")
HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------ what it says
def test_a_graph_header_has_a_member_per_node_and_one_forward_line_per_connection():
    text = generate_header(wavenet(np.random.default_rng(0)), name="WaveNet", namespace="wavenet")
    forward = re.search(r"scalar_type forward\(const scalar_type\* frame\) noexcept\n    \{\n(.*?)\n    \}", text, re.S).group(1)
    lines = [line.strip() for line in forward.splitlines()]
    assert lines[:9] == [
        "detail::place<0, input_size>(input, frame);",
        "input_conv.forward(input);",
        "dilated0.forward(input_conv.outs);",
        "detail::slice<0, 5>(filter0, dilated0.outs);",  # torch.split: the two halves of the gated conv
        "detail::slice<5, 5>(gate_in0, dilated0.outs);",
        "tanh0.forward(filter0);",
        "sigmoid0.forward(gate_in0);",
        "detail::mul<5>(gate0, tanh0.outs, sigmoid0.outs);",
        "residual0.forward(gate0);"]
    assert "detail::add<5>(layer0, input_conv.outs, residual0.outs);" in lines  # the residual
    assert "detail::add<5>(skips, gate0, gate1, gate2);" in lines  # the skip sum
    assert lines[-4:] == ["detail::place<0, 5>(both, skips);", "detail::place<5, 5>(both, gate2);",  # the concat
                          "head.forward(both);", "return getOutputs()[0];"]
    assert "    RTNeural::Conv1DT<float, 5, 10, 3, 4, 1> dilated2;" in text
    assert "    RTNeural::SigmoidActivationT<float, 5> sigmoid2;" in text
    assert "return detail::data(head.outs);" in text


def test_a_layer_activation_is_its_own_member_as_in_modelt():
    text = generate_header(graph_models(np.random.default_rng(0))["residual_dense"], name="M", namespace="m")
    assert "    RTNeural::DenseT<float, 7, 13> hidden;\n    RTNeural::TanhActivationT<float, 13> hidden_tanh;" in text
    assert "hidden.forward(input);\n        hidden_tanh.forward(hidden.outs);\n        project.forward(hidden_tanh.outs);" in text


def test_graph_loaders_use_rtneurals_per_layer_loaders_and_the_embedded_form_its_setters():
    model = graph_models(np.random.default_rng(0))["tcn"]
    from_file = generate_header(model, name="M", namespace="m")
    for call in ("loadConv1D<float>(layer, 3, 2, entry.at(\"weights\"));", "loadPReLU<float>(layer", "loadBatchNorm<float>(layer",
                 "loadDense<float>(layer"):
        assert f"RTNeural::json_parser::{call}" in from_file
    assert "parseJson" not in from_file.split("#pragma once")[1]  # ModelT::parseJson cannot read a graph file
    embedded = generate_header(model, name="M", namespace="m", embed_weights=True)
    assert "auto& layer = model.conv_b1;" in embedded and "nlohmann" not in embedded.split("#pragma once")[1]


def test_an_in_skip_header_wraps_the_sequential_stack_and_adds_input_feature_0_only():
    text = generate_header(in_skip(np.random.default_rng(0), "gru", inputs=2), name="Amp", namespace="amp")
    assert "using Stack = RTNeural::ModelT<float, 2, 1,\n    RTNeural::GRULayerT<float, 2, 9>,\n    RTNeural::DenseT<float, 9, 1>>;" in text
    assert "outs[0] = stack.forward(frame) + frame[0];" in text  # the knob (frame[1]) is not added
    assert "model.stack.parseJson(document, false);" in text and "detail::declares_in_skip(document)" in text


def test_node_names_that_are_not_usable_members_are_suffixed():
    rng = np.random.default_rng(0)
    model = graph_models(rng)["residual_dense"]
    for layer, name in zip(model.layers, ("class", "forward", "outs", "Amp")):
        layer.source = name
    text = generate_header(model, name="Amp", namespace="amp")
    for member in ("class_", "forward_2", "outs_2", "Amp_2"):
        assert re.search(rf" {member};\n", text), member
    assert '{"class", "input", "", "dense", 13, "tanh"' in text  # the file's node names, as load() finds them


def test_the_cpp_command_writes_a_graph_header_from_a_graph_file(tmp_path):
    path = graph_json.write_model(wavenet(np.random.default_rng(3)), tmp_path / "pedal_net.json")
    result = CliRunner().invoke(app, ["cpp", str(path), "-o", str(tmp_path / "pedal.h")])
    assert result.exit_code == 0, result.output
    assert "pedal_net::PedalNet (a graph of 26 nodes: 13 compile-time layers and 13 merges" in result.stdout
    assert "class PedalNet\n{" in (tmp_path / "pedal.h").read_text()


def test_the_cpp_command_writes_an_in_skip_header_from_an_in_skip_file(tmp_path):
    path = graph_json.write_model(in_skip(np.random.default_rng(4), "lstm", inputs=2), tmp_path / "amp.json")
    assert json.loads(path.read_text())["in_skip"] == 1
    result = CliRunner().invoke(app, ["cpp", str(path), "-o", str(tmp_path / "amp.h"), "--embed-weights"])
    assert result.exit_code == 0, result.output
    assert "amp::Amp (2 compile-time layers plus the input skip (in_skip: output + input feature 0)" in result.stdout
    assert "auto& layer = model.stack.get<1>();" in (tmp_path / "amp.h").read_text()


# ----------------------------------------------------------------------------- compiled and run
@dataclass(frozen=True)
class GraphCase:
    name: str
    json_path: Path
    frames: np.ndarray

    def model(self) -> Model:
        return graph_json.read_model(self.json_path).validate()  # validate: an in_skip read leaves merge sizes unset


@pytest.fixture(scope="session")
def graph_cases(tmp_path_factory) -> list[GraphCase]:
    """Every hand-built graph and in_skip model written by graph_json with an engine-computed reference pair."""
    from reference_engine.model import Engine

    folder, rng, cases = tmp_path_factory.mktemp("graph_headers"), np.random.default_rng(21), []
    models = {**graph_models(np.random.default_rng(20)), **in_skip_models(np.random.default_rng(22))}
    for name, model in models.items():
        reference_input = f32(rng.standard_normal((REFERENCE_FRAMES, model.input_size)))
        engine = Engine(model.validate())
        engine.reset()
        set_reference_pair(model, reference_input, engine.run(reference_input))
        path = graph_json.write_model(model, folder / f"{name}.json")
        cases.append(GraphCase(name, path, f32(rng.standard_normal((FRAMES, model.input_size)) * 1.5)))
    return cases


def graph_static_models(cases) -> list[StaticModel]:
    entries = []
    for case in cases:
        model = case.model()
        for embed in (False, True):
            mode = "embedded" if embed else "json"
            entries.append(StaticModel(f"{case.name}/{mode}", model, case.json_path, embed_weights=embed))
            if case.name in DOUBLE_MODELS:
                entries.append(StaticModel(f"{case.name}/{mode}-double", model, case.json_path, embed_weights=embed, precision="double"))
    return entries


@pytest.fixture(scope="session")
def graph_programs(graph_cases, rtneural_src):
    built = {}

    def program(backend: str):
        if backend not in built:
            require_backend(backend, rtneural_src)
            built[backend] = build_static_program(graph_static_models(graph_cases), src=rtneural_src, backend=backend,
                                                  optimization="-O1")
        return built[backend]

    return program


@pytest.mark.cpp
@pytest.mark.parametrize("backend", ["stl", "eigen"])
def test_graph_headers_match_the_engine_and_a_node_by_node_evaluation(backend, graph_cases, graph_programs, verified):
    from reference_engine.model import load_engine

    program, failures = graph_programs(backend), []
    for case in graph_cases:
        engine = load_engine(case.json_path)
        engine.reset()
        expected = engine.run(case.frames)
        np.testing.assert_array_equal(expected, layerwise_outputs(case.model(), case.frames))  # same kernels, same order
        outputs = {key.split("/")[1]: program.run(key, case.frames) for key in program.models if key.split("/")[0] == case.name}
        for mode, output in outputs.items():
            error = float(np.max(np.abs(output - expected)))
            verified(f"graph header {mode}/{backend} vs engine", case.name, error)
            if not error <= TOLERANCE:
                failures.append(f"{case.name}/{mode} ({backend}): max |header - engine| = {error:.3g}")
        if "json-double" in outputs:  # RTNeural's own float-vs-double spread on this model
            verified(f"graph header float vs double/{backend}", case.name, float(np.max(np.abs(outputs["json"] - outputs["json-double"]))))
    assert not failures, "\n".join(failures)


@pytest.mark.cpp
def test_graph_self_test_returns_the_max_error_against_the_stored_reference_pair(graph_cases, graph_programs):
    program = graph_programs("stl")
    for case in graph_cases:
        inputs, outputs = reference_pair(case.model())
        for key in (k for k in program.models if k.split("/")[0] == case.name):
            measured = float(np.max(np.abs(program.run(key, inputs) - outputs)))
            reported = program.self_test(key)
            assert reported <= TOLERANCE, key
            assert reported == pytest.approx(measured, rel=1e-6, abs=1e-12), key


@pytest.mark.cpp
def test_a_graph_header_refuses_a_file_of_another_graph(graph_cases, graph_programs):
    program = graph_programs("stl")
    by_name = {case.name: case for case in graph_cases}
    wrong = by_name["tcn"].json_path  # same input and output sizes as the wavenet, another graph
    with pytest.raises(InputError, match="load\\(\\) failed for model 'wavenet/json'"):
        run_program(program.binary, ["--model", "wavenet/json", "--json", wrong], by_name["wavenet"].frames)
    edited = json.loads(by_name["wavenet"].json_path.read_text())
    edited["graph"]["nodes"][6]["inputs"] = ["sigmoid0", "tanh0"]  # same layers, another wiring
    changed = atomic.write_json(wrong.parent / "rewired.json", edited)
    with pytest.raises(InputError, match="load\\(\\) failed"):
        run_program(program.binary, ["--model", "wavenet/json", "--json", changed], by_name["wavenet"].frames)


@pytest.fixture(scope="session")
def plain_parsers(rtneural_src) -> Path:
    return compile_program([HERE / "plain_parsers.cpp"], src=rtneural_src, name="plain-parsers", optimization="-O1")


def plain_parse(binary: Path, path: Path) -> dict:
    return json.loads(invoke([binary, path], path).strip().splitlines()[-1])


@pytest.mark.cpp
def test_rtneurals_plain_parsers_load_nothing_from_a_graph_file(graph_cases, plain_parsers, tmp_path):
    control = graph_json.write_model(Model(1, [Dense(f32([[0.5]]), f32([0.25]))]), tmp_path / "dense_1x1.json")
    assert plain_parse(plain_parsers, control) == {"parse_json_model": True, "modelt_output": 0.75}  # the probe sees a load
    graphs = [case for case in graph_cases if graph_json.output_form(case.model()) == "graph"]
    assert len(graphs) == 4
    for case in graphs:
        assert plain_parse(plain_parsers, case.json_path) == {"parse_json_model": False, "modelt_output": 14.0}, case.name


@pytest.mark.cpp
def test_an_in_skip_file_loads_in_plain_rtneural_which_ignores_the_skip(graph_cases, dynamic_harness):
    """RTNeural's dynamic parser runs the stack of an in_skip file; the skip (input feature 0) is what it leaves out."""
    from reference_engine.model import Engine

    for case in (c for c in graph_cases if c.name.startswith("in_skip")):
        plain = run_program(dynamic_harness, ["--json", case.json_path], case.frames, file=case.json_path)
        stack = Engine(graph_json.in_skip_body(case.model()))
        stack.reset()
        np.testing.assert_allclose(plain, stack.run(case.frames), rtol=0, atol=TOLERANCE)
        with_skip = plain[:, 0] + case.frames[:, 0]
        engine = Engine(case.model())
        engine.reset()
        np.testing.assert_allclose(with_skip, engine.run(case.frames)[:, 0], rtol=0, atol=TOLERANCE)


def test_the_in_skip_form_is_the_one_the_writer_chose():
    for name, model in in_skip_models(np.random.default_rng(0)).items():
        assert graph_json.output_form(model) == "in_skip", name
        assert isinstance(model.layers[-1], Add) and isinstance(model.layers[-2], Slice)


@pytest.mark.cpp
@pytest.mark.parametrize("name", ["wavenet", "in_skip_gru_knob"])
def test_the_deploy_example_compiles_unchanged_against_graph_and_in_skip_headers(name, graph_cases, rtneural_src, tmp_path):
    """The same plugin code as for a sequential header (examples/cpp/deploy.cpp, the README's commands)."""
    import shutil
    import subprocess

    from tests.conftest import REPO

    case = next(c for c in graph_cases if c.name == name)
    shutil.copy(REPO / "examples" / "cpp" / "deploy.cpp", tmp_path / "deploy.cpp")
    result = CliRunner().invoke(app, ["cpp", str(case.json_path), "-o", str(tmp_path / "model.h"), "--name", "Model",
                                      "--namespace", "my_plugin", "--embed-weights"])
    assert result.exit_code == 0, result.output
    subprocess.run(["g++", "-std=c++17", "-O1", "-I", str(rtneural_src), "deploy.cpp", "-o", "deploy"],
                   cwd=tmp_path, check=True, capture_output=True)
    run = subprocess.run([str(tmp_path / "deploy")], capture_output=True, text=True, check=True)
    assert float(re.search(r"self_test: max abs error (\S+)", run.stdout).group(1)) <= TOLERANCE
    printed = [float(value) for value in re.findall(r"frame \d: output\[0\] = (\S+)", run.stdout)]
    frames = np.array([[0.25 * (t - i % 3) for i in range(case.model().input_size)] for t in range(4)], np.float32)
    np.testing.assert_allclose(printed, layerwise_outputs(case.model(), frames)[:, 0], rtol=0, atol=TOLERANCE)  # printed with 6 decimals


def test_node_names_from_a_file_must_be_identifiers_before_they_reach_cpp_strings():
    model = graph_models(np.random.default_rng(0))["residual_dense"]
    nodes = graph_json.graph_to_json(model)["graph"]["nodes"]
    nodes[1]["name"] = 'x"); system("rm'
    with pytest.raises(InputError, match=r"graph.nodes\[1\]/name: node name .* is not an identifier"):
        generate_header(model, name="M", namespace="m", file_layers=nodes)
