// Adam's update of one float32 parameter in one pass over memory, as an XLA:CPU custom call
// (the XLA FFI), for chairgen/optimizer.py; built into the same library as onednn.cc.
//
// XLA:CPU runs optax's Adam as one loop per result (new parameter, first and second moment),
// each re-reading the gradient and both moments, plus copies of the moments it needs after
// overwriting them: for FC5's 16.8M parameters four to five passes over 67 MB arrays, a tenth of
// the 128 px float32 step (docs/performance.md). This handler reads parameter, moments and
// gradient once and writes the three results in place (the Python side aliases them to the
// donated state):
//   m' = (1 - b1) g + b1 m,   v' = (1 - b2) g² + b2 v,
//   p' = p + step · (m' / c1) / (sqrt(v' / c2) + eps)
// with step = -learning rate, c1 = 1 - b1^t and c2 = 1 - b2^t computed by the caller as optax
// does, and the same order of operations as optax.adam (the compiler may fuse a multiply and an
// add, as XLA does, so results can differ from optax's in the last bit). With apply = 0 (a
// non-finite loss or gradient somewhere in the step) the results are the unchanged inputs.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// Below this many parameters one thread does the update: waking an OpenMP team costs more.
constexpr int64_t kOneThreadMaxSize = int64_t{1} << 16;

struct Coefficients {
  float b1, a1, b2, a2, eps;  // a = 1 - b, rounded to float32 as optax's (1 - decay) is
  float step, c1, c2;
};

void UpdateRange(int64_t begin, int64_t end, const float* __restrict g, const float* p,
                 const float* m, const float* v, float* p1, float* m1, float* v1,
                 const Coefficients& k) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i];
    const float mi = k.a1 * gi + k.b1 * m[i];
    const float vi = k.a2 * (gi * gi) + k.b2 * v[i];
    const float update = (mi / k.c1) / (std::sqrt(vi / k.c2) + k.eps);
    m1[i] = mi;
    v1[i] = vi;
    p1[i] = p[i] + k.step * update;
  }
}

void CopyIfDistinct(const ffi::Buffer<ffi::F32>& from, ffi::Result<ffi::Buffer<ffi::F32>>& to) {
  if (to->typed_data() != from.typed_data()) {
    std::memcpy(to->typed_data(), from.typed_data(), from.element_count() * sizeof(float));
  }
}

ffi::Error Adam(ffi::Buffer<ffi::F32> p, ffi::Buffer<ffi::F32> m, ffi::Buffer<ffi::F32> v,
                ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> scalars,
                ffi::Result<ffi::Buffer<ffi::F32>> p1, ffi::Result<ffi::Buffer<ffi::F32>> m1,
                ffi::Result<ffi::Buffer<ffi::F32>> v1, float b1, float a1, float b2, float a2,
                float eps) {
  const int64_t n = p.element_count();
  if (m.element_count() != n || v.element_count() != n || g.element_count() != n ||
      scalars.element_count() != 4) {
    return ffi::Error::InvalidArgument(
        "chairgen_adam: parameter, moments and gradient must have the same size, and the "
        "scalars be [step, 1 - b1^t, 1 - b2^t, apply]");
  }
  const float* s = scalars.typed_data();
  if (s[3] == 0.0f) {
    CopyIfDistinct(p, p1);
    CopyIfDistinct(m, m1);
    CopyIfDistinct(v, v1);
    return ffi::Error::Success();
  }
  const Coefficients k{b1, a1, b2, a2, eps, s[0], s[1], s[2]};
  const int threads = n <= kOneThreadMaxSize ? 1 : omp_get_max_threads();
#pragma omp parallel num_threads(threads)
  {
    // Contiguous ranges of whole cache lines, one per thread.
    const int64_t team = omp_get_num_threads();
    const int64_t per = ((n + team - 1) / team + 15) / 16 * 16;
    const int64_t begin = std::min(n, omp_get_thread_num() * per);
    const int64_t end = std::min(n, begin + per);
    UpdateRange(begin, end, g.typed_data(), p.typed_data(), m.typed_data(), v.typed_data(),
                p1->typed_data(), m1->typed_data(), v1->typed_data(), k);
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ChairgenAdam, Adam,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()   // parameter
                                  .Arg<ffi::Buffer<ffi::F32>>()   // first moment
                                  .Arg<ffi::Buffer<ffi::F32>>()   // second moment
                                  .Arg<ffi::Buffer<ffi::F32>>()   // gradient
                                  .Arg<ffi::Buffer<ffi::F32>>()   // step, c1, c2, apply
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("b1")
                                  .Attr<float>("a1")
                                  .Attr<float>("b2")
                                  .Attr<float>("a2")
                                  .Attr<float>("eps"));
