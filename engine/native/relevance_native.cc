// Native convolutions for the engine: oneDNN's forward and backward-data kernels (what PyTorch uses on CPU),
// called on float32 buffers the engine's backend already holds (no copies). Built with node-gyp as a Node-API
// addon, so the same binary loads in Node and in VS Code's Electron. Loaded only when present: the engine falls
// back to the TF.js backend's own kernels without it.
#include <node_api.h>

#include <omp.h>

#include <cstdint>
#include <unordered_map>
#include <string>

#include "oneapi/dnnl/dnnl.hpp"
#include "oneapi/dnnl/dnnl_version.h"

namespace {

using dnnl::memory;
using tag = memory::format_tag;

dnnl::engine& cpu() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

struct Failure {
  std::string message;
};

float* floats(napi_env env, napi_value v, size_t expected, const char* name) {
  bool is_typed = false;
  napi_is_typedarray(env, v, &is_typed);
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (!is_typed || napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array) {
    throw Failure{std::string(name) + " must be a Float32Array"};
  }
  if (length != expected) {
    throw Failure{std::string(name) + " has " + std::to_string(length) + " values, the shape needs " + std::to_string(expected)};
  }
  return static_cast<float*>(data);
}

/** The convolution's geometry, from an Int32Array:
 *  [n, h, w, ci, kh, kw, co, groups, ho, wo, strideH, strideW, dilationH, dilationW, padTop, padLeft, padBottom, padRight] */
struct ConvShape {
  int64_t n, h, w, ci, kh, kw, co, groups, ho, wo, sh, sw, dh, dw, pt, pl, pb, pr;

  static ConvShape from(napi_env env, napi_value v) {
    bool is_typed = false;
    napi_is_typedarray(env, v, &is_typed);
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (!is_typed || napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_int32_array || length != 18) {
      throw Failure{"the convolution geometry must be an Int32Array of 18 values"};
    }
    const int32_t* g = static_cast<const int32_t*>(data);
    for (size_t i = 0; i < 18; i++) {
      if (g[i] < (i >= 14 ? 0 : 1)) throw Failure{"invalid convolution geometry (value " + std::to_string(i) + " is " + std::to_string(g[i]) + ")"};
    }
    ConvShape s{g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15], g[16], g[17]};
    if (s.ci % s.groups != 0 || s.co % s.groups != 0) throw Failure{"channels are not divisible by the groups"};
    return s;
  }

  size_t src_size() const { return n * h * w * ci; }
  size_t dst_size() const { return n * ho * wo * co; }
  size_t weights_size() const { return kh * kw * (ci / groups) * co; }

  memory::desc src() const { return {{n, ci, h, w}, memory::data_type::f32, tag::nhwc}; }
  memory::desc dst() const { return {{n, co, ho, wo}, memory::data_type::f32, tag::nhwc}; }
  /** the engine's HWIO kernel (HW, in-per-group, groups × out-per-group) as oneDNN sees it */
  memory::desc user_weights() const {
    if (groups == 1) return {{co, ci, kh, kw}, memory::data_type::f32, tag::hwio};
    return {{groups, co / groups, ci / groups, kh, kw}, memory::data_type::f32, tag::hwigo};
  }
  memory::desc any_weights() const {
    if (groups == 1) return {{co, ci, kh, kw}, memory::data_type::f32, tag::any};
    return {{groups, co / groups, ci / groups, kh, kw}, memory::data_type::f32, tag::any};
  }
  memory::desc bias() const { return {{co}, memory::data_type::f32, tag::x}; }
  memory::dims strides() const { return {sh, sw}; }
  memory::dims dilations() const { return {dh - 1, dw - 1}; }  // oneDNN counts the gaps
  memory::dims pad_l() const { return {pt, pl}; }
  memory::dims pad_r() const { return {pb, pr}; }

  dnnl::convolution_forward::primitive_desc forward(dnnl::prop_kind kind, bool with_bias) const {
    auto d = with_bias ? dnnl::convolution_forward::desc(kind, dnnl::algorithm::convolution_direct, src(), any_weights(), bias(), dst(), strides(), dilations(), pad_l(), pad_r())
                       : dnnl::convolution_forward::desc(kind, dnnl::algorithm::convolution_direct, src(), any_weights(), dst(), strides(), dilations(), pad_l(), pad_r());
    return {d, cpu()};
  }
};

/** The kernel in the layout the primitive wants (a reorder into oneDNN's blocked format, when it differs). */
memory prepared_weights(dnnl::stream& s, const ConvShape& g, float* w, const memory::desc& wanted) {
  memory user(g.user_weights(), cpu(), w);
  if (wanted == g.user_weights()) return user;
  memory out(wanted, cpu());
  dnnl::reorder(user, out).execute(s, user, out);
  return out;
}

napi_value throw_error(napi_env env, const std::string& message) {
  napi_throw_error(env, "NATIVE_KERNEL", message.c_str());
  return nullptr;
}

template <size_t N>
bool arguments(napi_env env, napi_callback_info info, napi_value (&argv)[N], size_t min_count) {
  size_t argc = N;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < min_count) return false;
  return true;
}

/** conv2d(geometry, x, w, bias | null, y): y = conv(x, w) + bias, channels-last. */
napi_value conv2d(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!arguments(env, info, argv, 5)) return throw_error(env, "conv2d(geometry, x, w, bias, y) takes 5 arguments");
  try {
    ConvShape g = ConvShape::from(env, argv[0]);
    float* x = floats(env, argv[1], g.src_size(), "x");
    float* w = floats(env, argv[2], g.weights_size(), "w");
    napi_valuetype bias_type;
    napi_typeof(env, argv[3], &bias_type);
    float* b = bias_type == napi_null || bias_type == napi_undefined ? nullptr : floats(env, argv[3], g.co, "bias");
    float* y = floats(env, argv[4], g.dst_size(), "y");

    dnnl::stream s(cpu());
    auto pd = g.forward(dnnl::prop_kind::forward_inference, b != nullptr);
    memory weights = prepared_weights(s, g, w, pd.weights_desc());
    memory src(g.src(), cpu(), x), dst(g.dst(), cpu(), y);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
    if (b) args.insert({DNNL_ARG_BIAS, memory(g.bias(), cpu(), b)});
    dnnl::convolution_forward(pd).execute(s, args);
    s.wait();
  } catch (const Failure& f) {
    return throw_error(env, f.message);
  } catch (const dnnl::error& e) {
    return throw_error(env, std::string("oneDNN: ") + e.what());
  }
  return nullptr;
}

/** conv2dBackwardData(geometry, dy, w, dx): dx = the input gradient of conv(·, w) for the output gradient dy. */
napi_value conv2d_backward_data(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!arguments(env, info, argv, 4)) return throw_error(env, "conv2dBackwardData(geometry, dy, w, dx) takes 4 arguments");
  try {
    ConvShape g = ConvShape::from(env, argv[0]);
    float* dy = floats(env, argv[1], g.dst_size(), "dy");
    float* w = floats(env, argv[2], g.weights_size(), "w");
    float* dx = floats(env, argv[3], g.src_size(), "dx");

    dnnl::stream s(cpu());
    auto hint = g.forward(dnnl::prop_kind::forward_training, false);
    dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, g.src(), g.any_weights(), g.dst(), g.strides(), g.dilations(), g.pad_l(), g.pad_r());
    dnnl::convolution_backward_data::primitive_desc pd(d, cpu(), hint);
    memory weights = prepared_weights(s, g, w, pd.weights_desc());
    memory diff_dst(g.dst(), cpu(), dy), diff_src(g.src(), cpu(), dx);
    dnnl::convolution_backward_data(pd).execute(s, {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DIFF_SRC, diff_src}});
    s.wait();
  } catch (const Failure& f) {
    return throw_error(env, f.message);
  } catch (const dnnl::error& e) {
    return throw_error(env, std::string("oneDNN: ") + e.what());
  }
  return nullptr;
}

/** info(): what runs the kernels, for the engine's report. */
napi_value library_info(napi_env env, napi_callback_info) {
  const dnnl_version_t* v = dnnl_version();
  std::string text = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  napi_value result, version, threads;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, text.c_str(), text.size(), &version);
  napi_create_int32(env, omp_get_max_threads(), &threads);
  napi_set_named_property(env, result, "library", version);
  napi_set_named_property(env, result, "threads", threads);
  return result;
}

napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"conv2d", nullptr, conv2d, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"conv2dBackwardData", nullptr, conv2d_backward_data, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"info", nullptr, library_info, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
