// The population kernel for the CPU, compiled on first use (wdbench.population.native).
//
// One call trains the configurations [k0, k1) of a group on every problem for `epochs` epochs of
// one shared batch order, in place on w [S, K, D] and b [S, K], and writes each epoch's row sums
// (the divergence log) into sums [E, S, K]. Configurations run along the SIMD lanes: a block of
// two vectors of configurations keeps its weights in L1 for the whole run, so a step reads the
// batch rows once (each value broadcast once for both vectors) and w never leaves the cache.
// The momentum and Adam kernel below keeps one vector per block (its state fills the
// registers). With `scale` ([S, D]: the row-space coordinates' column norms) an epoch's row sum
// is Σ|w_j|·scale_j instead.
//
// The arithmetic is that of wdbench.rules, in the same order (tested against it):
//   r = X_b·w + b − y_b;  b ← b − (η/B)·Σr;  r ← (η/B)·r;  g = X_bᵀ·r
//   coupled   w ← w − (ηc·w + g + ηa·sign(w))     one rounding of the whole step, as torch.optim
//   decoupled w ← (w − ηc·w) − g                   the decay outside the gradient step
//   proximal  v = w − g;  v ← v − clamp(v, −ηa, ηa);  w ← v / (1 + ηc)
// An absent part (has_l1 / has_l2 false) is skipped, as the rules skip it.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "optimizer.h"
#ifdef __AVX__
#include <immintrin.h>
#endif

namespace {

constexpr int WIDTH = 32;  // bytes of one vector: AVX2

template <typename T>
struct Vec {
    typedef T type __attribute__((vector_size(WIDTH)));
};

enum Rule { COUPLED = 0, PROXIMAL = 1, DECOUPLED = 2 };

template <typename T>
struct Block {
    typedef typename Vec<T>::type V;
    static constexpr int L = WIDTH / sizeof(T);
};

// max(a, b) = a > b ? a : b and min(a, b) = a < b ? a : b, lane by lane (b when either is NaN):
// one instruction each with AVX (vmaxps / vminps have exactly this rule), two otherwise.
template <typename V>
inline V vmax(V a, V b) {
    return (a > b) ? a : b;
}
template <typename V>
inline V vmin(V a, V b) {
    return (a < b) ? a : b;
}
#ifdef __AVX__
template <>
inline Vec<float>::type vmax(Vec<float>::type a, Vec<float>::type b) {
    const __m256 x = reinterpret_cast<__m256>(a), y = reinterpret_cast<__m256>(b);
    return reinterpret_cast<Vec<float>::type>(_mm256_max_ps(x, y));
}
template <>
inline Vec<float>::type vmin(Vec<float>::type a, Vec<float>::type b) {
    const __m256 x = reinterpret_cast<__m256>(a), y = reinterpret_cast<__m256>(b);
    return reinterpret_cast<Vec<float>::type>(_mm256_min_ps(x, y));
}
template <>
inline Vec<double>::type vmax(Vec<double>::type a, Vec<double>::type b) {
    const __m256d x = reinterpret_cast<__m256d>(a), y = reinterpret_cast<__m256d>(b);
    return reinterpret_cast<Vec<double>::type>(_mm256_max_pd(x, y));
}
template <>
inline Vec<double>::type vmin(Vec<double>::type a, Vec<double>::type b) {
    const __m256d x = reinterpret_cast<__m256d>(a), y = reinterpret_cast<__m256d>(b);
    return reinterpret_cast<Vec<double>::type>(_mm256_min_pd(x, y));
}
#endif

template <typename T>
inline typename Vec<T>::type splat(T x) {
    typedef typename Vec<T>::type V;
    V v;
    for (int l = 0; l < Block<T>::L; ++l) v[l] = x;
    return v;
}

// One step on a block of NV vectors (NV·L configurations): rows x[i] (D values each), targets
// yv[i], batch size NB (0: runtime `nb`). W holds weight j of vector v at W[j·NV + v]. Each row
// read (a broadcast) serves all NV vectors, and the NV·B sums of the forward products are the
// independent FMA chains that cover the FMA latency.
template <typename T, int NV, int NB, int RULE, bool L1, bool L2>
inline void step(typename Vec<T>::type* __restrict W, int D, const T* const* x, const T* yv, int nb,
                 typename Vec<T>::type* bias, const typename Vec<T>::type* lr,
                 const typename Vec<T>::type* lr_a, const typename Vec<T>::type* lr_c,
                 const typename Vec<T>::type* shrink) {
    typedef typename Vec<T>::type V;
    constexpr int MAXB = NB > 0 ? NB : 64;
    const int B = NB > 0 ? NB : nb;
    // r = X_b·w, one sum per row and vector over j in order. Both loops over j run unrolled by
    // two (the same operations in the same order; the float64 subgradient 5 % faster)
    V r[MAXB][NV];
    for (int i = 0; i < B; ++i)
        for (int v = 0; v < NV; ++v) r[i][v] = splat<T>(0);
#pragma GCC unroll 2
    for (int j = 0; j < D; ++j) {
        V w[NV];
        for (int v = 0; v < NV; ++v) w[v] = W[j * NV + v];
        for (int i = 0; i < B; ++i) {
            const T xij = x[i][j];
            for (int v = 0; v < NV; ++v) r[i][v] += xij * w[v];
        }
    }
    for (int v = 0; v < NV; ++v) {
        const V lr_b = lr[v] / splat<T>(static_cast<T>(B));
        V total = splat<T>(0);
        for (int i = 0; i < B; ++i) {
            r[i][v] = (r[i][v] + bias[v]) - yv[i];
            total += r[i][v];
        }
        bias[v] = bias[v] - total * lr_b;
        for (int i = 0; i < B; ++i) r[i][v] = r[i][v] * lr_b;
    }
#pragma GCC unroll 2
    for (int j = 0; j < D; ++j) {
        V g[NV];
        {
            const T x0 = x[0][j];
            for (int v = 0; v < NV; ++v) g[v] = x0 * r[0][v];
        }
        for (int i = 1; i < B; ++i) {
            const T xij = x[i][j];
            for (int v = 0; v < NV; ++v) g[v] += xij * r[i][v];
        }
        for (int q = 0; q < NV; ++q) {
            const V w = W[j * NV + q];
            V v;
            if (RULE == COUPLED) {
                // the whole step as one subtraction: w − (ηc·w + g + ηa·sign(w))
                V t = g[q];
                if (L2) t = lr_c[q] * w + t;
                if (L1) {
                    // sign(w): +1, −1, 0 (and 0 for NaN, which w − t carries anyway)
                    const V one = splat<T>(1);
                    V s = splat<T>(0);
                    s = (w > 0) ? one : s;
                    s = (w < 0) ? -one : s;
                    t = lr_a[q] * s + t;
                }
                v = w - t;
            } else if (RULE == DECOUPLED) {
                v = w;
                if (L2) v = v - lr_c[q] * v;
                v = v - g[q];
            } else {
                v = w - g[q];
                if (L1)  // v − clamp(v, −ηa, ηa); a NaN v stays NaN
                    v = v - vmin(lr_a[q], vmax(-lr_a[q], v));
                if (L2) v = v / shrink[q];
            }
            W[j * NV + q] = v;
        }
    }
}

template <typename T, int NV, int RULE, bool L1, bool L2>
void run_block(typename Vec<T>::type* __restrict W, int D, const T* X, const T* y, int n,
               const int64_t* order, int epochs, int B, typename Vec<T>::type* bias,
               const typename Vec<T>::type* lr, const typename Vec<T>::type* lr_a,
               const typename Vec<T>::type* lr_c, const typename Vec<T>::type* shrink,
               const T* scale, typename Vec<T>::type* epoch_sums) {
    typedef typename Vec<T>::type V;
    const T* x[64];
    T yv[64];
    for (int e = 0; e < epochs; ++e) {
        const int64_t* ord = order + static_cast<int64_t>(e) * n;
        for (int s0 = 0; s0 < n; s0 += B) {
            const int nb = n - s0 < B ? n - s0 : B;
            for (int i = 0; i < nb; ++i) {
                x[i] = X + ord[s0 + i] * D;
                yv[i] = y[ord[s0 + i]];
            }
            switch (nb) {
#define WD_CASE(N) \
    case N: step<T, NV, N, RULE, L1, L2>(W, D, x, yv, nb, bias, lr, lr_a, lr_c, shrink); break;
                WD_CASE(5) WD_CASE(10)  // the lesson's batch and twice it; others: runtime size
#undef WD_CASE
                default: step<T, NV, 0, RULE, L1, L2>(W, D, x, yv, nb, bias, lr, lr_a, lr_c, shrink);
            }
        }
        for (int v = 0; v < NV; ++v) {
            V total = splat<T>(0);
            if (scale) {  // Σ|w_j|·scale_j: a bound whose overflow the caller reads as divergence
                for (int j = 0; j < D; ++j) {
                    const V a = W[j * NV + v];
                    total += ((a < 0) ? -a : a) * scale[j];
                }
            } else {
                for (int j = 0; j < D; ++j) total += W[j * NV + v];
            }
            epoch_sums[e * NV + v] = total + bias[v];
        }
    }
}

// Vectors per block: a block of NV·L configurations shares each row's broadcast.
constexpr int NV = 2;

template <typename T>
int train(int S, int n, int D, int K, int k0, int k1, int B, const T* X, const T* y,
          const int64_t* order, int epochs, int rule, int has_l1, int has_l2, T* w, T* b,
          const T* lr, const T* lr_a, const T* lr_c, const T* shrink, const T* scale, T* sums,
          int sums_stride) {
    typedef typename Vec<T>::type V;
    constexpr int L = Block<T>::L;
    constexpr int BL = NV * L;  // configurations per block
    if (B < 1 || B > 64 || D < 1 || n < 1) return 1;
    V* W = static_cast<V*>(std::aligned_alloc(WIDTH, sizeof(V) * NV * D));
    V* epoch_sums =
        static_cast<V*>(std::aligned_alloc(WIDTH, sizeof(V) * NV * (epochs > 0 ? epochs : 1)));
    if (!W || !epoch_sums) return 2;
    for (int s = 0; s < S; ++s) {
        const T* Xs = X + static_cast<int64_t>(s) * n * D;
        const T* ys = y + static_cast<int64_t>(s) * n;
        const T* scale_s = scale ? scale + static_cast<int64_t>(s) * D : nullptr;
        for (int kb = k0; kb < k1; kb += BL) {
            const int m = k1 - kb < BL ? k1 - kb : BL;  // live lanes; the rest are zero padding
            V bias[NV], vlr[NV], va[NV], vc[NV], vs[NV];
            for (int v = 0; v < NV; ++v) {
                bias[v] = vlr[v] = va[v] = vc[v] = splat<T>(0);
                vs[v] = splat<T>(1);
            }
            for (int l = 0; l < m; ++l) {
                const int64_t k = kb + l;
                bias[l / L][l % L] = b[s * static_cast<int64_t>(K) + k];
                vlr[l / L][l % L] = lr[k];
                va[l / L][l % L] = lr_a[k];
                vc[l / L][l % L] = lr_c[k];
                vs[l / L][l % L] = shrink[k];
            }
            for (int j = 0; j < D; ++j) {
                V col[NV];
                for (int v = 0; v < NV; ++v) col[v] = splat<T>(0);
                for (int l = 0; l < m; ++l)
                    col[l / L][l % L] = w[(s * static_cast<int64_t>(K) + kb + l) * D + j];
                for (int v = 0; v < NV; ++v) W[j * NV + v] = col[v];
            }
            const bool l1 = has_l1 != 0, l2 = has_l2 != 0;
#define WD_RUN(R, A, C) \
    run_block<T, NV, R, A, C>(W, D, Xs, ys, n, order, epochs, B, bias, vlr, va, vc, vs, scale_s, \
                              epoch_sums)
            if (rule == DECOUPLED) {
                if (l2) WD_RUN(DECOUPLED, false, true);
                else WD_RUN(DECOUPLED, false, false);
            } else if (rule == PROXIMAL) {
                if (l1 && l2) WD_RUN(PROXIMAL, true, true);
                else if (l1) WD_RUN(PROXIMAL, true, false);
                else if (l2) WD_RUN(PROXIMAL, false, true);
                else WD_RUN(PROXIMAL, false, false);
            } else {
                if (l1 && l2) WD_RUN(COUPLED, true, true);
                else if (l1) WD_RUN(COUPLED, true, false);
                else if (l2) WD_RUN(COUPLED, false, true);
                else WD_RUN(COUPLED, false, false);
            }
#undef WD_RUN
            for (int j = 0; j < D; ++j)
                for (int l = 0; l < m; ++l)
                    w[(s * static_cast<int64_t>(K) + kb + l) * D + j] = W[j * NV + l / L][l % L];
            for (int l = 0; l < m; ++l) {
                b[s * static_cast<int64_t>(K) + kb + l] = bias[l / L][l % L];
                for (int e = 0; e < epochs; ++e)
                    sums[static_cast<int64_t>(e) * sums_stride + s * static_cast<int64_t>(K) + kb + l] =
                        epoch_sums[e * NV + l / L][l % L];
            }
        }
    }
    std::free(W);
    std::free(epoch_sums);
    return 0;
}

// ---- stateful optimizers: momentum (heavy ball, Nesterov) and Adam -------------------------
//
// The same block layout with the optimizer's state beside w (u, or m and v: one vector per
// weight, in L1 with it) and the bias's own state. The arithmetic is that of Rule.update_ and
// Optimizer.step_ (wdbench.rules, wdbench.optimizers), in torch's order:
//   r = (X_b·w + b − y_b) / B;  ∂ℓ/∂b = Σr;  g = X_bᵀ·r
//   coupled   g ← g + c·w (+ a·sign(w))       decoupled  w ← w − ηc·w (before the step)
//   the optimizer's step (optimizer.h: momentum, Nesterov, Adam; t the group's step count)
//   proximal  w ← S(w, ηa) / (1 + ηc) (after the step)
// The bias takes the optimizer's step on ∂ℓ/∂b with its own state, never the penalty.

using wd_optim::ADAM;
using wd_optim::MOMENTUM;
using wd_optim::NESTEROV;

template <typename T>
struct Hyper : wd_optim::Factors<T, typename Vec<T>::type> {  // per-block vectors, Adam's factors
    typedef typename Vec<T>::type V;
    V lr_a, lr_c, shrink, a, c;
};

template <typename T, int NB, int RULE, int OPT, bool L1, bool L2>
inline void step_state(typename Vec<T>::type* __restrict W, typename Vec<T>::type* __restrict S1,
                       typename Vec<T>::type* __restrict S2, int D, const T* const* x,
                       const T* yv, int nb, typename Vec<T>::type& bias,
                       typename Vec<T>::type* bstate, const Hyper<T>& h) {
    typedef typename Vec<T>::type V;
    constexpr int MAXB = NB > 0 ? NB : 64;
    const int B = NB > 0 ? NB : nb;
    V r[MAXB], odd[MAXB];
    for (int i = 0; i < B; ++i) r[i] = odd[i] = splat<T>(0);
    int j = 0;
    for (; j + 1 < D; j += 2) {
        const V w0 = W[j], w1 = W[j + 1];
        for (int i = 0; i < B; ++i) {
            r[i] += x[i][j] * w0;
            odd[i] += x[i][j + 1] * w1;
        }
    }
    if (j < D)
        for (int i = 0; i < B; ++i) r[i] += x[i][j] * W[j];
    const V nbv = splat<T>(static_cast<T>(B));
    V gb = splat<T>(0);
    for (int i = 0; i < B; ++i) {
        r[i] = (((r[i] + odd[i]) + bias) - yv[i]) / nbv;
        gb += r[i];
    }
    bias = wd_optim::step<OPT>(bias, gb, bstate, bstate + 1, h);
    for (int j = 0; j < D; ++j) {
        V g = x[0][j] * r[0];
        for (int i = 1; i < B; ++i) g += x[i][j] * r[i];
        V w = W[j];
        if (RULE == COUPLED) {
            if (L2) g = g + w * h.c;
            if (L1) {
                const V one = splat<T>(1);
                V s = splat<T>(0);
                s = (w > 0) ? one : s;
                s = (w < 0) ? -one : s;
                g = g + s * h.a;
            }
        } else if (RULE == DECOUPLED) {
            if (L2) w = w - w * h.lr_c;
        }
        w = wd_optim::step<OPT>(w, g, S1 + j, S2 + j, h);
        if (RULE == PROXIMAL) {
            if (L1) w = w - vmin(h.lr_a, vmax(-h.lr_a, w));  // w − clamp(w, −ηa, ηa)
            if (L2) w = w / h.shrink;
        }
        W[j] = w;
    }
}

template <typename T, int RULE, int OPT, bool L1, bool L2>
void run_block_state(typename Vec<T>::type* __restrict W, typename Vec<T>::type* __restrict S1,
                     typename Vec<T>::type* __restrict S2, int D, const T* X, const T* y, int n,
                     const int64_t* order, int epochs, int B, int64_t t0, double beta1,
                     double beta2, double eps, typename Vec<T>::type& bias,
                     typename Vec<T>::type* bstate, Hyper<T>& h,
                     typename Vec<T>::type* epoch_sums) {
    typedef typename Vec<T>::type V;
    const T* x[64];
    T yv[64];
    int64_t t = t0;
    for (int e = 0; e < epochs; ++e) {
        const int64_t* ord = order + static_cast<int64_t>(e) * n;
        for (int s0 = 0; s0 < n; s0 += B) {
            const int nb = n - s0 < B ? n - s0 : B;
            for (int i = 0; i < nb; ++i) {
                x[i] = X + ord[s0 + i] * D;
                yv[i] = y[ord[s0 + i]];
            }
            ++t;
            if (OPT == ADAM) h.adam_factors(t, beta1, beta2, eps);
            switch (nb) {
#define WD_CASE(N) \
    case N: step_state<T, N, RULE, OPT, L1, L2>(W, S1, S2, D, x, yv, nb, bias, bstate, h); break;
                WD_CASE(5)
#undef WD_CASE
                default: step_state<T, 0, RULE, OPT, L1, L2>(W, S1, S2, D, x, yv, nb, bias, bstate, h);
            }
        }
        V total = splat<T>(0);
        for (int j = 0; j < D; ++j) total += W[j];
        epoch_sums[e] = total + bias;
    }
}

template <typename T, int OPT>
void dispatch_state(int rule, bool l1, bool l2, typename Vec<T>::type* W,
                    typename Vec<T>::type* S1, typename Vec<T>::type* S2, int D, const T* X,
                    const T* y, int n, const int64_t* order, int epochs, int B, int64_t t0,
                    double beta1, double beta2, double eps, typename Vec<T>::type& bias,
                    typename Vec<T>::type* bstate, Hyper<T>& h, typename Vec<T>::type* sums) {
#define WD_RUN(R, A, C) \
    run_block_state<T, R, OPT, A, C>(W, S1, S2, D, X, y, n, order, epochs, B, t0, beta1, beta2, \
                                     eps, bias, bstate, h, sums)
    if (rule == DECOUPLED) {
        if (l2) WD_RUN(DECOUPLED, false, true);
        else WD_RUN(DECOUPLED, false, false);
    } else if (rule == PROXIMAL) {
        if (l1 && l2) WD_RUN(PROXIMAL, true, true);
        else if (l1) WD_RUN(PROXIMAL, true, false);
        else if (l2) WD_RUN(PROXIMAL, false, true);
        else WD_RUN(PROXIMAL, false, false);
    } else {
        if (l1 && l2) WD_RUN(COUPLED, true, true);
        else if (l1) WD_RUN(COUPLED, true, false);
        else if (l2) WD_RUN(COUPLED, false, true);
        else WD_RUN(COUPLED, false, false);
    }
#undef WD_RUN
}

// Like `train`, with optimizer `opt` (Opt) of hyperparameters hyper = (μ, β₁, β₂, ε), `t0` steps
// already taken, per-configuration coefficients a, c, and the state of w (ws1, ws2: [S, K, D],
// ws2 Adam's only) and of b (bs1, bs2: [S, K]), read and written back in place.
template <typename T>
int train_state(int S, int n, int D, int K, int k0, int k1, int B, const T* X, const T* y,
                const int64_t* order, int epochs, int rule, int has_l1, int has_l2, int opt,
                int64_t t0, const double* hyper, T* w, T* b, const T* lr, const T* lr_a,
                const T* lr_c, const T* shrink, const T* a, const T* c, T* ws1, T* ws2, T* bs1,
                T* bs2, T* sums, int sums_stride) {
    typedef typename Vec<T>::type V;
    constexpr int L = Block<T>::L;
    if (B < 1 || B > 64 || D < 1 || n < 1 || opt < MOMENTUM || opt > ADAM) return 1;
    const bool adam = opt == ADAM;
    V* W = static_cast<V*>(std::aligned_alloc(WIDTH, sizeof(V) * 3 * D));
    V* epoch_sums = static_cast<V*>(std::aligned_alloc(WIDTH, sizeof(V) * (epochs > 0 ? epochs : 1)));
    if (!W || !epoch_sums) return 2;
    V* S1 = W + D;
    V* S2 = W + 2 * D;
    T* const wstate[2] = {ws1, ws2};
    for (int s = 0; s < S; ++s) {
        const T* Xs = X + static_cast<int64_t>(s) * n * D;
        const T* ys = y + static_cast<int64_t>(s) * n;
        for (int kb = k0; kb < k1; kb += L) {
            const int m = k1 - kb < L ? k1 - kb : L;
            Hyper<T> h;
            h.lr = h.lr_a = h.lr_c = h.a = h.c = h.scale = h.shift = splat<T>(0);
            h.shrink = splat<T>(1);
            h.lr = splat<T>(1);  // padding lanes: no division by zero
            h.set_hyper(hyper);
            V bias = splat<T>(0), bstate[2] = {splat<T>(0), splat<T>(0)};
            for (int l = 0; l < m; ++l) {
                const int64_t k = kb + l, sk = s * static_cast<int64_t>(K) + k;
                bias[l] = b[sk];
                bstate[0][l] = bs1[sk];
                if (adam) bstate[1][l] = bs2[sk];
                h.lr[l] = lr[k];
                h.lr_a[l] = lr_a[k];
                h.lr_c[l] = lr_c[k];
                h.shrink[l] = shrink[k];
                h.a[l] = a[k];
                h.c[l] = c[k];
            }
            for (int q = 0; q < (adam ? 3 : 2); ++q) {
                T* src = q == 0 ? w : wstate[q - 1];
                V* dst = W + static_cast<int64_t>(q) * D;
                for (int j = 0; j < D; ++j) {
                    V col = splat<T>(0);
                    for (int l = 0; l < m; ++l) col[l] = src[(s * static_cast<int64_t>(K) + kb + l) * D + j];
                    dst[j] = col;
                }
            }
            const bool l1 = has_l1 != 0, l2 = has_l2 != 0;
            if (opt == ADAM)
                dispatch_state<T, ADAM>(rule, l1, l2, W, S1, S2, D, Xs, ys, n, order, epochs, B, t0,
                                        hyper[1], hyper[2], hyper[3], bias, bstate, h, epoch_sums);
            else if (opt == NESTEROV)
                dispatch_state<T, NESTEROV>(rule, l1, l2, W, S1, S2, D, Xs, ys, n, order, epochs, B,
                                            t0, hyper[1], hyper[2], hyper[3], bias, bstate, h,
                                            epoch_sums);
            else
                dispatch_state<T, MOMENTUM>(rule, l1, l2, W, S1, S2, D, Xs, ys, n, order, epochs, B,
                                            t0, hyper[1], hyper[2], hyper[3], bias, bstate, h,
                                            epoch_sums);
            for (int q = 0; q < (adam ? 3 : 2); ++q) {
                T* dst = q == 0 ? w : wstate[q - 1];
                const V* src = W + static_cast<int64_t>(q) * D;
                for (int j = 0; j < D; ++j)
                    for (int l = 0; l < m; ++l) dst[(s * static_cast<int64_t>(K) + kb + l) * D + j] = src[j][l];
            }
            for (int l = 0; l < m; ++l) {
                const int64_t sk = s * static_cast<int64_t>(K) + kb + l;
                b[sk] = bias[l];
                bs1[sk] = bstate[0][l];
                if (adam) bs2[sk] = bstate[1][l];
                for (int e = 0; e < epochs; ++e)
                    sums[static_cast<int64_t>(e) * sums_stride + sk] = epoch_sums[e][l];
            }
        }
    }
    std::free(W);
    std::free(epoch_sums);
    return 0;
}

}  // namespace

extern "C" {

int wd_train_f32(int S, int n, int D, int K, int k0, int k1, int B, const float* X, const float* y,
                 const int64_t* order, int epochs, int rule, int has_l1, int has_l2, float* w,
                 float* b, const float* lr, const float* lr_a, const float* lr_c,
                 const float* shrink, const float* scale, float* sums, int sums_stride) {
    return train<float>(S, n, D, K, k0, k1, B, X, y, order, epochs, rule, has_l1, has_l2, w, b,
                        lr, lr_a, lr_c, shrink, scale, sums, sums_stride);
}

int wd_train_f64(int S, int n, int D, int K, int k0, int k1, int B, const double* X,
                 const double* y, const int64_t* order, int epochs, int rule, int has_l1,
                 int has_l2, double* w, double* b, const double* lr, const double* lr_a,
                 const double* lr_c, const double* shrink, const double* scale, double* sums,
                 int sums_stride) {
    return train<double>(S, n, D, K, k0, k1, B, X, y, order, epochs, rule, has_l1, has_l2, w, b,
                         lr, lr_a, lr_c, shrink, scale, sums, sums_stride);
}

int wd_train_state_f32(int S, int n, int D, int K, int k0, int k1, int B, const float* X,
                       const float* y, const int64_t* order, int epochs, int rule, int has_l1,
                       int has_l2, int opt, int64_t t0, const double* hyper, float* w, float* b,
                       const float* lr, const float* lr_a, const float* lr_c,
                       const float* shrink, const float* a, const float* c, float* ws1,
                       float* ws2, float* bs1, float* bs2, float* sums, int sums_stride) {
    return train_state<float>(S, n, D, K, k0, k1, B, X, y, order, epochs, rule, has_l1, has_l2,
                              opt, t0, hyper, w, b, lr, lr_a, lr_c, shrink, a, c, ws1, ws2, bs1,
                              bs2, sums, sums_stride);
}

int wd_train_state_f64(int S, int n, int D, int K, int k0, int k1, int B, const double* X,
                       const double* y, const int64_t* order, int epochs, int rule, int has_l1,
                       int has_l2, int opt, int64_t t0, const double* hyper, double* w,
                       double* b, const double* lr, const double* lr_a, const double* lr_c,
                       const double* shrink, const double* a, const double* c, double* ws1,
                       double* ws2, double* bs1, double* bs2, double* sums, int sums_stride) {
    return train_state<double>(S, n, D, K, k0, k1, B, X, y, order, epochs, rule, has_l1, has_l2,
                               opt, t0, hyper, w, b, lr, lr_a, lr_c, shrink, a, c, ws1, ws2, bs1,
                               bs2, sums, sums_stride);
}

}

// A probe of this core's fp32 FMA throughput: `iterations` rounds of 12 independent vector FMAs
// (enough chains to cover the FMA latency). Returns the FLOPs done (the caller times them) and
// writes a value that depends on every result to `sink`.
extern "C" double wd_fma_probe(long iterations, float* sink) {
    typedef Vec<float>::type V;
    V acc[12];
    const V x = splat<float>(1.0000001f), y = splat<float>(1e-7f);
    for (int i = 0; i < 12; ++i) acc[i] = splat<float>(static_cast<float>(i));
    for (long n = 0; n < iterations; ++n) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; ++i) acc[i] = acc[i] * x + y;
    }
    float total = 0;
    for (int i = 0; i < 12; ++i)
        for (int l = 0; l < Block<float>::L; ++l) total += acc[i][l];
    *sink = total;
    return 2.0 * 12 * Block<float>::L * static_cast<double>(iterations);
}
