// Deploying a kelly-tc model in C++ with RTNeural's compile-time API.
//
//   kelly-tc cpp model.json -o model.h --name Model --namespace my_plugin --embed-weights
//   g++ -std=c++17 -O2 -DRTNEURAL_DEFAULT_ALIGNMENT=16 -I path/to/RTNeural-checkout deploy.cpp -o deploy
//   (-I: the folder that CONTAINS RTNeural/, the root of an RTNeural checkout)
//   (Eigen backend: add -DRTNEURAL_USE_EIGEN=1 -I path/to/eigen3)
//
// The header holds the model type (RTNeural::ModelT<...>), the weights (--embed-weights: no file or
// JSON parser at run time) and self_test(), which replays the reference input/output pair shipped in
// model.json and returns the largest absolute error.
#include "model.h"

#include <cstdio>
#include <memory>

int main()
{
    // Load once, off the audio thread. ModelT keeps its weights inline: allocate it on the heap.
    auto model = std::make_unique<my_plugin::Model>();
    my_plugin::load(*model);

    // Verify the model before using it: NaN (no reference pair) or a large error both fail here.
    const double error = my_plugin::self_test(*model);
    if(!(error < 1e-5))
    {
        std::fprintf(stderr, "model failed its self test (max abs error %g)\n", error);
        return 1;
    }
    std::printf("self_test: max abs error %.3g\n", error);

    // The audio thread: one frame per forward() call, state kept between calls (reset() restarts).
    alignas(RTNEURAL_DEFAULT_ALIGNMENT) float frame[my_plugin::input_size] = {};
    model->reset();
    for(int t = 0; t < 4; ++t)
    {
        for(int i = 0; i < my_plugin::input_size; ++i)
            frame[i] = 0.25f * (float)(t - i % 3);
        model->forward(frame);
        const float* outputs = model->getOutputs();
        std::printf("frame %d: output[0] = %.6f\n", t, outputs[0]);
    }
    return 0;
}
