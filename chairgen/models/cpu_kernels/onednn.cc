// oneDNN's direct convolutions as an XLA:CPU custom call (the XLA FFI), for
// chairgen/models/cpu_kernels/onednn.py, which builds this file with the C++ compiler.
//
// Two handlers run a convolution or a transposed convolution ("deconvolution") with
// activations in NHWC and kernels in HWIO, as XLA has them: ChairgenOnednnForward
// (x [B, H, W, Ci], kernel [KH, KW, Ci, Co] -> y [B, OH, OW, Co]) and ChairgenOnednnGradients
// (x, kernel, dy -> dx, dkernel). Internally the three passes are modes 0 (forward), 1 (input
// gradient) and 2 (kernel gradient).
// oneDNN picks its own kernel layout (format `any`); the kernel is reordered into it on each
// call (it is small next to the activations), activations stay NHWC, which oneDNN's AVX-512
// and AVX2 convolutions read directly. Primitives are created once per shape and cached.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>

#include <omp.h>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using tag = dnnl::memory::format_tag;

namespace {

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Problems of fewer multiply-adds run on one thread: there an OpenMP team costs more than it
// saves, and on a busy 2-core machine waking its second thread can wait for a scheduler tick
// (4 ms, against ~0.1 ms for the whole product; measured in docs/performance.md).
constexpr int64_t kOneThreadMaxMacs = int64_t{1} << 24;

// Sets this thread's OpenMP team size (an OpenMP per-thread setting, which oneDNN reads when it
// creates and runs a primitive) for a scope; 0 leaves it as it is.
class TeamSize {
 public:
  explicit TeamSize(int threads) : saved_(omp_get_max_threads()), set_(threads > 0) {
    if (set_) omp_set_num_threads(threads);
  }
  ~TeamSize() {
    if (set_) omp_set_num_threads(saved_);
  }

 private:
  int saved_;
  bool set_;
};

struct Primitive {
  int threads = 0;  // the TeamSize it was created with and runs with
  dnnl::primitive primitive;
  memory::desc src, weights, dst;             // what the primitive reads and writes
  memory::desc user_src, user_weights, user_dst;  // NHWC, HWIO, NHWC
  std::string implementation;
  // Reordered copies where the primitive's layout differs from the user's (the kernel's, in
  // practice), allocated once: a fresh multi-MiB buffer per call would be mapped and faulted
  // in anew each time. Safe to reuse because convolutions run one at a time (`Convolution`).
  std::map<int, memory> staging;
};

struct Problem {
  int64_t mode = 0;
  bool transposed = false;
  memory::dims x, y, kernel;  // NHWC, NHWC, HWIO
  memory::data_type x_type, y_type, kernel_type;
  int64_t stride = 1, pad = 0;  // the same padding on every side

  std::string Key() const {
    std::ostringstream key;
    key << mode << ":" << transposed << ":" << stride << ":" << pad << ":"
        << int(x_type) << int(y_type) << int(kernel_type);
    for (const memory::dims* d : {&x, &y, &kernel})
      for (auto v : *d) key << "," << v;
    return key.str();
  }
};

template <typename Fwd, typename BwdData, typename BwdWeights>
void Create(const Problem& p, dnnl::algorithm algorithm, Primitive& e) {
  auto& engine = Engine();
  memory::desc weights(e.user_weights.get_dims(), p.kernel_type, tag::any);
  memory::dims strides = {p.stride, p.stride}, lo = {p.pad, p.pad}, hi = lo;
  typename Fwd::primitive_desc fwd;
  if (p.mode == 0) {
    fwd = typename Fwd::primitive_desc(engine, dnnl::prop_kind::forward_training, algorithm,
                                       e.user_src, weights, e.user_dst, strides, lo, hi);
  } else {
    // The backward passes want a forward "hint" whose inputs have the products' operand type
    // (the gradient they compute is float32 even where those are bfloat16).
    const auto operand = p.mode == 1 ? p.kernel_type : p.x_type;
    fwd = typename Fwd::primitive_desc(
        engine, dnnl::prop_kind::forward_training, algorithm,
        memory::desc(e.user_src.get_dims(), operand, tag::nhwc),
        memory::desc(e.user_weights.get_dims(), operand, tag::any),
        memory::desc(e.user_dst.get_dims(), operand, tag::nhwc), strides, lo, hi);
  }
  if (p.mode == 0) {
    e.primitive = Fwd(fwd);
    e.src = fwd.src_desc(); e.weights = fwd.weights_desc(); e.dst = fwd.dst_desc();
    e.implementation = fwd.impl_info_str();
  } else if (p.mode == 1) {
    typename BwdData::primitive_desc pd(engine, algorithm, e.user_src, weights, e.user_dst,
                                        strides, lo, hi, fwd);
    e.primitive = BwdData(pd);
    e.src = pd.diff_src_desc(); e.weights = pd.weights_desc(); e.dst = pd.diff_dst_desc();
    e.implementation = pd.impl_info_str();
  } else {
    typename BwdWeights::primitive_desc pd(engine, algorithm, e.user_src, weights, e.user_dst,
                                           strides, lo, hi, fwd);
    e.primitive = BwdWeights(pd);
    e.src = pd.src_desc(); e.weights = pd.diff_weights_desc(); e.dst = pd.diff_dst_desc();
    e.implementation = pd.impl_info_str();
  }
}

// The primitive cached under `key`, made by `make` on first use.
template <typename Make>
std::shared_ptr<Primitive> Cached(const std::string& key, Make make) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<Primitive>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  auto e = std::make_shared<Primitive>();
  make(*e);
  cache[key] = e;
  return e;
}

std::shared_ptr<Primitive> Get(const Problem& p) {
  return Cached(p.Key(), [&p](Primitive& primitive) {
    Primitive* e = &primitive;
    // Multiply-adds: every output pixel of a convolution (every input pixel of a deconvolution)
    // meets KH * KW * Ci * Co kernel taps.
    const memory::dims& pixels = p.transposed ? p.x : p.y;
    const int64_t macs = pixels[0] * pixels[1] * pixels[2] * p.kernel[0] * p.kernel[1] *
                         p.kernel[2] * p.kernel[3];
    e->threads = macs < kOneThreadMaxMacs ? 1 : 0;
    TeamSize team(e->threads);
    // oneDNN's logical dimensions: N C H W for activations, O I H W for kernels.
    e->user_src = memory::desc({p.x[0], p.x[3], p.x[1], p.x[2]}, p.x_type, tag::nhwc);
    e->user_dst = memory::desc({p.y[0], p.y[3], p.y[1], p.y[2]}, p.y_type, tag::nhwc);
    e->user_weights = memory::desc({p.kernel[3], p.kernel[2], p.kernel[0], p.kernel[1]},
                                   p.kernel_type, tag::hwio);
    if (p.transposed) {
      Create<dnnl::deconvolution_forward, dnnl::deconvolution_backward_data,
             dnnl::deconvolution_backward_weights>(p, dnnl::algorithm::deconvolution_direct, *e);
    } else {
      Create<dnnl::convolution_forward, dnnl::convolution_backward_data,
             dnnl::convolution_backward_weights>(p, dnnl::algorithm::convolution_direct, *e);
    }
  });
}

memory::data_type DataType(ffi::DataType t) {
  switch (t) {
    case ffi::DataType::F32: return memory::data_type::f32;
    case ffi::DataType::BF16: return memory::data_type::bf16;
    default: return memory::data_type::undef;
  }
}

memory::dims Dims(const ffi::AnyBuffer& b) {
  auto d = b.dimensions();
  return memory::dims(d.begin(), d.end());
}

// One pass (`mode`) of the layer on x, y and kernel, one of which is the pass's output.
// Callers hold `Running()`.
ffi::Error Execute(int64_t mode, int64_t transposed, const ffi::AnyBuffer& xb,
                   const ffi::AnyBuffer& yb, const ffi::AnyBuffer& kb, int64_t stride,
                   int64_t pad) {
  if (xb.dimensions().size() != 4 || yb.dimensions().size() != 4 ||
      kb.dimensions().size() != 4)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "operands must have rank 4");
  Problem p;
  p.mode = mode;
  p.transposed = transposed != 0;
  p.x = Dims(xb); p.y = Dims(yb); p.kernel = Dims(kb);
  p.x_type = DataType(xb.element_type());
  p.y_type = DataType(yb.element_type());
  p.kernel_type = DataType(kb.element_type());
  p.stride = stride; p.pad = pad;
  if (p.x_type == memory::data_type::undef || p.y_type == memory::data_type::undef ||
      p.kernel_type == memory::data_type::undef)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "oneDNN convolution: operands must be float32 or bfloat16");
  try {
    auto e = Get(p);
    TeamSize team(e->threads);
    auto& engine = Engine();
    dnnl::stream stream(engine);
    memory user_src(e->user_src, engine, xb.untyped_data());
    memory user_dst(e->user_dst, engine, yb.untyped_data());
    memory user_weights(e->user_weights, engine, kb.untyped_data());
    // The primitive's arguments: the user's buffers, or reordered copies where its layout
    // differs (in practice only the kernel's).
    auto prepare = [&](int slot, memory& user, const memory::desc& want, bool input) {
      if (want == user.get_desc()) return user;
      auto it = e->staging.find(slot);
      if (it == e->staging.end()) it = e->staging.emplace(slot, memory(want, engine)).first;
      memory m = it->second;
      if (input) dnnl::reorder(user, m).execute(stream, user, m);
      return m;
    };
    memory src = prepare(DNNL_ARG_SRC, user_src, e->src, mode != 1);
    memory weights = prepare(DNNL_ARG_WEIGHTS, user_weights, e->weights, mode != 2);
    memory dst = prepare(DNNL_ARG_DST, user_dst, e->dst, mode != 0);
    if (mode == 0) {
      e->primitive.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights},
                                    {DNNL_ARG_DST, dst}});
    } else if (mode == 1) {
      e->primitive.execute(stream, {{DNNL_ARG_DIFF_SRC, src}, {DNNL_ARG_WEIGHTS, weights},
                                    {DNNL_ARG_DIFF_DST, dst}});
    } else {
      e->primitive.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_WEIGHTS, weights},
                                    {DNNL_ARG_DIFF_DST, dst}});
    }
    memory& result = mode == 0 ? dst : mode == 1 ? src : weights;
    memory& user_result = mode == 0 ? user_dst : mode == 1 ? user_src : user_weights;
    if (result.get_desc() != user_result.get_desc())
      dnnl::reorder(result, user_result).execute(stream, result, user_result);
    stream.wait();
  } catch (const dnnl::error& err) {
    return ffi::Error(ffi::ErrorCode::kInternal,
                      std::string("oneDNN convolution failed: ") + err.what());
  }
  return ffi::Error::Success();
}

// One convolution at a time: each runs on all cores through OpenMP already, and XLA's
// threads would otherwise start two at once, oversubscribing the cores.
std::mutex& Running() {
  static std::mutex running;
  return running;
}

// y = layer(x, kernel).
ffi::Error Forward(ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::Result<ffi::AnyBuffer> y,
                   int64_t transposed, int64_t stride, int64_t pad) {
  std::lock_guard<std::mutex> one_at_a_time(Running());
  return Execute(0, transposed, x, *y, kernel, stride, pad);
}

// dx and dkernel from dy, one after the other in one call: two calls would be independent ops
// that XLA starts on two threads at once, and the one left waiting for the other wakes up late
// (a scheduler tick, 4 ms, on a 2-core machine whose cores the first keeps busy).
ffi::Error Gradients(ffi::AnyBuffer x, ffi::AnyBuffer kernel, ffi::AnyBuffer dy,
                     ffi::Result<ffi::AnyBuffer> dx, ffi::Result<ffi::AnyBuffer> dkernel,
                     int64_t transposed, int64_t stride, int64_t pad) {
  std::lock_guard<std::mutex> one_at_a_time(Running());
  ffi::Error error = Execute(1, transposed, *dx, dy, kernel, stride, pad);
  if (error.failure()) return error;
  return Execute(2, transposed, x, dy, *dkernel, stride, pad);
}

// The matmul primitive for logical a [M, K] · b [K, N] -> float32 c [M, N], a or b stored
// transposed (format `ba`: nothing is copied) where asked.
std::shared_ptr<Primitive> GetMatmul(const memory::dims& a_dims, const memory::dims& b_dims,
                                     memory::data_type a_type, memory::data_type b_type,
                                     bool transpose_a, bool transpose_b) {
  std::ostringstream key;
  key << "matmul:" << transpose_a << transpose_b << int(a_type) << int(b_type);
  for (auto v : a_dims) key << "," << v;
  for (auto v : b_dims) key << "," << v;
  return Cached(key.str(), [&](Primitive& e) {
    e.threads = a_dims[0] * a_dims[1] * b_dims[1] < kOneThreadMaxMacs ? 1 : 0;
    TeamSize team(e.threads);
    e.src = memory::desc(a_dims, a_type, transpose_a ? tag::ba : tag::ab);
    e.weights = memory::desc(b_dims, b_type, transpose_b ? tag::ba : tag::ab);
    e.dst = memory::desc({a_dims[0], b_dims[1]}, memory::data_type::f32, tag::ab);
    dnnl::matmul::primitive_desc pd(Engine(), e.src, e.weights, e.dst);
    e.primitive = dnnl::matmul(pd);
    e.implementation = pd.impl_info_str();
  });
}

// c = op(a) · op(b) for 2-D a and b: the FC layers' forward product and input gradient.
ffi::Error Matmul(ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::Result<ffi::AnyBuffer> c,
                  int64_t transpose_a, int64_t transpose_b) {
  if (a.dimensions().size() != 2 || b.dimensions().size() != 2 || c->dimensions().size() != 2)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument, "oneDNN matmul: operands must be 2-D");
  const auto a_type = DataType(a.element_type()), b_type = DataType(b.element_type());
  if (a_type == memory::data_type::undef || b_type == memory::data_type::undef ||
      c->element_type() != ffi::DataType::F32)
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "oneDNN matmul: float32 or bfloat16 operands, a float32 result");
  const memory::dims ad = Dims(a), bd = Dims(b), cd = Dims(*c);
  const memory::dims a_dims = transpose_a ? memory::dims{ad[1], ad[0]} : ad;
  const memory::dims b_dims = transpose_b ? memory::dims{bd[1], bd[0]} : bd;
  if (a_dims[1] != b_dims[0] || cd[0] != a_dims[0] || cd[1] != b_dims[1])
    return ffi::Error(ffi::ErrorCode::kInvalidArgument,
                      "oneDNN matmul: [" + std::to_string(a_dims[0]) + ", " +
                          std::to_string(a_dims[1]) + "] x [" + std::to_string(b_dims[0]) +
                          ", " + std::to_string(b_dims[1]) + "] cannot give [" +
                          std::to_string(cd[0]) + ", " + std::to_string(cd[1]) + "]");
  try {
    std::lock_guard<std::mutex> one_at_a_time(Running());
    auto e = GetMatmul(a_dims, b_dims, a_type, b_type, transpose_a, transpose_b);
    TeamSize team(e->threads);
    auto& engine = Engine();
    dnnl::stream stream(engine);
    e->primitive.execute(stream,
                         {{DNNL_ARG_SRC, memory(e->src, engine, a.untyped_data())},
                          {DNNL_ARG_WEIGHTS, memory(e->weights, engine, b.untyped_data())},
                          {DNNL_ARG_DST, memory(e->dst, engine, c->untyped_data())}});
    stream.wait();
  } catch (const dnnl::error& err) {
    return ffi::Error(ffi::ErrorCode::kInternal,
                      std::string("oneDNN matmul failed: ") + err.what());
  }
  return ffi::Error::Success();
}

}  // namespace

// The layer's geometry: the attributes both handlers take after their buffers.
template <typename Binding>
auto WithGeometry(Binding binding) {
  return std::move(binding)
      .template Attr<int64_t>("transposed")
      .template Attr<int64_t>("stride")
      .template Attr<int64_t>("pad");
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(ChairgenOnednnForward, Forward,
                              WithGeometry(ffi::Ffi::Bind()
                                               .Arg<ffi::AnyBuffer>()
                                               .Arg<ffi::AnyBuffer>()
                                               .Ret<ffi::AnyBuffer>()));

XLA_FFI_DEFINE_HANDLER_SYMBOL(ChairgenOnednnMatmul, Matmul,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<int64_t>("transpose_a")
                                  .Attr<int64_t>("transpose_b"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(ChairgenOnednnGradients, Gradients,
                              WithGeometry(ffi::Ffi::Bind()
                                               .Arg<ffi::AnyBuffer>()
                                               .Arg<ffi::AnyBuffer>()
                                               .Arg<ffi::AnyBuffer>()
                                               .Ret<ffi::AnyBuffer>()
                                               .Ret<ffi::AnyBuffer>()));

namespace {

// Writes the implementation name of the primitive that `get` returns into out (a C string);
// returns 0 and writes nothing where oneDNN has no primitive for it or the name does not fit.
template <typename GetPrimitive>
int WriteImplementation(GetPrimitive get, char* out, int64_t out_size) {
  try {
    std::string s = get()->implementation;
    if (int64_t(s.size()) >= out_size) return 0;
    s.copy(out, s.size());
    out[s.size()] = 0;
    return 1;
  } catch (const dnnl::error&) {
    return 0;
  }
}

}  // namespace

// The oneDNN implementation a problem runs (e.g. "brgconv:avx512_core"; "ref" in the name means
// oneDNN has no JIT kernel for it), for `cpu_kernels` to choose by, tests and docs. Shapes as
// in the handler; bf16 != 0: the products read bfloat16 (their result stays float32).
// Returns 0 and writes nothing where oneDNN has no implementation at all.
extern "C" int chairgen_onednn_implementation(int64_t mode, int64_t transposed, int64_t bf16,
                                              const int64_t* x, const int64_t* y,
                                              const int64_t* kernel, int64_t stride,
                                              int64_t pad, char* out, int64_t out_size) {
  Problem p;
  p.mode = mode;
  p.transposed = transposed != 0;
  p.x = memory::dims(x, x + 4); p.y = memory::dims(y, y + 4);
  p.kernel = memory::dims(kernel, kernel + 4);
  const auto f32 = memory::data_type::f32;
  const auto operand = bf16 ? memory::data_type::bf16 : f32;
  p.x_type = mode == 1 ? f32 : operand;
  p.y_type = mode == 0 ? f32 : operand;
  p.kernel_type = mode == 2 ? f32 : operand;
  p.stride = stride; p.pad = pad;
  return WriteImplementation([&p] { return Get(p); }, out, out_size);
}

// The same for a matmul of logical a [m, k] · b [k, n] (stored transposed where asked).
extern "C" int chairgen_onednn_matmul_implementation(int64_t m, int64_t k, int64_t n,
                                                     int64_t transpose_a, int64_t transpose_b,
                                                     int64_t bf16, char* out,
                                                     int64_t out_size) {
  const auto operand = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  return WriteImplementation(
      [&] {
        return GetMatmul({m, k}, {k, n}, operand, operand, transpose_a != 0, transpose_b != 0);
      },
      out, out_size);
}
