// Frame I/O and the per-frame timing loop shared by kelly-tc's two C++ harnesses
// (harness.cpp: RTNeural's dynamic API; static_harness.cpp: the compile-time ModelT API).
//
// File formats (chosen so Python writes and reads them with one numpy call):
//   input  - raw little-endian float32, frames * in_size values, or a .csv with one frame per line
//            (RTNeural's own test-vector layout);
//   output - raw float64, frames * out_size values (float64 so a double-precision model loses
//            nothing; float outputs convert exactly), or a .csv written with 17 significant digits.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace kelly_harness
{

inline bool ends_with(const std::string& text, const std::string& suffix)
{
    return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/** All input values, frame after frame; throws if the count is not a multiple of in_size. */
inline std::vector<float> read_frames(const std::string& path, int in_size)
{
    std::vector<float> values;
    if(ends_with(path, ".csv"))
    {
        std::ifstream file(path);
        if(!file)
            throw std::runtime_error("cannot open input " + path);
        std::string line;
        while(std::getline(file, line))
        {
            std::replace(line.begin(), line.end(), ',', ' ');
            std::istringstream fields(line);
            double value;
            while(fields >> value)
                values.push_back((float)value);
        }
    }
    else
    {
        std::ifstream file(path, std::ios::binary);
        if(!file)
            throw std::runtime_error("cannot open input " + path);
        std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
        if(bytes.size() % sizeof(float) != 0)
            throw std::runtime_error("input " + path + " is not a whole number of float32 values");
        values.resize(bytes.size() / sizeof(float));
        std::memcpy(values.data(), bytes.data(), bytes.size());
    }
    if(values.size() % (size_t)in_size != 0)
        throw std::runtime_error("input holds " + std::to_string(values.size()) + " values, not a multiple of the model's "
                                 + std::to_string(in_size) + " inputs");
    return values;
}

inline void write_outputs(const std::string& path, const std::vector<double>& values, int out_size)
{
    if(ends_with(path, ".csv"))
    {
        std::ofstream file(path);
        char text[64];
        for(size_t i = 0; i < values.size(); ++i)
        {
            std::snprintf(text, sizeof(text), "%.17g", values[i]);
            file << text << (((i + 1) % (size_t)out_size == 0) ? "\n" : ",");
        }
        if(!file)
            throw std::runtime_error("cannot write " + path);
        return;
    }
    std::ofstream file(path, std::ios::binary);
    file.write(reinterpret_cast<const char*>(values.data()), (std::streamsize)(values.size() * sizeof(double)));
    if(!file)
        throw std::runtime_error("cannot write " + path);
}

/** One frame in 64-byte aligned storage: RTNeural's models read their input pointer as aligned
 *  (Eigen maps it with RTNeuralEigenAlignment), so a frame must never be passed from an arbitrary
 *  offset inside a larger buffer. */
template <typename T>
class AlignedFrame
{
public:
    explicit AlignedFrame(int size)
        : size_(size)
    {
        const size_t bytes = ((size_t)size * sizeof(T) + 63) / 64 * 64;
        data_.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
        if(!data_)
            throw std::bad_alloc();
        std::fill(data_.get(), data_.get() + size, (T)0);
    }

    T* load(const float* frame)
    {
        std::copy(frame, frame + size_, data_.get());
        return data_.get();
    }

    T* data() const { return data_.get(); }

private:
    struct Free
    {
        void operator()(T* pointer) const { std::free(pointer); }
    };
    int size_;
    std::unique_ptr<T, Free> data_;
};

/** Streams every frame through `model` (reset first, state carried between frames; reset again
 *  every `reset_every` frames when it is positive: a model exported with a fixed sequence length is
 *  compared chunk by chunk, each chunk from zero state). */
template <typename T, typename Model>
std::vector<double> stream(Model& model, const std::vector<float>& frames, int in_size, int out_size, int reset_every = 0)
{
    const size_t count = frames.size() / (size_t)in_size;
    std::vector<double> outputs;
    outputs.reserve(count * (size_t)out_size);
    AlignedFrame<T> frame(in_size);
    model.reset();
    for(size_t t = 0; t < count; ++t)
    {
        if(reset_every > 0 && t > 0 && t % (size_t)reset_every == 0)
            model.reset();
        model.forward(frame.load(frames.data() + t * (size_t)in_size));
        const T* out = model.getOutputs();
        outputs.insert(outputs.end(), out, out + out_size);
    }
    return outputs;
}

/** Times blocks of `block` forward() calls (a plugin's audio callback: one block = `block` frames, one
 *  call per frame) with steady_clock over `repeats` passes of the frames (model reset before each pass).
 *  The first pass right after loading is timed on its own (`first_ns`: its first blocks, cold caches and
 *  branch predictors, as a plugin's first callbacks see them) and left out of the steady-state figures.
 *  Prints one JSON object: blocks timed, frames per block, and p50/p99/p99.9/max/mean/min nanoseconds
 *  per block (per frame when block is 1). All frames are loaded into aligned storage first so the timed
 *  code is the forward() calls alone. */
template <typename T, typename Model>
void time_frames(Model& model, const std::vector<float>& frames, int in_size, int out_size, int repeats, int block = 1)
{
    const size_t count = frames.size() / (size_t)in_size;
    const size_t per_block = (size_t)std::max(block, 1);
    const size_t blocks = count / per_block;
    if(blocks == 0)
        throw std::runtime_error("fewer frames than one block");
    std::vector<AlignedFrame<T>> inputs;
    inputs.reserve(count);
    for(size_t t = 0; t < count; ++t)
    {
        inputs.emplace_back(in_size);
        inputs.back().load(frames.data() + t * (size_t)in_size);
    }

    volatile T sink = 0; // keeps the optimiser from dropping the calls
    auto time_pass = [&](std::vector<double>& nanoseconds)
    {
        model.reset();
        for(size_t b = 0; b < blocks; ++b)
        {
            const auto start = std::chrono::steady_clock::now();
            for(size_t t = b * per_block; t < (b + 1) * per_block; ++t)
                model.forward(inputs[t].data());
            const auto stop = std::chrono::steady_clock::now();
            sink = sink + model.getOutputs()[out_size - 1];
            nanoseconds.push_back((double)std::chrono::duration_cast<std::chrono::nanoseconds>(stop - start).count());
        }
    };
    std::vector<double> first;
    first.reserve(blocks);
    time_pass(first); // the first pass after loading: reported apart
    std::vector<double> nanoseconds;
    nanoseconds.reserve(blocks * (size_t)repeats);
    for(int pass = 0; pass < repeats; ++pass)
        time_pass(nanoseconds);
    std::vector<double> sorted = nanoseconds;
    std::sort(sorted.begin(), sorted.end());
    // Nearest rank on the sorted samples, as reference_engine.benchmark.latency_statistics computes it.
    auto quantile = [&](double q)
    {
        const size_t rank = (size_t)std::ceil(q * (double)sorted.size() - 1e-9); // 0.99 * 1000 is rank 990
        return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
    };
    double total = 0;
    for(double value : sorted)
        total += value;
    std::printf("{\"frames\": %zu, \"block\": %zu, \"p50_ns\": %.1f, \"p99_ns\": %.1f, \"p999_ns\": %.1f, "
                "\"max_ns\": %.1f, \"mean_ns\": %.1f, \"min_ns\": %.1f, \"first_ns\": [",
        sorted.size(), per_block, quantile(0.5), quantile(0.99), quantile(0.999), sorted.back(),
        total / (double)sorted.size(), sorted.front());
    for(size_t i = 0; i < std::min<size_t>(first.size(), 8); ++i)
        std::printf("%s%.1f", i ? ", " : "", first[i]);
    std::printf("]}\n");
}

/** Command line shared by both harnesses:
 *    PROGRAM [--model KEY] [--json MODEL.json] --input IN [--output OUT] [--reset-every N]
 *            [--time REPEATS [--block N]] [--self-test] */
struct Arguments
{
    std::string model, json, input, output;
    int repeats = 0, reset_every = 0, block = 1;
    bool self_test = false;
};

inline Arguments parse_arguments(int argc, char** argv)
{
    Arguments arguments;
    for(int i = 1; i < argc; ++i)
    {
        const std::string flag = argv[i];
        auto value = [&]() -> std::string
        {
            if(i + 1 >= argc)
                throw std::runtime_error(flag + " needs a value");
            return argv[++i];
        };
        if(flag == "--model")
            arguments.model = value();
        else if(flag == "--json")
            arguments.json = value();
        else if(flag == "--input")
            arguments.input = value();
        else if(flag == "--output")
            arguments.output = value();
        else if(flag == "--reset-every")
            arguments.reset_every = std::stoi(value());
        else if(flag == "--time")
            arguments.repeats = std::stoi(value());
        else if(flag == "--block")
            arguments.block = std::stoi(value());
        else if(flag == "--self-test")
            arguments.self_test = true;
        else
            throw std::runtime_error("unknown argument " + flag);
    }
    return arguments;
}

/** Runs or times `model` as the arguments ask (the part both harnesses share). */
template <typename T, typename Model>
void run_or_time(Model& model, const Arguments& arguments, int in_size, int out_size)
{
    const auto frames = read_frames(arguments.input, in_size);
    if(arguments.repeats > 0)
        time_frames<T>(model, frames, in_size, out_size, arguments.repeats, arguments.block);
    else
        write_outputs(arguments.output, stream<T>(model, frames, in_size, out_size, arguments.reset_every), out_size);
}

} // namespace kelly_harness
