// kelly-tc's harness for RTNeural's COMPILE-TIME API: one program around the headers that
// `kelly-tc cpp` generated for several models (a ModelT type takes seconds to compile, so a test
// session builds one program per model set). toolchain/cpp/static_program.py generates, beside the
// headers, the parts `kelly_models_N.cpp` (each includes some headers and defines their entries; the
// parts compile in parallel) and `kelly_models.inc`, which lists the parts' entry tables.
//
//   static_harness --model KEY [--json MODEL.json] --input IN --output OUT   (stream frames)
//   static_harness --model KEY [--json MODEL.json] --input IN --time REPEATS [--block N] (per-block timing)
//   static_harness --model KEY [--json MODEL.json] --self-test               (the header's self_test())
//
// --json is read by headers generated without --embed-weights (their load() parses the file).
#include <iostream>
#include <stdexcept>
#include <string>

#include "static_harness.h"

#include "kelly_models.inc"

int main(int argc, char** argv)
{
    try
    {
        const auto arguments = kelly_harness::parse_arguments(argc, argv);
        for(const auto& list : kelly_entry_lists)
        {
            for(int i = 0; i < list.count; ++i)
            {
                if(arguments.model == list.entries[i].key)
                {
                    list.entries[i].run(arguments);
                    return 0;
                }
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
