// Native convolutions for the engine: oneDNN's forward and backward-data kernels (what PyTorch uses on CPU),
// called on float32 buffers the engine's backend already holds (no copies). Built with node-gyp as a Node-API
// addon, so the same binary loads in Node and in VS Code's Electron. Loaded only when present: the engine falls
// back to the TF.js backend's own kernels without it.
#include <node_api.h>

#include <omp.h>

#include <cstdint>
#include <algorithm>
#include <unordered_map>
#include <vector>
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

/** Kernels in oneDNN's layouts, kept for weights the engine marked as long-lived (by a non-zero id): reordering
 *  a kernel costs about as much as the convolution itself. An id names one immutable buffer; released by id. */
std::unordered_map<int64_t, std::vector<memory>> prepared_cache;

/** The kernel in the layout the primitive wants (a reorder into oneDNN's blocked format, when it differs). */
memory prepared_weights(dnnl::stream& s, const ConvShape& g, float* w, const memory::desc& wanted, int64_t id) {
  memory user(g.user_weights(), cpu(), w);
  if (wanted == g.user_weights()) return user;
  if (id > 0) {
    for (const memory& m : prepared_cache[id]) {
      if (m.get_desc() == wanted) return m;
    }
  }
  memory out(wanted, cpu());
  dnnl::reorder(user, out).execute(s, user, out);
  if (id > 0) prepared_cache[id].push_back(out);
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

int64_t weights_id(napi_env env, napi_value v) {
  int64_t id = 0;
  if (napi_get_value_int64(env, v, &id) != napi_ok || id < 0) throw Failure{"the weights id must be a non-negative integer"};
  return id;
}

/** conv2d(geometry, x, w, bias | null, y, weightsId): y = conv(x, w) + bias, channels-last; weightsId 0 or the
 *  id of a long-lived kernel. */
napi_value conv2d(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!arguments(env, info, argv, 6)) return throw_error(env, "conv2d(geometry, x, w, bias, y, weightsId) takes 6 arguments");
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
    memory weights = prepared_weights(s, g, w, pd.weights_desc(), weights_id(env, argv[5]));
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

/** conv2dBackwardData(geometry, dy, w, dx, weightsId): dx = the input gradient of conv(·, w) for the output
 *  gradient dy. */
napi_value conv2d_backward_data(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!arguments(env, info, argv, 5)) return throw_error(env, "conv2dBackwardData(geometry, dy, w, dx, weightsId) takes 5 arguments");
  try {
    ConvShape g = ConvShape::from(env, argv[0]);
    float* dy = floats(env, argv[1], g.dst_size(), "dy");
    float* w = floats(env, argv[2], g.weights_size(), "w");
    float* dx = floats(env, argv[3], g.src_size(), "dx");

    dnnl::stream s(cpu());
    auto hint = g.forward(dnnl::prop_kind::forward_training, false);
    dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, g.src(), g.any_weights(), g.dst(), g.strides(), g.dilations(), g.pad_l(), g.pad_r());
    dnnl::convolution_backward_data::primitive_desc pd(d, cpu(), hint);
    memory weights = prepared_weights(s, g, w, pd.weights_desc(), weights_id(env, argv[4]));
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

/** matmul(m, k, n, a, b, bias | null, out, transposeB): out[m×n] = a[m×k] · B + bias, where B is b[k×n], or,
 *  with transposeB, b[n×k] read transposed (the input gradient of a dense layer: dy · Wᵀ). Row-major, no copies. */
napi_value matmul(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!arguments(env, info, argv, 8)) return throw_error(env, "matmul(m, k, n, a, b, bias, out, transposeB) takes 8 arguments");
  try {
    int64_t dims[3];
    for (int i = 0; i < 3; i++) {
      if (napi_get_value_int64(env, argv[i], &dims[i]) != napi_ok || dims[i] < 1) throw Failure{"matmul: m, k and n must be positive integers"};
    }
    const int64_t m = dims[0], k = dims[1], n = dims[2];
    bool transpose_b = false;
    napi_get_value_bool(env, argv[7], &transpose_b);
    float* a = floats(env, argv[3], m * k, "a");
    float* b = floats(env, argv[4], k * n, "b");
    napi_valuetype bias_type;
    napi_typeof(env, argv[5], &bias_type);
    float* bias = bias_type == napi_null || bias_type == napi_undefined ? nullptr : floats(env, argv[5], n, "bias");
    float* out = floats(env, argv[6], m * n, "out");

    using dt = memory::data_type;
    memory::desc a_md({m, k}, dt::f32, tag::ab), out_md({m, n}, dt::f32, tag::ab);
    memory::desc b_md({k, n}, dt::f32, transpose_b ? tag::ba : tag::ab), bias_md({1, n}, dt::f32, tag::ab);
    auto d = bias ? dnnl::matmul::desc(a_md, b_md, bias_md, out_md) : dnnl::matmul::desc(a_md, b_md, out_md);
    dnnl::matmul::primitive_desc pd(d, cpu());
    dnnl::stream s(cpu());
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(a_md, cpu(), a)}, {DNNL_ARG_WEIGHTS, memory(b_md, cpu(), b)}, {DNNL_ARG_DST, memory(out_md, cpu(), out)}};
    if (bias) args.insert({DNNL_ARG_BIAS, memory(bias_md, cpu(), bias)});
    dnnl::matmul(pd).execute(s, args);
    s.wait();
  } catch (const Failure& f) {
    return throw_error(env, f.message);
  } catch (const dnnl::error& e) {
    return throw_error(env, std::string("oneDNN: ") + e.what());
  }
  return nullptr;
}

/** maxPoolBackward(geometry, x, dy, dx): the max-pool input gradient, each window's gradient routed to its first
 *  maximum in row-major order (as PyTorch; padding never wins), channels-last.
 *  geometry: Int32Array [n, h, w, c, ho, wo, kh, kw, strideH, strideW, padTop, padLeft] */
napi_value max_pool_backward(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!arguments(env, info, argv, 4)) return throw_error(env, "maxPoolBackward(geometry, x, dy, dx) takes 4 arguments");
  try {
    bool is_typed = false;
    napi_is_typedarray(env, argv[0], &is_typed);
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (!is_typed || napi_get_typedarray_info(env, argv[0], &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_int32_array || length != 12) {
      throw Failure{"the pooling geometry must be an Int32Array of 12 values"};
    }
    const int32_t* q = static_cast<const int32_t*>(data);
    const int64_t n = q[0], h = q[1], w = q[2], c = q[3], ho = q[4], wo = q[5], kh = q[6], kw = q[7], sh = q[8], sw = q[9], top = q[10], left = q[11];
    for (size_t i = 0; i < 12; i++) {
      if (q[i] < (i >= 10 ? 0 : 1)) throw Failure{"invalid pooling geometry (value " + std::to_string(i) + " is " + std::to_string(q[i]) + ")"};
    }
    const float* x = floats(env, argv[1], n * h * w * c, "x");
    const float* dy = floats(env, argv[2], n * ho * wo * c, "dy");
    float* dx = floats(env, argv[3], n * h * w * c, "dx");
    std::fill(dx, dx + n * h * w * c, 0.0f);
    std::vector<float> best(c);
    std::vector<int64_t> best_at(c);
    for (int64_t b = 0; b < n; b++) {
      for (int64_t oi = 0; oi < ho; oi++) {
        for (int64_t oj = 0; oj < wo; oj++) {
          std::fill(best_at.begin(), best_at.end(), -1);
          for (int64_t di = 0; di < kh; di++) {
            const int64_t i = oi * sh + di - top;
            if (i < 0 || i >= h) continue;
            for (int64_t dj = 0; dj < kw; dj++) {
              const int64_t j = oj * sw + dj - left;
              if (j < 0 || j >= w) continue;
              const int64_t base = ((b * h + i) * w + j) * c;
              for (int64_t k = 0; k < c; k++) {
                const float v = x[base + k];
                if (best_at[k] < 0 || v > best[k]) {
                  best[k] = v;
                  best_at[k] = base + k;
                }
              }
            }
          }
          const float* g = dy + ((b * ho + oi) * wo + oj) * c;
          for (int64_t k = 0; k < c; k++) {
            if (best_at[k] >= 0) dx[best_at[k]] += g[k];
          }
        }
      }
    }
  } catch (const Failure& f) {
    return throw_error(env, f.message);
  }
  return nullptr;
}

/** divideStabilized(g, z, epsilon, out[, by, sign]): out = m·g / (z + ε·sign(z)) with sign(0) = +1 — Zennit's
 *  stabilised division, one pass instead of the backend's six or more. m is 1, or, given `by`, the mask
 *  [by > 0] (sign 1) or [by < 0] (sign −1) as 1 or 0. The same float32 operations in the same order as the
 *  backend's kernels (no contraction to fused multiply-adds), so the same values. */
napi_value divide_stabilized(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  size_t argc = 6;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 4 && argc != 6) return throw_error(env, "divideStabilized(g, z, epsilon, out[, by, sign]) takes 4 or 6 arguments");
  try {
    size_t n = 0;
    napi_get_typedarray_info(env, argv[0], nullptr, &n, nullptr, nullptr, nullptr);
    const float* g = floats(env, argv[0], n, "g");
    const float* z = floats(env, argv[1], n, "z");
    double eps64 = 0;
    if (napi_get_value_double(env, argv[2], &eps64) != napi_ok) throw Failure{"epsilon must be a number"};
    const float eps = static_cast<float>(eps64);
    float* out = floats(env, argv[3], n, "out");
    const int64_t count = static_cast<int64_t>(n);
    if (argc == 4) {
#pragma omp parallel for simd if (count > 65536) schedule(static)
      for (int64_t i = 0; i < count; i++) out[i] = g[i] / (z[i] + (z[i] >= 0.0f ? eps : -eps));
      return nullptr;
    }
    const float* by = floats(env, argv[4], n, "by");
    int32_t sign = 0;
    if (napi_get_value_int32(env, argv[5], &sign) != napi_ok || (sign != 1 && sign != -1)) throw Failure{"sign must be 1 or -1"};
    const float s = static_cast<float>(sign);
#pragma omp parallel for simd if (count > 65536) schedule(static)
    for (int64_t i = 0; i < count; i++) {
      const float m = s * by[i] > 0.0f ? 1.0f : 0.0f;
      out[i] = (m * g[i]) / (z[i] + (z[i] >= 0.0f ? eps : -eps));
    }
  } catch (const Failure& f) {
    return throw_error(env, f.message);
  }
  return nullptr;
}

/** releaseWeights(id): forgets the kernels prepared for a long-lived weight (its tensor was disposed). */
napi_value release_weights(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!arguments(env, info, argv, 1)) return throw_error(env, "releaseWeights(id) takes 1 argument");
  try {
    prepared_cache.erase(weights_id(env, argv[0]));
  } catch (const Failure& f) {
    return throw_error(env, f.message);
  }
  return nullptr;
}

/** multiply(a, b, out): out = a · b elementwise — the rules' reducer, input times gradient, on both cores. */
napi_value multiply(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!arguments(env, info, argv, 3)) return throw_error(env, "multiply(a, b, out) takes 3 arguments");
  try {
    size_t n = 0;
    napi_get_typedarray_info(env, argv[0], nullptr, &n, nullptr, nullptr, nullptr);
    const float* a = floats(env, argv[0], n, "a");
    const float* b = floats(env, argv[1], n, "b");
    float* out = floats(env, argv[2], n, "out");
    const int64_t count = static_cast<int64_t>(n);
#pragma omp parallel for simd if (count > 65536) schedule(static)
    for (int64_t i = 0; i < count; i++) out[i] = a[i] * b[i];
  } catch (const Failure& f) {
    return throw_error(env, f.message);
  }
  return nullptr;
}

/** sum(values): Σ values in double precision, for the relevance sums every run reports per layer. */
napi_value sum(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!arguments(env, info, argv, 1)) return throw_error(env, "sum(values) takes 1 argument");
  try {
    size_t n = 0;
    napi_get_typedarray_info(env, argv[0], nullptr, &n, nullptr, nullptr, nullptr);
    const float* v = floats(env, argv[0], n, "values");
    const int64_t count = static_cast<int64_t>(n);
    double total = 0;
#pragma omp parallel for simd reduction(+ : total) if (count > 65536) schedule(static)
    for (int64_t i = 0; i < count; i++) total += v[i];
    napi_value result;
    napi_create_double(env, total, &result);
    return result;
  } catch (const Failure& f) {
    return throw_error(env, f.message);
  }
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
      {"matmul", nullptr, matmul, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"maxPoolBackward", nullptr, max_pool_backward, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"divideStabilized", nullptr, divide_stabilized, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"multiply", nullptr, multiply, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"sum", nullptr, sum, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"releaseWeights", nullptr, release_weights, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"info", nullptr, library_info, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
