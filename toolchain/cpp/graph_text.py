"""The fixed C++ parts of a ``kelly-tc cpp`` header for a graph file or an in_skip file (``graph_header.py``
fills in the model-specific parts; ``header_text.py`` holds the parts every header shares).

Placeholders use ``str.format`` fields; literal C++ braces are doubled.
"""
from toolchain.cpp.header_text import load_function

BACKEND_CHECK = """\
#if RTNEURAL_USE_XSIMD
#error "kelly-tc graph headers support RTNeural's STL and Eigen backends (xsimd layers take SIMD batches, not frames)"
#endif
"""

HELPERS = """\
// A value of the graph: what RTNeural's compile-time layers take as input and hold as `outs` -- a C
// array with the STL backend, an Eigen vector with the Eigen backend; both are indexed with [].
#if RTNEURAL_USE_EIGEN
template <int size>
using Buffer = Eigen::Matrix<scalar_type, size, 1>;

template <typename Values>
inline const scalar_type* data(const Values& values) noexcept
{{
    return values.data();
}}
#else
template <int size>
using Buffer = scalar_type[size];

inline const scalar_type* data(const scalar_type* values) noexcept
{{
    return values;
}}
#endif

// The merges of the graph (sizes and offsets are template arguments: the loops unroll).
template <int start, int size, typename Out, typename In>
inline void slice(Out& out, const In& in) noexcept
{{
    for(int i = 0; i < size; ++i)
        out[i] = in[start + i];
}}

template <int offset, int size, typename Out, typename In>
inline void place(Out& out, const In& in) noexcept
{{
    for(int i = 0; i < size; ++i)
        out[offset + i] = in[i];
}}

template <int size, typename Out, typename First, typename... Rest>
inline void add(Out& out, const First& first, const Rest&... rest) noexcept
{{
    for(int i = 0; i < size; ++i)
        out[i] = (first[i] + ... + rest[i]);
}}

template <int size, typename Out, typename A, typename B>
inline void sub(Out& out, const A& a, const B& b) noexcept
{{
    for(int i = 0; i < size; ++i)
        out[i] = a[i] - b[i];
}}

template <int size, typename Out, typename A, typename B>
inline void mul(Out& out, const A& a, const B& b) noexcept
{{
    for(int i = 0; i < size; ++i)
        out[i] = a[i] * b[i];
}}

template <int size, typename Out>
inline void zero(Out& out) noexcept
{{
    for(int i = 0; i < size; ++i)
        out[i] = (scalar_type)0;
}}
"""

GRAPH_CLASS = """\
/** {source} as RTNeural compile-time layers wired as its graph: one member per layer (a dense or conv1d
 *  layer's activation is a member of its own, as in RTNeural's ModelT), one buffer per merge, and
 *  forward() computing them in the graph's order, one line per connection. */
class {name}
{{
public:
    {name}()
    {{
        reset();
    }}

    /** Clears every layer's state (recurrent state, convolution history) and every buffer. */
    void reset() noexcept
    {{
{reset}
    }}

    /** Runs one frame of input_size values; returns the first output (all of them: getOutputs()). */
    scalar_type forward(const scalar_type* frame) noexcept
    {{
{forward}
        return getOutputs()[0];
    }}

    /** The output_size outputs of the last forward() call. */
    const scalar_type* getOutputs() const noexcept
    {{
        return detail::data({output});
    }}

{members}
}};
"""

IN_SKIP_CLASS = """\
/** The RTNeural stack of {source} (what RTNeural's parser loads from the file) ... */
using Stack = RTNeural::ModelT<{scalar}, {input_size}, {output_size},
{types}>;

/** ... plus the input skip the file declares ("in_skip": 1, as AIDA-X and aidadsp-lv2 apply it and
 *  RTNeural's own parser ignores it): output = stack(frame) + frame[0]. Only input feature 0 (the
 *  audio) is added, also when the frame carries conditioning inputs (knobs) after it. */
class {name}
{{
public:
    void reset() noexcept
    {{
        stack.reset();
        outs[0] = (scalar_type)0;
    }}

    /** Runs one frame of input_size values (16-byte aligned, as ModelT reads it); returns the output. */
    scalar_type forward(const scalar_type* frame) noexcept
    {{
        outs[0] = stack.forward(frame) + frame[0];
        return outs[0];
    }}

    const scalar_type* getOutputs() const noexcept
    {{
        return outs;
    }}

    Stack stack;

private:
    scalar_type outs[output_size] = {{}};
}};
"""

GRAPH_JSON_CHECK = """\
// What the graph file must hold for load() to fill this class: per node its name, the names of the
// values it reads (comma-separated), then for a merge its op (and a slice's start and size), for a
// layer its RTNeural type, output size, activation ("*": not checked), conv1d kernel size, dilation and groups, and for
// batchnorm the number of weight arrays (-1: not checked).
struct JsonNode
{{
    const char* name;
    const char* inputs;
    const char* op;
    const char* type;
    int size;
    const char* activation;
    int kernel_size, dilation, groups;
    int weight_arrays;
    int start;
}};

static const JsonNode json_nodes[] = {{
{json_nodes}
}};

inline std::string joined_inputs(const nlohmann::json& node)
{{
    std::string text;
    for(const auto& value : node.at("inputs"))
        text += (text.empty() ? "" : ",") + value.get<std::string>();
    return text;
}}

inline bool layer_matches(const nlohmann::json& entry, const JsonNode& expected)
{{
    auto type = entry.at("type").get<std::string>();
    if(type == "time-distributed-dense")
        type = "dense";
    if(type != expected.type || entry.at("shape").back().get<int>() != expected.size)
        return false;
    if(std::string(expected.activation) != "*" && entry.value("activation", std::string()) != expected.activation)
        return false;
    if(expected.kernel_size > 0
        && (entry.at("kernel_size").back().get<int>() != expected.kernel_size
            || entry.at("dilation").back().get<int>() != expected.dilation
            || entry.value("groups", 1) != expected.groups))
        return false;
    return expected.weight_arrays < 0 || (int)entry.at("weights").size() == expected.weight_arrays;
}}

inline bool matches(const nlohmann::json& document)
{{
    if(document.at("format").get<std::string>() != "kelly-tc-graph" || document.at("version").get<int>() != 1)
        return false;
    const auto& graph = document.at("graph");
    if(graph.at("input").at("size").get<int>() != input_size || graph.at("output").get<std::string>() != {output_node})
        return false;
    const auto& nodes = graph.at("nodes");
    if(nodes.size() != sizeof(json_nodes) / sizeof(json_nodes[0]))
        return false;
    for(size_t i = 0; i < nodes.size(); ++i)
    {{
        const auto& node = nodes.at(i);
        const JsonNode& expected = json_nodes[i];
        if(node.at("name").get<std::string>() != expected.name || joined_inputs(node) != expected.inputs)
            return false;
        if(*expected.op == '\\0' ? !layer_matches(node.at("layer"), expected) : node.value("op", std::string()) != expected.op)
            return false;
        if(std::string(expected.op) == "slice"
            && (node.at("start").get<int>() != expected.start || node.at("size").get<int>() != expected.size))
            return false;
    }}
    return true;
}}
"""

LOAD_GRAPH_JSON = load_function("""
    Loads the weights from a kelly-tc graph file: every layer object of graph.nodes through RTNeural's
    own per-layer loaders (RTNeural::json_parser::loadDense<T> and friends), then resets. Returns false
    if the file cannot be read or parsed or does not hold this graph (checked before any weight is set;
    a file that fails while its weights are read leaves them partly set -- don't use the model then).
    Reads a file and allocates: call it off the audio thread.
    """, ["detail::matches(document)"], """        const auto& nodes = document.at("graph").at("nodes");
{loaders}""")

IN_SKIP_JSON_CHECK_EXTRA = """\
inline bool declares_in_skip(const nlohmann::json& document)
{{
    const auto in_skip = document.find("in_skip");
    return in_skip != document.end() && in_skip->is_number_integer() && in_skip->get<int>() == 1;
}}
"""

LOAD_IN_SKIP_JSON = load_function("""
    Loads the stack's weights from the RTNeural JSON file with RTNeural's ModelT::parseJson (which
    ignores "in_skip"), after checking the file has the layers of this type and declares "in_skip": 1;
    then resets. Returns false otherwise. Reads a file and allocates: call it off the audio thread.
    """, ["detail::matches(document)", "detail::declares_in_skip(document)"], "        model.stack.parseJson(document, false);")
