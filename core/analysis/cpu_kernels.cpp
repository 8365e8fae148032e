// CPU float32 kernels of the fixed-point search (see cpu_kernels.h).
// Letters: p points, n latent dimension. The row loops are compiled for AVX-512, AVX2 and
// baseline x86-64, picked at load time (GCC target_clones), and split over rows with
// at::parallel_for, so they follow at::set_num_threads like the tensor ops they replace.
#include "core/analysis/cpu_kernels.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <oneapi/dnnl/dnnl.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define JSLDS_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
// glibc's vector math library (libmvec) has SIMD variants of expf for SSE, AVX2 and AVX-512
// (at most 4 ulp); math.h announces them only under -ffast-math, so say it here, where the
// loops are compiled without errno (-fno-math-errno, core/analysis/CMakeLists.txt).
extern "C" float expf(float) noexcept __attribute__((simd("notinbranch")));
#else
#define JSLDS_VECTOR_CLONES
#endif

namespace jslds::analysis::cpu {
namespace {

// Rows per task: below this the threads' start-up costs more than the loop.
constexpr int64_t kGrainRows = 64;

std::string describe(const at::Tensor& t) {
  if (!t.defined()) return "undefined";
  return fmt::format("{} {} ({}){}", t.device().str(), std::string(t.dtype().name()),
                     fmt::join(t.sizes(), ", "), t.is_contiguous() ? "" : " non-contiguous");
}

void require_dense(const at::Tensor& t, const char* what) {
  if (!dense_cpu_float32(t))
    throw std::invalid_argument(fmt::format(
        "cpu kernels: {} is {}; expected a contiguous CPU float32 tensor", what, describe(t)));
}

inline float sigmoid(float y) { return 1.0f / (1.0f + expf(-y)); }

// rz ← σ(rz + b_rz) (the gates, in place over x·W_rzhᵀ), then rx = r ⊙ x, for rows [begin, end).
JSLDS_VECTOR_CLONES
void gates_and_reset(float* __restrict rz, const float* __restrict b_rz, const float* __restrict x,
                     float* __restrict rx, int64_t begin, int64_t end, int64_t n) {
  for (int64_t i = begin; i < end; ++i) {
    float* g = rz + i * 2 * n;
#pragma omp simd
    for (int64_t j = 0; j < 2 * n; ++j) g[j] = sigmoid(g[j] + b_rz[j]);
    const float* xi = x + i * n;
    float* out = rx + i * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) out[j] = g[j] * xi[j];
  }
}

// s ← σ(s + 2b_c) in place over 2(r ⊙ x)·W_chᵀ (s = σ(2y), c = 2s − 1), then
// residual = (z − 1) ⊙ (x − c) and a = s(1 − s) ⊙ (z − 1) ⊙ residual.
JSLDS_VECTOR_CLONES
void residual_and_a(const float* __restrict rz, const float* __restrict b_c2,
                    const float* __restrict x, float* __restrict s, float* __restrict residual,
                    float* __restrict a, int64_t begin, int64_t end, int64_t n) {
  for (int64_t i = begin; i < end; ++i) {
    const float* z = rz + i * 2 * n + n;
    const float* xi = x + i * n;
    float* si = s + i * n;
    float* ri = residual + i * n;
    float* ai = a + i * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const float sj = sigmoid(si[j] + b_c2[j]);
      si[j] = sj;
      const float x_minus_c = (xi[j] - 2.0f * sj) + 1.0f;
      const float z_minus_1 = z[j] - 1.0f;
      const float res = z_minus_1 * x_minus_c;
      ri[j] = res;
      ai[j] = ((sj - sj * sj) * z_minus_1) * res;
    }
  }
}

// h = [x ⊙ b ⊙ r(1 − r) | (x − c) ⊙ residual ⊙ z(1 − z)],  grad = (z − 1) ⊙ residual + r ⊙ b.
JSLDS_VECTOR_CLONES
void backward_terms(const float* __restrict rz, const float* __restrict x, const float* __restrict s,
                    const float* __restrict residual, const float* __restrict b, float* __restrict h,
                    float* __restrict grad, int64_t begin, int64_t end, int64_t n) {
  for (int64_t i = begin; i < end; ++i) {
    const float* r = rz + i * 2 * n;
    const float* z = r + n;
    const float* xi = x + i * n;
    const float* si = s + i * n;
    const float* ri = residual + i * n;
    const float* bi = b + i * n;
    float* hr = h + i * 2 * n;
    float* hz = hr + n;
    float* gi = grad + i * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const float x_minus_c = (xi[j] - 2.0f * si[j]) + 1.0f;
      hr[j] = (xi[j] * bi[j]) * (r[j] - r[j] * r[j]);
      hz[j] = (x_minus_c * ri[j]) * (z[j] - z[j] * z[j]);
      gi[j] = (z[j] - 1.0f) * ri[j] + r[j] * bi[j];
    }
  }
}

JSLDS_VECTOR_CLONES
void adam_rows(float* __restrict x, float* __restrict m, float* __restrict v,
               const float* __restrict g, int64_t begin, int64_t end, AdamConstants c) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i];
    const float mi = m[i] * c.beta1 + c.g1 * gi;
    const float vi = v[i] * c.beta2 + (c.g2 * gi) * gi;
    m[i] = mi;
    v[i] = vi;
    x[i] = x[i] + c.step * (mi / (std::sqrt(vi) + c.eps_hat));
  }
}

// Row-major C (m, n) = alpha·A (m, k)·B (k, n) + beta·C through oneDNN.
void sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
           float beta, float* c) {
  if (m == 0 || n == 0) return;
  const dnnl_status_t status = dnnl_sgemm('N', 'N', m, n, k, alpha, a, std::max<int64_t>(k, 1), b,
                                          std::max<int64_t>(n, 1), beta, c, std::max<int64_t>(n, 1));
  if (status != dnnl_success)
    throw std::runtime_error(fmt::format("oneDNN dnnl_sgemm ({}x{} by {}x{}) failed with status {}",
                                         m, k, k, n, static_cast<int>(status)));
}

}  // namespace

bool dense_cpu_float32(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous();
}

std::pair<at::Tensor, at::Tensor> gru_residual_gradient(const GruSearchWeights& w,
                                                         const at::Tensor& x_pn) {
  require_dense(x_pn, "the states");
  for (const auto* t : {&w.w_rzh_t, &w.w_rzh, &w.b_rz, &w.w_ch_t2, &w.b_c2, &w.w_ch})
    require_dense(*t, "a GRU weight");
  if (x_pn.dim() != 2)
    throw std::invalid_argument(fmt::format("cpu kernels: GRU states are ({}), expected (points, n)",
                                            fmt::join(x_pn.sizes(), ", ")));
  const int64_t p = x_pn.size(0), n = x_pn.size(1);
  auto require_shape = [&](const at::Tensor& t, std::vector<int64_t> shape, const char* name) {
    if (t.sizes() != at::IntArrayRef(shape))
      throw std::invalid_argument(fmt::format(
          "cpu kernels: GRU weight {} is ({}), expected ({}) for states of dimension {}", name,
          fmt::join(t.sizes(), ", "), fmt::join(shape, ", "), n));
  };
  require_shape(w.w_rzh_t, {n, 2 * n}, "w_rzh_t");
  require_shape(w.w_rzh, {2 * n, n}, "w_rzh");
  require_shape(w.b_rz, {2 * n}, "b_rz");
  require_shape(w.w_ch_t2, {n, n}, "w_ch_t2");
  require_shape(w.b_c2, {n}, "b_c2");
  require_shape(w.w_ch, {n, n}, "w_ch");
  at::Tensor residual = at::empty({p, n}, x_pn.options());
  at::Tensor grad = at::empty({p, n}, x_pn.options());
  const float* x_all = x_pn.data_ptr<float>();
  float* res_all = residual.data_ptr<float>();
  float* g_all = grad.data_ptr<float>();
  // Rows are independent: each thread takes one block of rows through the whole chain (its
  // products single-threaded inside the parallel region), so an iteration has one fork/join
  // instead of one per product and per loop.
  at::parallel_for(0, p, kGrainRows, [&](int64_t begin, int64_t end) {
    const int64_t rows = end - begin;
    const float* x = x_all + begin * n;
    float* res = res_all + begin * n;
    float* g = g_all + begin * n;
    // Scratch for rz (rows, 2n), s, r ⊙ x then a, b (rows, n each) and h (rows, 2n), kept
    // per thread between calls (the search calls this thousands of times with one shape).
    thread_local std::vector<float> scratch;
    const size_t block = static_cast<size_t>(rows * n);
    if (scratch.size() < 7 * block) scratch.resize(7 * block);
    float* rz = scratch.data();
    float* s = rz + 2 * block;
    float* work = s + block;
    float* b = work + block;
    float* h = b + block;
    // Forward: rz = σ(x [W_rh; W_zh]ᵀ + [b_r; b_z]), s = σ(2(W_ch (r ⊙ x) + b_c)).
    sgemm(rows, 2 * n, n, 1.0f, x, w.w_rzh_t.data_ptr<float>(), 0.0f, rz);
    gates_and_reset(rz, w.b_rz.data_ptr<float>(), x, work, 0, rows, n);
    sgemm(rows, n, n, 1.0f, work, w.w_ch_t2.data_ptr<float>(), 0.0f, s);
    // Vector–Jacobian product Jᵀv with v = residual (generator_maps.cpp derives it):
    //   b = −4·W_chᵀ[s(1−s)⊙(z−1)⊙v],  Jᵀv − v = (z−1)⊙v + r⊙b + [h_r | h_z]·[W_rh; W_zh].
    residual_and_a(rz, w.b_c2.data_ptr<float>(), x, s, res, work, 0, rows, n);
    sgemm(rows, n, n, -4.0f, work, w.w_ch.data_ptr<float>(), 0.0f, b);
    backward_terms(rz, x, s, res, b, h, g, 0, rows, n);
    sgemm(rows, n, 2 * n, 1.0f, h, w.w_rzh.data_ptr<float>(), 1.0f, g);
  });
  return {residual, grad};
}

at::Tensor row_squared_norms(const at::Tensor& r_pn) {
  require_dense(r_pn, "the residuals");
  if (r_pn.dim() != 2)
    throw std::invalid_argument(fmt::format("cpu kernels: residuals are ({}), expected (points, n)",
                                            fmt::join(r_pn.sizes(), ", ")));
  const int64_t p = r_pn.size(0), n = r_pn.size(1);
  at::Tensor out = at::empty({p}, r_pn.options().dtype(at::kDouble));
  const float* r = r_pn.data_ptr<float>();
  double* o = out.data_ptr<double>();
  at::parallel_for(0, p, kGrainRows, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* ri = r + i * n;
      double sum = 0.0;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < n; ++j) sum += static_cast<double>(ri[j]) * ri[j];
      o[i] = sum;
    }
  });
  return out;
}

void adam_step(at::Tensor& x, at::Tensor& m, at::Tensor& v, const at::Tensor& grad,
               const AdamConstants& c) {
  require_dense(x, "the Adam parameters");
  require_dense(m, "Adam's first moment");
  require_dense(v, "Adam's second moment");
  require_dense(grad, "the gradient");
  if (m.sizes() != x.sizes() || v.sizes() != x.sizes() || grad.sizes() != x.sizes())
    throw std::invalid_argument("cpu kernels: Adam's tensors differ in shape");
  const int64_t count = x.numel();
  float* xp = x.data_ptr<float>();
  float* mp = m.data_ptr<float>();
  float* vp = v.data_ptr<float>();
  const float* gp = grad.data_ptr<float>();
  at::parallel_for(0, count, kGrainRows * 64, [&](int64_t begin, int64_t end) {
    adam_rows(xp, mp, vp, gp, begin, end, c);
  });
}

}  // namespace jslds::analysis::cpu
