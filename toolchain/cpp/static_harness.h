// What the parts of kelly-tc's compile-time harness share (see static_harness.cpp): the entry of one
// model and what an entry does once its model is loaded.
#pragma once

#include <cmath>
#include <cstdio>

#include "harness_io.h"

namespace kelly_harness
{
struct Entry
{
    const char* key;
    void (*run)(const Arguments&);
};

/** A generated part's entries (each part is its own translation unit, compiled in parallel). */
struct EntryList
{
    const Entry* entries;
    int count;
};

/** Self-test, stream or time a loaded model, as the arguments ask. */
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
