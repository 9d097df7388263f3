// The audio callback of a plugin around the header `kelly-tc cpp` wrote for the WaveNet pedal (README,
// "Worked example"):
//
//   kelly-tc cpp pedal.json -o pedal.h --name Pedal --namespace pedal --embed-weights
//   g++ -std=c++17 -O2 -I . -I path/to/RTNeural examples/wavenet/plugin.cpp -o plugin
//
// pedal::Pedal is a class of RTNeural compile-time layers wired as the model's graph (residual adds,
// gates, skip concatenation); its API is the one of a sequential kelly-tc header (reset, forward,
// getOutputs, load, self_test), so this code does not change when the model does.
#include "pedal.h"

#include <cmath>
#include <cstdio>
#include <memory>

class PedalProcessor
{
public:
    /** Off the audio thread: allocate and load once (the layers keep their weights inline). */
    bool prepare()
    {
        model = std::make_unique<pedal::Pedal>();
        return pedal::load(*model);
    }

    /** The audio thread: one sample per forward() call, the layers' state (conv history) kept. */
    void process(const float* input, float* output, int samples) noexcept
    {
        for(int n = 0; n < samples; ++n)
        {
            frame[0] = input[n];
            output[n] = model->forward(frame);
        }
    }

    void reset() noexcept
    {
        model->reset();
    }

private:
    std::unique_ptr<pedal::Pedal> model;
    alignas(RTNEURAL_DEFAULT_ALIGNMENT) float frame[pedal::input_size] = {};
};

int main()
{
    PedalProcessor processor;
    if(!processor.prepare())
        return 1;
    processor.reset();

    // Three blocks of 64 samples of a decaying two-tone test signal, printed with the pedal's output.
    constexpr int block = 64;
    float input[block], output[block];
    for(int start = 0; start < 3 * block; start += block)
    {
        for(int n = 0; n < block; ++n)
        {
            const float t = (float)(start + n);
            input[n] = std::exp(-t / 120.0f) * (0.6f * std::sin(0.07f * t) + 0.3f * std::sin(0.31f * t));
        }
        processor.process(input, output, block);
        for(int n = 0; n < block; ++n)
            std::printf("%d %.9g %.9g\n", start + n, input[n], output[n]);
    }
    return 0;
}
