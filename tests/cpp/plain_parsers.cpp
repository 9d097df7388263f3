// What RTNeural's two plain parsers make of a model file (tests/cpp/test_graph_header.py):
//
//   plain_parsers MODEL.json
//   -> {"parse_json_model": true|false, "modelt_output": Y}
//
// - parse_json_model: whether json_parser::parseJson<float> returned a model (it returns nullptr when
//   "in_shape" or "layers" is not an array, as in a kelly-tc graph file);
// - modelt_output: the output for input 1 of a ModelT<float, 1, 1, DenseT<float, 1, 1>> whose weight
//   and bias were set to 7 before ModelT::parseJson read the file: 14 means nothing was loaded. The
//   type does not matter for a graph file: parseJson returns on the same "is_array" check before it
//   looks at any layer. A plain file holding one 1->1 dense layer is the positive control.
#include <RTNeural/RTNeural.h>

#include <cstdio>
#include <fstream>
#include <iostream>

int main(int argc, char** argv)
{
    if(argc != 2)
    {
        std::cerr << "usage: plain_parsers MODEL.json" << std::endl;
        return 2;
    }
    try
    {
        std::ifstream dynamic_stream(argv[1]);
        const auto dynamic = RTNeural::json_parser::parseJson<float>(dynamic_stream, false);

        auto model = std::make_unique<RTNeural::ModelT<float, 1, 1, RTNeural::DenseT<float, 1, 1>>>();
        const float sentinel[1] = { 7.0f };
        model->get<0>().setWeights({ { 7.0f } });
        model->get<0>().setBias(sentinel);
        std::ifstream static_stream(argv[1]);
        model->parseJson(static_stream, false);
        model->reset();
        alignas(RTNEURAL_DEFAULT_ALIGNMENT) float input[1] = { 1.0f };
        const float output = model->forward(input);

        std::printf("{\"parse_json_model\": %s, \"modelt_output\": %.9g}\n", dynamic ? "true" : "false", output);
    }
    catch(const std::exception& error)
    {
        std::cerr << "plain_parsers: " << error.what() << std::endl;
        return 2;
    }
    return 0;
}
