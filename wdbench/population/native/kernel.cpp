// The population kernel for the CPU, compiled on first use (wdbench.population.native).
//
// One call trains the configurations [k0, k1) of a group on every problem for `epochs` epochs of
// one shared batch order, in place on w [S, K, D] and b [S, K], and writes each epoch's row sums
// (the divergence log) into sums [E, S, K]. Configurations run along the SIMD lanes: a block of
// LANES configurations keeps its weights in L1 for the whole run, so a step reads the batch
// rows once (broadcast to every lane) and w never leaves the cache. With `scale` ([S, D]: the
// row-space coordinates' column norms) an epoch's row sum is Σ|w_j|·scale_j instead.
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

template <typename T>
inline typename Vec<T>::type splat(T x) {
    typedef typename Vec<T>::type V;
    V v;
    for (int l = 0; l < Block<T>::L; ++l) v[l] = x;
    return v;
}

// One step on a block: rows x[i] (D values each), targets yv[i], batch size NB (0: runtime `nb`).
template <typename T, int NB, int RULE, bool L1, bool L2>
inline void step(typename Vec<T>::type* __restrict W, int D, const T* const* x, const T* yv, int nb,
                 typename Vec<T>::type& bias, typename Vec<T>::type lr,
                 typename Vec<T>::type lr_a, typename Vec<T>::type lr_c,
                 typename Vec<T>::type shrink) {
    typedef typename Vec<T>::type V;
    constexpr int MAXB = NB > 0 ? NB : 64;
    const int B = NB > 0 ? NB : nb;
    // r = X_b·w, over even and odd j in two sets of sums (twice the independent FMA chains)
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
    for (int i = 0; i < B; ++i) r[i] += odd[i];
    const V lr_b = lr / splat<T>(static_cast<T>(B));
    V total = splat<T>(0);
    for (int i = 0; i < B; ++i) {
        r[i] = (r[i] + bias) - yv[i];
        total += r[i];
    }
    bias = bias - total * lr_b;
    for (int i = 0; i < B; ++i) r[i] = r[i] * lr_b;
    for (int j = 0; j < D; ++j) {
        V g = x[0][j] * r[0];
        for (int i = 1; i < B; ++i) g += x[i][j] * r[i];
        const V w = W[j];
        V v;
        if (RULE == COUPLED) {
            // the whole step as one subtraction: w − (ηc·w + g + ηa·sign(w))
            V t = g;
            if (L2) t = lr_c * w + t;
            if (L1) {
                // sign(w): +1, −1, 0 (and 0 for NaN, which w − t carries anyway)
                const V one = splat<T>(1);
                V s = splat<T>(0);
                s = (w > 0) ? one : s;
                s = (w < 0) ? -one : s;
                t = lr_a * s + t;
            }
            v = w - t;
        } else if (RULE == DECOUPLED) {
            v = w;
            if (L2) v = v - lr_c * v;
            v = v - g;
        } else {
            v = w - g;
            if (L1) {
                const V lo = -lr_a;
                V c = v;
                c = (v < lo) ? lo : c;
                c = (v > lr_a) ? lr_a : c;
                v = v - c;
            }
            if (L2) v = v / shrink;
        }
        W[j] = v;
    }
}

template <typename T, int RULE, bool L1, bool L2>
void run_block(typename Vec<T>::type* __restrict W, int D, const T* X, const T* y, int n,
               const int64_t* order, int epochs, int B, typename Vec<T>::type& bias,
               typename Vec<T>::type lr, typename Vec<T>::type lr_a, typename Vec<T>::type lr_c,
               typename Vec<T>::type shrink, const T* scale, typename Vec<T>::type* epoch_sums) {
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
    case N: step<T, N, RULE, L1, L2>(W, D, x, yv, nb, bias, lr, lr_a, lr_c, shrink); break;
                WD_CASE(5) WD_CASE(10)  // the lesson's batch and twice it; others: runtime size
#undef WD_CASE
                default: step<T, 0, RULE, L1, L2>(W, D, x, yv, nb, bias, lr, lr_a, lr_c, shrink);
            }
        }
        V total = splat<T>(0);
        if (scale) {  // Σ|w_j|·scale_j: a bound whose overflow the caller reads as divergence
            for (int j = 0; j < D; ++j) {
                const V a = W[j];
                total += ((a < 0) ? -a : a) * scale[j];
            }
        } else {
            for (int j = 0; j < D; ++j) total += W[j];
        }
        epoch_sums[e] = total + bias;
    }
}

template <typename T>
int train(int S, int n, int D, int K, int k0, int k1, int B, const T* X, const T* y,
          const int64_t* order, int epochs, int rule, int has_l1, int has_l2, T* w, T* b,
          const T* lr, const T* lr_a, const T* lr_c, const T* shrink, const T* scale, T* sums,
          int sums_stride) {
    typedef typename Vec<T>::type V;
    constexpr int L = Block<T>::L;
    if (B < 1 || B > 64 || D < 1 || n < 1) return 1;
    V* W = static_cast<V*>(std::aligned_alloc(WIDTH, sizeof(V) * D));
    V* epoch_sums = static_cast<V*>(std::aligned_alloc(WIDTH, sizeof(V) * (epochs > 0 ? epochs : 1)));
    if (!W || !epoch_sums) return 2;
    for (int s = 0; s < S; ++s) {
        const T* Xs = X + static_cast<int64_t>(s) * n * D;
        const T* ys = y + static_cast<int64_t>(s) * n;
        const T* scale_s = scale ? scale + static_cast<int64_t>(s) * D : nullptr;
        for (int kb = k0; kb < k1; kb += L) {
            const int m = k1 - kb < L ? k1 - kb : L;  // live lanes; the rest are zero padding
            V bias = splat<T>(0), vlr = splat<T>(0), va = splat<T>(0), vc = splat<T>(0);
            V vs = splat<T>(1);
            for (int l = 0; l < m; ++l) {
                const int64_t k = kb + l;
                bias[l] = b[s * static_cast<int64_t>(K) + k];
                vlr[l] = lr[k];
                va[l] = lr_a[k];
                vc[l] = lr_c[k];
                vs[l] = shrink[k];
            }
            for (int j = 0; j < D; ++j) {
                V col = splat<T>(0);
                for (int l = 0; l < m; ++l) col[l] = w[(s * static_cast<int64_t>(K) + kb + l) * D + j];
                W[j] = col;
            }
            const bool l1 = has_l1 != 0, l2 = has_l2 != 0;
#define WD_RUN(R, A, C) \
    run_block<T, R, A, C>(W, D, Xs, ys, n, order, epochs, B, bias, vlr, va, vc, vs, scale_s, \
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
                for (int l = 0; l < m; ++l) w[(s * static_cast<int64_t>(K) + kb + l) * D + j] = W[j][l];
            for (int l = 0; l < m; ++l) {
                b[s * static_cast<int64_t>(K) + kb + l] = bias[l];
                for (int e = 0; e < epochs; ++e)
                    sums[static_cast<int64_t>(e) * sums_stride + s * static_cast<int64_t>(K) + kb + l] =
                        epoch_sums[e][l];
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
