// kelly-tc's conformance harness for RTNeural's DYNAMIC API: load an RTNeural JSON with RTNeural's
// own parser (json_parser::parseJson<float>), reset, stream the input frames one forward() call
// each with state kept, and write the outputs (or time each call, or each block of N calls, with --time).
//
//   harness --json MODEL.json --input IN.f32|IN.csv --output OUT.f64|OUT.csv
//   harness --json MODEL.json --input IN.f32 --time REPEATS [--block N]  (prints p50/p99/... ns per block of N frames)
//
// Exit codes: 0 ok, 2 the model or input could not be read (message on stderr).
// Built by toolchain/cpp/build.py against a user's RTNeural checkout (STL or Eigen backend).
#include <RTNeural/RTNeural.h>

#include <fstream>
#include <iostream>

#include "harness_io.h"

int main(int argc, char** argv)
{
    try
    {
        const auto arguments = kelly_harness::parse_arguments(argc, argv);
        std::ifstream json(arguments.json);
        if(!json)
            throw std::runtime_error("cannot open " + arguments.json);
        auto model = RTNeural::json_parser::parseJson<float>(json, false);
        if(!model)
            throw std::runtime_error("RTNeural's parser returned no model for " + arguments.json);
        kelly_harness::run_or_time<float>(*model, arguments, model->getInSize(), model->getOutSize());
    }
    catch(const std::exception& error)
    {
        std::cerr << "harness: " << error.what() << std::endl;
        return 2;
    }
    return 0;
}
