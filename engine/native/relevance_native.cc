// Native kernels for the engine: oneDNN's convolutions (forward and backward-data), matrix products (batched too)
// and reorders (transposes, strided copies) — what PyTorch uses on CPU — and the rules' elementwise passes with
// OpenMP, called on float32 buffers the engine's backend already holds (no copies). Built with node-gyp as a Node-API
// addon, so the same binary loads in Node and in VS Code's Electron. Loaded only when present: the engine falls
// back to the TF.js backend's own kernels without it. The JavaScript glue is node-addon-api's, with C++
// exceptions: a Failure or a oneDNN error thrown in a call becomes a JavaScript error (never a crash).
#include <napi.h>

#include <omp.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "oneapi/dnnl/dnnl_version.h"

namespace {

using dnnl::memory;
using tag = memory::format_tag;

dnnl::engine& cpu() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

/** A call's arguments do not fit: the message names the problem (a JavaScript Error, by node-addon-api). */
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/** One call from JavaScript: its arguments, each read with a check that throws a Failure naming the problem. */
class Call {
 public:
  Call(const Napi::CallbackInfo& info, const char* signature, size_t min_count, size_t max_count) : info_(info) {
    if (info.Length() < min_count || info.Length() > max_count) {
      throw Failure{std::string(signature) + " takes " + (min_count == max_count ? std::to_string(min_count) : std::to_string(min_count) + " or " + std::to_string(max_count)) + " arguments"};
    }
  }

  size_t count() const { return info_.Length(); }

  /** the length of a Float32Array argument */
  size_t length(size_t i, const char* name) const { return typed(i, napi_float32_array, name).ElementLength(); }

  float* floats(size_t i, size_t expected, const char* name) const {
    Napi::TypedArray a = typed(i, napi_float32_array, name);
    if (a.ElementLength() != expected) throw Failure{std::string(name) + " has " + std::to_string(a.ElementLength()) + " values, the shape needs " + std::to_string(expected)};
    return a.As<Napi::Float32Array>().Data();
  }

  /** a Float32Array, or null/undefined for none */
  float* optional_floats(size_t i, size_t expected, const char* name) const {
    return info_[i].IsNull() || info_[i].IsUndefined() ? nullptr : floats(i, expected, name);
  }

  /** an Int32Array of `count` values, each at least `min` (or `min_tail` from index `tail` on) */
  const int32_t* int32s(size_t i, size_t count, const char* name, int32_t min, size_t tail = SIZE_MAX, int32_t min_tail = 0) const {
    Napi::TypedArray a = typed(i, napi_int32_array, name);
    if (a.ElementLength() != count) throw Failure{std::string(name) + " must be an Int32Array of " + std::to_string(count) + " values"};
    const int32_t* v = a.As<Napi::Int32Array>().Data();
    for (size_t k = 0; k < count; k++) {
      if (v[k] < (k >= tail ? min_tail : min)) throw Failure{"invalid " + std::string(name) + " (value " + std::to_string(k) + " is " + std::to_string(v[k]) + ")"};
    }
    return v;
  }

  int64_t integer(size_t i, const char* name, int64_t min) const {
    const int64_t v = info_[i].IsNumber() ? info_[i].As<Napi::Number>().Int64Value() : min - 1;
    if (v < min) throw Failure{std::string(name) + " must be an integer ≥ " + std::to_string(min)};
    return v;
  }

  /** a tensor's rank, from `min` up to oneDNN's limit */
  int64_t rank(size_t i, const char* kernel, int64_t min) const {
    const int64_t r = integer(i, "rank", min);
    if (r > DNNL_MAX_NDIMS) throw Failure{std::string(kernel) + ": rank " + std::to_string(r) + " is above oneDNN's " + std::to_string(DNNL_MAX_NDIMS)};
    return r;
  }

  double number(size_t i, const char* name) const {
    if (!info_[i].IsNumber()) throw Failure{std::string(name) + " must be a number"};
    return info_[i].As<Napi::Number>().DoubleValue();
  }

  bool boolean(size_t i) const { return info_[i].IsBoolean() && info_[i].As<Napi::Boolean>().Value(); }

  Napi::Env env() const { return info_.Env(); }

 private:
  Napi::TypedArray typed(size_t i, napi_typedarray_type want, const char* name) const {
    if (!info_[i].IsTypedArray() || info_[i].As<Napi::TypedArray>().TypedArrayType() != want) {
      throw Failure{std::string(name) + (want == napi_float32_array ? " must be a Float32Array" : " must be an Int32Array")};
    }
    return info_[i].As<Napi::TypedArray>();
  }

  const Napi::CallbackInfo& info_;
};

/** Elementwise loops, compiled for AVX-512, AVX2 and baseline x86-64 and picked at load time (no FMA contraction:
 *  -ffp-contract=off keeps each product and sum rounded as the backends' kernels round them). */
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

VECTOR_CLONES void divide_span(int64_t n, const float* __restrict g, const float* __restrict z, float eps, float* __restrict out) {
  for (int64_t i = 0; i < n; i++) out[i] = g[i] / (z[i] + (z[i] >= 0.0f ? eps : -eps));
}

VECTOR_CLONES void divide_masked_span(int64_t n, const float* __restrict g, const float* __restrict z, float eps, const float* __restrict by, float sign, float* __restrict out) {
  for (int64_t i = 0; i < n; i++) out[i] = ((sign * by[i] > 0.0f ? 1.0f : 0.0f) * g[i]) / (z[i] + (z[i] >= 0.0f ? eps : -eps));
}

VECTOR_CLONES void multiply_span(int64_t n, const float* __restrict a, const float* __restrict b, float* __restrict out) {
  for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

VECTOR_CLONES void combine_span(int64_t n, const float* __restrict a, float ca, const float* __restrict b, float cb, float* __restrict out) {
  for (int64_t i = 0; i < n; i++) out[i] = ca * a[i] + cb * b[i];
}

VECTOR_CLONES double sum_span(int64_t n, const float* __restrict v) {
  double total = 0;
#pragma omp simd reduction(+ : total)
  for (int64_t i = 0; i < n; i++) total += v[i];
  return total;
}

/** Runs span(begin, end) over [0, count) split evenly across the cores, when it is large enough to pay for them. */
template <typename Span>
void in_parallel(int64_t count, Span span) {
  if (count <= 65536) {
    span(0, count);
    return;
  }
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
    span(count * t / k, count * (t + 1) / k);
  }
}

/** The convolution's geometry, from an Int32Array:
 *  [n, h, w, ci, kh, kw, co, groups, ho, wo, strideH, strideW, dilationH, dilationW, padTop, padLeft, padBottom, padRight,
 *   channelsFirst]
 *  channelsFirst 0: x and y channels-last (NHWC), 1: channels-first (NCHW); the kernel is HWIO either way. */
struct ConvShape {
  int64_t n, h, w, ci, kh, kw, co, groups, ho, wo, sh, sw, dh, dw, pt, pl, pb, pr;
  bool channels_first;

  static ConvShape from(const Call& call, size_t i) {
    const int32_t* g = call.int32s(i, 19, "convolution geometry", 1, 14, 0);
    if (g[18] > 1) throw Failure{"invalid convolution geometry (the layout flag, value 18, is " + std::to_string(g[18]) + ": 0 for NHWC or 1 for NCHW)"};
    ConvShape s{g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15], g[16], g[17], g[18] == 1};
    if (s.ci % s.groups != 0 || s.co % s.groups != 0) throw Failure{"channels are not divisible by the groups"};
    return s;
  }

  size_t src_size() const { return n * h * w * ci; }
  size_t dst_size() const { return n * ho * wo * co; }
  size_t weights_size() const { return kh * kw * (ci / groups) * co; }

  tag layout() const { return channels_first ? tag::nchw : tag::nhwc; }
  /** x and y as the engine holds them */
  memory::desc src() const { return {{n, ci, h, w}, memory::data_type::f32, layout()}; }
  memory::desc dst() const { return {{n, co, ho, wo}, memory::data_type::f32, layout()}; }
  /** x and y as the primitive takes them: NHWC in either layout, NCHW reordered in and out. On plain NCHW oneDNN
   *  2.6 falls back to im2col + GEMM (depthwise convolutions several times slower), and its blocked layouts pad the
   *  RGB stem's 3 channels to 16 (over 10× slower); on NHWC it has its fast kernels, and both layouts compute the
   *  same sums in the same order (the same values). Except a pointwise convolution on NCHW: it is a GEMM as it
   *  lies, as fast as the NHWC kernel, without the reorders around it (most of ResNet50's convolutions are these:
   *  its attribution's reorders took 37 ms, now 12). */
  tag primitive_layout() const { return pointwise() ? tag::nchw : tag::nhwc; }
  memory::desc primitive_src() const { return {{n, ci, h, w}, memory::data_type::f32, primitive_layout()}; }
  memory::desc primitive_dst() const { return {{n, co, ho, wo}, memory::data_type::f32, primitive_layout()}; }
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
    auto d = with_bias ? dnnl::convolution_forward::desc(kind, dnnl::algorithm::convolution_direct, primitive_src(), any_weights(), bias(), primitive_dst(), strides(), dilations(), pad_l(), pad_r())
                       : dnnl::convolution_forward::desc(kind, dnnl::algorithm::convolution_direct, primitive_src(), any_weights(), primitive_dst(), strides(), dilations(), pad_l(), pad_r());
    return {d, cpu()};
  }

  /** A 1×1 convolution of stride 1 without padding, on NCHW: per image a matrix product of the kernel and the
   *  image's [channels × pixels]. */
  bool pointwise() const { return channels_first && kh == 1 && kw == 1 && sh == 1 && sw == 1 && groups == 1 && pt == 0 && pl == 0 && pb == 0 && pr == 0; }

  /** The backward-data convolution of a stride-1 convolution is a forward convolution of dy with the kernel
   *  flipped spatially and its in- and out-channels swapped, padded by K − 1 − pad on each side. oneDNN's forward
   *  kernels run it faster than its backward-data ones (1.5× at VGG16's 512-channel layers). */
  bool transposable() const { return sh == 1 && sw == 1 && dh == 1 && dw == 1 && std::max(pt, pb) < kh && std::max(pl, pr) < kw; }
  ConvShape transposed() const {
    ConvShape t = *this;
    std::tie(t.h, t.w, t.ci, t.co, t.ho, t.wo) = std::make_tuple(ho, wo, co, ci, h, w);
    std::tie(t.pt, t.pb, t.pl, t.pr) = std::make_tuple(kh - 1 - pt, kh - 1 - pb, kw - 1 - pl, kw - 1 - pr);
    return t;
  }
  /** the kernel of `transposed()`, in its HWIO layout, from this one's */
  std::vector<float> flipped_kernel(const float* k) const {
    const int64_t in = ci / groups, out = co / groups;
    std::vector<float> f(weights_size());
    for (int64_t y = 0; y < kh; y++)
      for (int64_t x = 0; x < kw; x++)
        for (int64_t i = 0; i < in; i++)
          for (int64_t g = 0; g < groups; g++)
            for (int64_t o = 0; o < out; o++)
              f[(((kh - 1 - y) * kw + (kw - 1 - x)) * out + o) * ci + g * in + i] = k[((y * kw + x) * in + i) * co + g * out + o];
    return f;
  }
};

/** Kernels in oneDNN's layouts, kept for weights the engine marked as long-lived (by a non-zero id): reordering
 *  a kernel costs about as much as the convolution itself. An id names one immutable buffer; released by id.
 *  [0]: the kernel as given, [1]: flipped for a transposed convolution (ConvShape::transposed). */
std::unordered_map<int64_t, std::vector<memory>> prepared_cache[2];

/** The kernel w of convolution g in the layout the primitive wants (a reorder into oneDNN's blocked format, when
 *  it differs); with `flip`, the kernel of g.transposed() made from it. */
memory prepared_weights(dnnl::stream& s, const ConvShape& g, float* w, const memory::desc& wanted, int64_t id, bool flip = false) {
  std::vector<memory>& kept = prepared_cache[flip][id];
  if (id > 0) {
    for (const memory& m : kept) {
      if (m.get_desc() == wanted) return m;
    }
  }
  const ConvShape shape = flip ? g.transposed() : g;
  std::vector<float> flipped = flip ? g.flipped_kernel(w) : std::vector<float>();
  memory user(shape.user_weights(), cpu(), flip ? flipped.data() : w);
  // the engine's own buffer serves as it is; a flipped one is temporary
  if (!flip && wanted == shape.user_weights()) return user;
  memory out(wanted, cpu());
  dnnl::reorder(user, out).execute(s, user, out);
  if (id > 0) kept.push_back(out);
  return out;
}

/** Two scratch buffers reused across calls (the addon runs on the JavaScript thread only), so reordering an NCHW
 *  input and output costs no allocation and no fresh pages: slot 0 holds the input, slot 1 the output. */
float* scratch(int slot, size_t count) {
  static std::vector<float> buffers[2];
  if (buffers[slot].size() < count) buffers[slot] = std::vector<float>(count);
  return buffers[slot].data();
}

/** An input in the layout the primitive wants: the engine's buffer itself, or a reordered copy. */
memory input_as(dnnl::stream& s, const memory::desc& user_desc, float* data, const memory::desc& wanted) {
  memory user(user_desc, cpu(), data);
  if (wanted == user_desc) return user;
  memory out(wanted, cpu(), scratch(0, wanted.get_size() / sizeof(float)));
  dnnl::reorder(user, out).execute(s, user, out);
  return out;
}

/** An output in the layout the primitive wants: the engine's buffer itself, or scratch that `deliver` copies back. */
memory output_as(const memory::desc& user_desc, float* data, const memory::desc& wanted) {
  return wanted == user_desc ? memory(user_desc, cpu(), data) : memory(wanted, cpu(), scratch(1, wanted.get_size() / sizeof(float)));
}

void deliver(dnnl::stream& s, memory out, const memory::desc& user_desc, float* data) {
  if (out.get_desc() == user_desc) return;
  memory user(user_desc, cpu(), data);
  dnnl::reorder(out, user).execute(s, out, user);
}

/** conv2d(geometry, x, w, bias | null, y, weightsId): y = conv(x, w) + bias, channels-last or channels-first as
 *  the geometry says (ConvShape); weightsId 0 or the id of a long-lived kernel. */
Napi::Value conv2d(const Napi::CallbackInfo& info) {
  Call call(info, "conv2d(geometry, x, w, bias, y, weightsId)", 6, 6);
  ConvShape g = ConvShape::from(call, 0);
  float* x = call.floats(1, g.src_size(), "x");
  float* w = call.floats(2, g.weights_size(), "w");
  float* b = call.optional_floats(3, g.co, "bias");
  float* y = call.floats(4, g.dst_size(), "y");
  int64_t id = call.integer(5, "the weights id", 0);

  dnnl::stream s(cpu());
  auto pd = g.forward(dnnl::prop_kind::forward_inference, b != nullptr);
  memory dst = output_as(g.dst(), y, pd.dst_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, input_as(s, g.src(), x, pd.src_desc())}, {DNNL_ARG_WEIGHTS, prepared_weights(s, g, w, pd.weights_desc(), id)}, {DNNL_ARG_DST, dst}};
  if (b) args.insert({DNNL_ARG_BIAS, memory(g.bias(), cpu(), b)});
  dnnl::convolution_forward(pd).execute(s, args);
  deliver(s, dst, g.dst(), y);
  s.wait();
  return info.Env().Undefined();
}

/** conv2dBackwardData(geometry, dy, w, dx, weightsId): dx = the input gradient of conv(·, w) for the output
 *  gradient dy. */
Napi::Value conv2d_backward_data(const Napi::CallbackInfo& info) {
  Call call(info, "conv2dBackwardData(geometry, dy, w, dx, weightsId)", 5, 5);
  ConvShape g = ConvShape::from(call, 0);
  float* dy = call.floats(1, g.dst_size(), "dy");
  float* w = call.floats(2, g.weights_size(), "w");
  float* dx = call.floats(3, g.src_size(), "dx");
  int64_t id = call.integer(4, "the weights id", 0);

  dnnl::stream s(cpu());
  if (g.transposable()) {
    const ConvShape t = g.transposed();
    auto pd = t.forward(dnnl::prop_kind::forward_inference, false);
    memory dst = output_as(t.dst(), dx, pd.dst_desc());
    dnnl::convolution_forward(pd).execute(s, {{DNNL_ARG_SRC, input_as(s, t.src(), dy, pd.src_desc())}, {DNNL_ARG_WEIGHTS, prepared_weights(s, g, w, pd.weights_desc(), id, true)}, {DNNL_ARG_DST, dst}});
    deliver(s, dst, t.dst(), dx);
    s.wait();
    return info.Env().Undefined();
  }
  auto hint = g.forward(dnnl::prop_kind::forward_training, false);
  dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, g.primitive_src(), g.any_weights(), g.primitive_dst(), g.strides(), g.dilations(), g.pad_l(), g.pad_r());
  dnnl::convolution_backward_data::primitive_desc pd(d, cpu(), hint);
  memory diff_src = output_as(g.src(), dx, pd.diff_src_desc());
  dnnl::convolution_backward_data(pd).execute(
      s, {{DNNL_ARG_DIFF_DST, input_as(s, g.dst(), dy, pd.diff_dst_desc())}, {DNNL_ARG_WEIGHTS, prepared_weights(s, g, w, pd.weights_desc(), id)}, {DNNL_ARG_DIFF_SRC, diff_src}});
  deliver(s, diff_src, g.src(), dx);
  s.wait();
  return info.Env().Undefined();
}

/** releaseWeights(id): forgets the kernels prepared for a long-lived weight (its tensor was disposed). */
Napi::Value release_weights(const Napi::CallbackInfo& info) {
  Call call(info, "releaseWeights(id)", 1, 1);
  const int64_t id = call.integer(0, "the weights id", 0);
  for (auto& cache : prepared_cache) cache.erase(id);
  return info.Env().Undefined();
}

/** matmul(m, k, n, a, b, bias | null, out, transposeB): out[m×n] = a[m×k] · B + bias, where B is b[k×n], or,
 *  with transposeB, b[n×k] read transposed (the input gradient of a dense layer: dy · Wᵀ). Row-major, no copies. */
Napi::Value matmul(const Napi::CallbackInfo& info) {
  Call call(info, "matmul(m, k, n, a, b, bias, out, transposeB)", 8, 8);
  const int64_t m = call.integer(0, "m", 1), k = call.integer(1, "k", 1), n = call.integer(2, "n", 1);
  float* a = call.floats(3, m * k, "a");
  float* b = call.floats(4, k * n, "b");
  float* bias = call.optional_floats(5, n, "bias");
  float* out = call.floats(6, m * n, "out");
  const bool transpose_b = call.boolean(7);

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
  return info.Env().Undefined();
}

/** the element strides of dense row-major dims */
template <typename Dim>
memory::dims row_major(const Dim* dims, int64_t rank) {
  memory::dims strides(rank);
  for (int64_t k = rank - 1, s = 1; k >= 0; s *= dims[k], k--) strides[k] = s;
  return strides;
}

int64_t volume(const int32_t* dims, int64_t rank) {
  int64_t v = 1;
  for (int64_t k = 0; k < rank; k++) v *= dims[k];
  return v;
}

/** dense[i] = view[i] (or view[i] = dense[i] with scatter) for the view of `strided` at offset + Σ iₖ·stridesₖ:
 *  a loop over the innermost axis per outer index, on both cores. For the views oneDNN cannot describe (a stepped
 *  slice whose rows interleave); the view's elements must not overlap. */
void copy_loop(const int32_t* dims, const int32_t* strides, int64_t rank, int64_t offset, float* strided, float* dense, bool scatter) {
  const int64_t inner = dims[rank - 1], step = strides[rank - 1], outer = volume(dims, rank) / inner;
#pragma omp parallel for schedule(static) if (outer * inner > 65536)
  for (int64_t o = 0; o < outer; o++) {
    int64_t at = offset;
    for (int64_t k = rank - 2, rest = o; k >= 0; rest /= dims[k], k--) at += (rest % dims[k]) * strides[k];
    float* run = dense + o * inner;
    if (scatter) {
      for (int64_t i = 0; i < inner; i++) strided[at + i * step] = run[i];
    } else {
      for (int64_t i = 0; i < inner; i++) run[i] = strided[at + i * step];
    }
  }
}

/** copyStrided(rank, dims, strides, offset, src, dst, scatter): without scatter, dst (dense, dims) = src read at
 *  offset + Σ i·strides — a transpose (strides permuted), a stepped slice, a gather of evenly spaced indices; with
 *  scatter, dst is zeroed and the dense src written there instead — their gradients. A oneDNN reorder where oneDNN
 *  can describe the view (it is fast at transposes), else a plain loop. */
Napi::Value copy_strided(const Napi::CallbackInfo& info) {
  Call call(info, "copyStrided(rank, dims, strides, offset, src, dst, scatter)", 7, 7);
  const int64_t rank = call.rank(0, "copyStrided", 1);
  const int32_t* dims = call.int32s(1, rank, "dims", 1);
  const int32_t* strides = call.int32s(2, rank, "strides", 0);
  const int64_t offset = call.integer(3, "offset", 0);
  const bool scatter = call.boolean(6);
  const int64_t dense_length = volume(dims, rank);
  const size_t strided_length = call.length(scatter ? 5 : 4, scatter ? "dst" : "src");
  float* src = call.floats(4, scatter ? dense_length : strided_length, "src");
  float* dst = call.floats(5, scatter ? strided_length : dense_length, "dst");
  int64_t last = offset;
  for (int64_t k = 0; k < rank; k++) last += static_cast<int64_t>(dims[k] - 1) * strides[k];
  if (last >= static_cast<int64_t>(strided_length)) throw Failure{"copyStrided: the strided view runs past its buffer"};
  float* strided = scatter ? dst : src;
  float* dense = scatter ? src : dst;
  if (scatter) std::fill(dst, dst + strided_length, 0.0f);

  const memory::dims shape(dims, dims + rank);
  dnnl_memory_desc_t probe;
  const memory::dims view_strides(strides, strides + rank);
  if (dnnl_memory_desc_init_by_strides(&probe, rank, shape.data(), dnnl_f32, view_strides.data()) != dnnl_success) {
    copy_loop(dims, strides, rank, offset, strided, dense, scatter);
    return info.Env().Undefined();
  }
  memory view(memory::desc(probe), cpu(), strided + offset);
  memory packed(memory::desc(shape, memory::data_type::f32, row_major(dims, rank)), cpu(), dense);
  dnnl::stream s(cpu());
  if (scatter) {
    dnnl::reorder(packed, view).execute(s, packed, view);
  } else {
    dnnl::reorder(view, packed).execute(s, view, packed);
  }
  s.wait();
  return info.Env().Undefined();
}

/** batchMatmul(rank, aDims, bDims, a, b, out, transposeA, transposeB): out = A · B over the leading (batch) dims,
 *  broadcast where one side's is 1, as TF.js's BatchMatMul: A is a read as stored ([…, m, k]) or transposed
 *  (stored […, k, m]), B likewise. The transposes are strides, so nothing is copied. */
Napi::Value batch_matmul(const Napi::CallbackInfo& info) {
  Call call(info, "batchMatmul(rank, aDims, bDims, a, b, out, transposeA, transposeB)", 8, 8);
  const int64_t rank = call.rank(0, "batchMatmul", 2);
  const int32_t* ad = call.int32s(1, rank, "aDims", 1);
  const int32_t* bd = call.int32s(2, rank, "bDims", 1);
  const bool ta = call.boolean(6), tb = call.boolean(7);
  // a stored [..., r, c] read as [..., c, r] when transposed: dims and strides of the logical operand
  auto operand = [rank](const int32_t* stored, bool transposed) {
    memory::dims dims(stored, stored + rank), strides = row_major(stored, rank);
    if (transposed) {
      std::swap(dims[rank - 1], dims[rank - 2]);
      std::swap(strides[rank - 1], strides[rank - 2]);
    }
    return std::make_pair(dims, strides);
  };
  auto [a_dims, a_strides] = operand(ad, ta);
  auto [b_dims, b_strides] = operand(bd, tb);
  if (a_dims[rank - 1] != b_dims[rank - 2]) throw Failure{"batchMatmul: the inner dimensions differ"};
  memory::dims out_dims(rank);
  for (int64_t k = 0; k < rank - 2; k++) {
    if (a_dims[k] != b_dims[k] && a_dims[k] != 1 && b_dims[k] != 1) throw Failure{"batchMatmul: the batch dimensions do not broadcast"};
    out_dims[k] = std::max(a_dims[k], b_dims[k]);
  }
  out_dims[rank - 2] = a_dims[rank - 2];
  out_dims[rank - 1] = b_dims[rank - 1];
  int64_t out_size = 1;
  for (auto d : out_dims) out_size *= d;
  using dt = memory::data_type;
  memory::desc a_md(a_dims, dt::f32, a_strides), b_md(b_dims, dt::f32, b_strides);
  memory::desc out_md(out_dims, dt::f32, row_major(out_dims.data(), rank));
  float* a = call.floats(3, volume(ad, rank), "a");
  float* b = call.floats(4, volume(bd, rank), "b");
  float* out = call.floats(5, out_size, "out");
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, out_md), cpu());
  dnnl::stream s(cpu());
  dnnl::matmul(pd).execute(s, {{DNNL_ARG_SRC, memory(a_md, cpu(), a)}, {DNNL_ARG_WEIGHTS, memory(b_md, cpu(), b)}, {DNNL_ARG_DST, memory(out_md, cpu(), out)}});
  s.wait();
  return info.Env().Undefined();
}

/** maxPoolBackward(geometry, x, dy, dx): the max-pool input gradient, each window's gradient routed to its first
 *  maximum in row-major window order (as PyTorch; padding never wins).
 *  geometry: Int32Array [n, h, w, c, ho, wo, kh, kw, strideH, strideW, padTop, padLeft, channelsFirst], where ho × wo
 *  is dy's size: windows may run past the bottom and right edges (ceil mode), positions outside x are skipped.
 *  channelsFirst 0: x, dy and dx are NHWC; 1: NCHW. */
Napi::Value max_pool_backward(const Napi::CallbackInfo& info) {
  Call call(info, "maxPoolBackward(geometry, x, dy, dx)", 4, 4);
  const int32_t* q = call.int32s(0, 13, "pooling geometry", 1, 10, 0);
  const int64_t n = q[0], h = q[1], w = q[2], c = q[3], ho = q[4], wo = q[5], kh = q[6], kw = q[7], sh = q[8], sw = q[9], top = q[10], left = q[11];
  if (q[12] > 1) throw Failure{"invalid pooling geometry (the layout flag, value 12, is " + std::to_string(q[12]) + ": 0 for NHWC or 1 for NCHW)"};
  const bool channels_first = q[12] == 1;
  // every window reaches into x: the first ones start at most kernel − 1 before it, the last ones inside it
  if (top >= kh || left >= kw || (ho - 1) * sh - top >= h || (wo - 1) * sw - left >= w) {
    throw Failure{"invalid pooling geometry: a " + std::to_string(ho) + "×" + std::to_string(wo) + " output has windows outside the " + std::to_string(h) + "×" + std::to_string(w) + " input"};
  }
  const float* x = call.floats(1, n * h * w * c, "x");
  const float* dy = call.floats(2, n * ho * wo * c, "dy");
  float* dx = call.floats(3, n * h * w * c, "dx");
  if (channels_first) {
    // one (batch, channel) plane at a time: planes are disjoint, so the threads never write to one place
    const int64_t planes = n * c;
#pragma omp parallel for schedule(static) if (planes * h * w > 65536)
    for (int64_t p = 0; p < planes; p++) {
      const float* xp = x + p * h * w;
      const float* gp = dy + p * ho * wo;
      float* dp = dx + p * h * w;
      std::fill(dp, dp + h * w, 0.0f);
      for (int64_t oi = 0; oi < ho; oi++) {
        for (int64_t oj = 0; oj < wo; oj++) {
          int64_t best_at = -1;
          float best = 0;
          for (int64_t di = 0; di < kh; di++) {
            const int64_t i = oi * sh + di - top;
            if (i < 0 || i >= h) continue;
            for (int64_t dj = 0; dj < kw; dj++) {
              const int64_t j = oj * sw + dj - left;
              if (j < 0 || j >= w) continue;
              const float v = xp[i * w + j];
              if (best_at < 0 || v > best) {
                best = v;
                best_at = i * w + j;
              }
            }
          }
          if (best_at >= 0) dp[best_at] += gp[oi * wo + oj];
        }
      }
    }
    return info.Env().Undefined();
  }
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
  return info.Env().Undefined();
}

/** divideStabilized(g, z, epsilon, out[, by, sign]): out = m·g / (z + ε·sign(z)) with sign(0) = +1 — Zennit's
 *  stabilised division, one pass instead of the backend's six or more. m is 1, or, given `by`, the mask
 *  [by > 0] (sign 1) or [by < 0] (sign −1) as 1 or 0. The same float32 operations in the same order as the
 *  backend's kernels (no contraction to fused multiply-adds), so the same values. */
Napi::Value divide_stabilized(const Napi::CallbackInfo& info) {
  Call call(info, "divideStabilized(g, z, epsilon, out[, by, sign])", 4, 6);
  const size_t n = call.length(0, "g");
  const float* g = call.floats(0, n, "g");
  const float* z = call.floats(1, n, "z");
  const float eps = static_cast<float>(call.number(2, "epsilon"));
  float* out = call.floats(3, n, "out");
  if (call.count() == 4) {
    in_parallel(n, [=](int64_t b, int64_t e) { divide_span(e - b, g + b, z + b, eps, out + b); });
    return info.Env().Undefined();
  }
  if (call.count() != 6) throw Failure{"divideStabilized: `by` needs its `sign`"};
  const float* by = call.floats(4, n, "by");
  const int64_t sign = call.integer(5, "sign", -1);
  if (sign != 1 && sign != -1) throw Failure{"sign must be 1 or -1"};
  const float s = static_cast<float>(sign);
  in_parallel(n, [=](int64_t b, int64_t e) { divide_masked_span(e - b, g + b, z + b, eps, by + b, s, out + b); });
  return info.Env().Undefined();
}

/** multiply(a, b, out): out = a · b elementwise — the rules' reducer, input times gradient, on both cores. */
Napi::Value multiply(const Napi::CallbackInfo& info) {
  Call call(info, "multiply(a, b, out)", 3, 3);
  const size_t n = call.length(0, "a");
  const float* a = call.floats(0, n, "a");
  const float* b = call.floats(1, n, "b");
  float* out = call.floats(2, n, "out");
  in_parallel(n, [=](int64_t lo, int64_t hi) { multiply_span(hi - lo, a + lo, b + lo, out + lo); });
  return info.Env().Undefined();
}

/** combine(a, ca, b, cb, out): out = ca·a + cb·b elementwise — a linear layer's output for parameters that are a
 *  combination of two others' (Gamma's W + γ·W⁺ from W and W⁺). Float32 products and sum, in that order. */
Napi::Value combine(const Napi::CallbackInfo& info) {
  Call call(info, "combine(a, ca, b, cb, out)", 5, 5);
  const size_t n = call.length(0, "a");
  const float* a = call.floats(0, n, "a");
  const float ca = static_cast<float>(call.number(1, "ca"));
  const float* b = call.floats(2, n, "b");
  const float cb = static_cast<float>(call.number(3, "cb"));
  float* out = call.floats(4, n, "out");
  in_parallel(n, [=](int64_t lo, int64_t hi) { combine_span(hi - lo, a + lo, ca, b + lo, cb, out + lo); });
  return info.Env().Undefined();
}

/** sum(values): Σ values in double precision, for the relevance sums every run reports per layer. */
Napi::Value sum(const Napi::CallbackInfo& info) {
  Call call(info, "sum(values)", 1, 1);
  const int64_t count = static_cast<int64_t>(call.length(0, "values"));
  const float* v = call.floats(0, count, "values");
  // per-thread partial sums, added in thread order: the same total every time
  std::vector<double> partial(omp_get_max_threads(), 0.0);
  in_parallel(count, [&](int64_t b, int64_t e) { partial[omp_get_thread_num()] = sum_span(e - b, v + b); });
  double total = 0;
  for (double p : partial) total += p;
  return Napi::Number::New(info.Env(), total);
}

/** info(): what runs the kernels, for the engine's report. */
Napi::Value library_info(const Napi::CallbackInfo& info) {
  const dnnl_version_t* v = dnnl_version();
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("library", "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  result.Set("threads", omp_get_max_threads());
  return result;
}

using Kernel = Napi::Value (*)(const Napi::CallbackInfo&);

/** Holds the asynchronous signals off the calling thread while it lives; they arrive once it is gone. A signal
 *  handled on the thread's stack during oneDNN 2.6's GEMM convolution (the pointwise ones) corrupts the heap: V8's
 *  profiler, which sends SIGPROF every millisecond, made the engine abort in free(). (Outside Node too, in a C++
 *  test; not with the handler on an alternate stack: the kernel keeps data below its stack pointer.) OpenMP's
 *  threads start inside a kernel, so they inherit the mask. Faults (SIGSEGV, SIGBUS, …) stay deliverable. */
class SignalsHeld {
 public:
  SignalsHeld() {
    sigset_t held;
    sigfillset(&held);
    for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT}) sigdelset(&held, fault);
    pthread_sigmask(SIG_BLOCK, &held, &saved_);
  }
  ~SignalsHeld() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;

 private:
  sigset_t saved_;
};

/** A kernel as JavaScript calls it: signals held (SignalsHeld), and a oneDNN error says that it is one (Failures
 *  pass on as they are). */
template <Kernel kernel>
Napi::Value entry(const Napi::CallbackInfo& info) {
  SignalsHeld held;
  try {
    return kernel(info);
  } catch (const dnnl::error& e) {
    throw Failure{std::string("oneDNN: ") + e.what()};
  }
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  const std::pair<const char*, Kernel> functions[] = {
      {"conv2d", entry<conv2d>},
      {"conv2dBackwardData", entry<conv2d_backward_data>},
      {"matmul", entry<matmul>},
      {"batchMatmul", entry<batch_matmul>},
      {"copyStrided", entry<copy_strided>},
      {"maxPoolBackward", entry<max_pool_backward>},
      {"divideStabilized", entry<divide_stabilized>},
      {"multiply", entry<multiply>},
      {"combine", entry<combine>},
      {"sum", entry<sum>},
      {"releaseWeights", entry<release_weights>},
      {"info", entry<library_info>},
  };
  for (const auto& [name, function] : functions) exports.Set(name, Napi::Function::New(env, function, name));
  return exports;
}

}  // namespace

NODE_API_MODULE(NODE_GYP_MODULE_NAME, init)
