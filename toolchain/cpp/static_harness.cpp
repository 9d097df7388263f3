// kelly-tc's harness for RTNeural's COMPILE-TIME API: one program around one or more headers that
// `kelly-tc cpp` generated (several models share one translation unit so that a test session pays
// the slow ModelT compile once). `kelly_models.inc` is generated beside the headers by
// toolchain/cpp/static_program.py: it includes each header and lists one entry per model.
//
//   static_harness --model KEY [--json MODEL.json] --input IN --output OUT   (stream frames)
//   static_harness --model KEY [--json MODEL.json] --input IN --time REPEATS (per-frame timing)
//   static_harness --model KEY [--json MODEL.json] --self-test               (the header's self_test())
//
// --json is read by headers generated without --embed-weights (their load() parses the file).
#include <RTNeural/RTNeural.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <memory>

#include "harness_io.h"

namespace kelly_harness
{
struct Entry
{
    const char* key;
    void (*run)(const Arguments&);
};

/** What every entry does once its model is loaded: self-test, stream or time. */
template <typename T, typename Model>
void run_loaded(Model& model, const Arguments& arguments, int in_size, int out_size, double (*self_test)(Model&))
{
    if(arguments.self_test)
    {
        const double error = self_test(model);
        if(std::isnan(error))
            std::printf("{\"self_test\": null}\n");
        else
            std::printf("{\"self_test\": %.17g}\n", error);
    }
    else
        run_or_time<T>(model, arguments, in_size, out_size);
}
} // namespace kelly_harness

#include "kelly_models.inc"

int main(int argc, char** argv)
{
    try
    {
        const auto arguments = kelly_harness::parse_arguments(argc, argv);
        for(const auto& entry : kelly_entries)
        {
            if(arguments.model == entry.key)
            {
                entry.run(arguments);
                return 0;
            }
        }
        throw std::runtime_error("no model '" + arguments.model + "' in this program");
    }
    catch(const std::exception& error)
    {
        std::cerr << "static_harness: " << error.what() << std::endl;
        return 2;
    }
}
