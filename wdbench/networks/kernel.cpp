// The MLP population kernel for the CPU, compiled on first use (wdbench.networks._native).
//
// Networks run along the SIMD lanes: a lane group of LANES networks of one problem shares every
// batch row (one shared batch order), so a step reads a row once, broadcast to every lane, and
// each weight of the group is one vector. A call trains the lane groups [g0, g1) of every problem
// for `epochs` epochs, each group taking all its steps while its weights stay in cache.
//
// Packed parameters, per (problem s, lane group g): for each layer its weight [out][in] then its
// bias [out], one vector per entry (P vectors in all); the optimizer's state has the same layout.
// Factors per lane: η, ηc, c, 1 + ηc ([G][LANES] each).
//
// The arithmetic is that of wdbench.networks._batched (tested against it and nn.Sequential):
//   z = h·Wᵀ + b, h = relu(z) between layers; d = ∂ℓ/∂z at the output (softmax − onehot, or
//   ŷ − y, over B); ∂ℓ/∂W = dᵀ·h_in, ∂ℓ/∂b = Σ_rows d, d ← (d·W_old) ⊙ [h_in > 0] one layer down;
//   then per weight: coupled g ← g + c·w; decoupled w ← w − ηc·w; the optimizer's step
//   (optimizer.h); proximal w ← w / (1 + ηc); the bias takes the optimizer's step alone. The
//   softmax's exp is `vexp` (vectorized, within ~2 units in the last place of std::exp).
#include <cmath>
#include <cstdint>
#include <vector>

#include "optimizer.h"  // wdbench/population/native: the optimizer's step

namespace {

constexpr int WIDTH = 32;  // bytes of one vector: AVX2
constexpr int MAXB = 64;   // most rows of a batch

template <typename T>
struct Vec {
    typedef T type __attribute__((vector_size(WIDTH)));
    static constexpr int L = WIDTH / sizeof(T);
};

enum Rule { PLAIN = 0, COUPLED = 1, DECOUPLED = 2, PROXIMAL = 3 };
using wd_optim::ADAM;
using wd_optim::MOMENTUM;
using wd_optim::NESTEROV;
using wd_optim::SGD;

template <typename T>
inline typename Vec<T>::type splat(T x) {
    typename Vec<T>::type v;
    for (int l = 0; l < Vec<T>::L; ++l) v[l] = x;
    return v;
}

// exp of every lane, to within a few units in the last place (std::exp per lane is a scalar
// call): x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor polynomial (degree 7 in float32,
// 12 in float64), times 2ⁿ built in the exponent bits. NaN stays NaN; below the smallest
// normal result it is 0 (std::exp would give a subnormal), above the largest it is inf.
template <typename T>
struct ExpParts;
template <>
struct ExpParts<float> {
    typedef int32_t I __attribute__((vector_size(WIDTH)));
    static constexpr int DEGREE = 7, MANTISSA = 23, BIAS = 127;
    static constexpr float LO = -87.3365f, HI = 88.7228f, MAGIC = 12582912.0f;  // 1.5·2²³
    static constexpr float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
};
template <>
struct ExpParts<double> {
    typedef int64_t I __attribute__((vector_size(WIDTH)));
    static constexpr int DEGREE = 12, MANTISSA = 52, BIAS = 1023;
    static constexpr double LO = -708.3964, HI = 709.7827, MAGIC = 6755399441055744.0;  // 1.5·2⁵²
    static constexpr double LN2_HI = 6.93147180369123816490e-01;
    static constexpr double LN2_LO = 1.90821492927058770002e-10;
};

template <typename T>
inline typename Vec<T>::type vexp(typename Vec<T>::type x) {
    typedef typename Vec<T>::type V;
    typedef ExpParts<T> E;
    typedef typename E::I I;
    const V inside = x < E::LO ? splat<T>(E::LO) : (x > E::HI ? splat<T>(E::HI) : x);
    V n = inside * T(1.4426950408889634) + E::MAGIC;  // round to nearest: n + 1.5·2^MANTISSA
    n -= E::MAGIC;
    const V r = (x - n * E::LN2_HI) - n * E::LN2_LO;
    V p = splat<T>(1);  // p = 1 + r(1 + r/2(1 + r/3(…))) = Σ r^k/k!, from the top term down
    for (int k = E::DEGREE; k >= 1; --k) p = p * r * (T(1) / T(k)) + T(1);
    const I k = __builtin_convertvector(n, I);
    const I half = k >> 1;  // 2ⁿ as 2^half · 2^(n − half): both normal over the whole range
    const I bits1 = (half + E::BIAS) << E::MANTISSA, bits2 = (k - half + E::BIAS) << E::MANTISSA;
    V scale1, scale2;
    __builtin_memcpy(&scale1, &bits1, sizeof scale1);
    __builtin_memcpy(&scale2, &bits2, sizeof scale2);
    const V out = p * scale1 * scale2;
    return x < E::LO ? splat<T>(0) : (x > E::HI ? splat<T>(__builtin_inf()) : out);
}

template <typename T>
struct Hyper : wd_optim::Factors<T, typename Vec<T>::type> {  // one lane group's factors
    typedef typename Vec<T>::type V;
    V lr_c, c, shrink;
};

// The rule around the optimizer's step for one weight vector.
template <typename T, int OPT, int RULE>
inline void update(typename Vec<T>::type* p, typename Vec<T>::type g, typename Vec<T>::type* s1,
                   typename Vec<T>::type* s2, const Hyper<T>& h) {
    typedef typename Vec<T>::type V;
    V w = *p;
    if (RULE == COUPLED) g = g + w * h.c;
    if (RULE == DECOUPLED) w = w - w * h.lr_c;
    w = wd_optim::step<OPT>(w, g, s1, s2, h);
    if (RULE == PROXIMAL) w = w / h.shrink;
    *p = w;
}

// z[b][o] = bias[o] + Σ_i in(b, i)·W[o][i]; `in` is a shared row (scalars) or lane vectors.
template <typename T, int NB, bool SHARED>
inline void forward(const typename Vec<T>::type* __restrict W,
                    const typename Vec<T>::type* __restrict bias, int in, int out,
                    const T* const* rows, const typename Vec<T>::type* __restrict h, int nb,
                    typename Vec<T>::type* __restrict z) {
    typedef typename Vec<T>::type V;
    const int B = NB > 0 ? NB : nb;
    for (int o = 0; o < out; ++o) {
        V acc[NB > 0 ? NB : MAXB];
        for (int b = 0; b < B; ++b) acc[b] = splat<T>(0);
        const V* w = W + o * in;
        for (int i = 0; i < in; ++i) {
            const V wi = w[i];
            for (int b = 0; b < B; ++b) {
                if (SHARED)
                    acc[b] += rows[b][i] * wi;
                else
                    acc[b] += h[b * in + i] * wi;
            }
        }
        for (int b = 0; b < B; ++b) z[b * out + o] = acc[b] + bias[o];
    }
}

// d_in[b][i] = (Σ_o d[b][o]·W[o][i]) · [h[b][i] > 0]
template <typename T, int NB>
inline void backprop(const typename Vec<T>::type* __restrict W, int in, int out,
                     const typename Vec<T>::type* __restrict d,
                     const typename Vec<T>::type* __restrict h, int nb,
                     typename Vec<T>::type* __restrict d_in) {
    typedef typename Vec<T>::type V;
    const int B = NB > 0 ? NB : nb;
    for (int i = 0; i < in; ++i) {
        V acc[NB > 0 ? NB : MAXB];
        for (int b = 0; b < B; ++b) acc[b] = splat<T>(0);
        for (int o = 0; o < out; ++o) {
            const V wi = W[o * in + i];
            for (int b = 0; b < B; ++b) acc[b] += d[b * out + o] * wi;
        }
        for (int b = 0; b < B; ++b) {
            const V hb = h[b * in + i];
            V mask;
            for (int l = 0; l < Vec<T>::L; ++l) mask[l] = hb[l] > 0 ? T(1) : T(0);
            d_in[b * in + i] = acc[b] * mask;
        }
    }
}

// Row o of ∂ℓ/∂W = dᵀ·h_in into g [in], and ∂ℓ/∂b_o = Σ_rows d into gb.
template <typename T, int NB, bool SHARED>
void grad_row(const typename Vec<T>::type* __restrict d, int out, int o, const T* const* rows,
              const typename Vec<T>::type* __restrict h, int in, int nb,
              typename Vec<T>::type* __restrict g, typename Vec<T>::type& gb) {
    typedef typename Vec<T>::type V;
    const int B = NB > 0 ? NB : nb;
    V db[NB > 0 ? NB : MAXB];
    for (int b = 0; b < B; ++b) db[b] = d[b * out + o];
    for (int i = 0; i < in; ++i) {
        V acc = splat<T>(0);
        for (int b = 0; b < B; ++b) {
            if (SHARED)
                acc += db[b] * rows[b][i];
            else
                acc += db[b] * h[b * in + i];
        }
        g[i] = acc;
    }
    V sum = splat<T>(0);
    for (int b = 0; b < B; ++b) sum += db[b];
    gb = sum;
}

// The rule and the optimizer's step on n weights p with gradients g (and their states).
template <typename T, int OPT, int RULE>
void update_row(typename Vec<T>::type* __restrict p, const typename Vec<T>::type* __restrict g,
                typename Vec<T>::type* __restrict s1, typename Vec<T>::type* __restrict s2, int n,
                const Hyper<T>& hy) {
    for (int i = 0; i < n; ++i)
        update<T, OPT, RULE>(p + i, g[i], OPT == SGD ? nullptr : s1 + i,
                             OPT == ADAM ? s2 + i : nullptr, hy);
}

// The products of one batch size (NB > 0: unrolled; 0: any size up to MAXB).
template <typename T>
struct Products {
    typedef typename Vec<T>::type V;
    void (*forward_in)(const V*, const V*, int, int, const T* const*, const V*, int, V*);
    void (*forward_hidden)(const V*, const V*, int, int, const T* const*, const V*, int, V*);
    void (*backprop)(const V*, int, int, const V*, const V*, int, V*);
    void (*grad_in)(const V*, int, int, const T* const*, const V*, int, int, V*, V&);
    void (*grad_hidden)(const V*, int, int, const T* const*, const V*, int, int, V*, V&);
};

template <typename T, int NB>
Products<T> products_of() {
    return {forward<T, NB, true>, forward<T, NB, false>, backprop<T, NB>, grad_row<T, NB, true>,
            grad_row<T, NB, false>};
}

template <typename T>
Products<T> products(int nb) {
    switch (nb) {
        case 1: return products_of<T, 1>();
        case 2: return products_of<T, 2>();
        case 3: return products_of<T, 3>();
        case 4: return products_of<T, 4>();
        case 5: return products_of<T, 5>();
        case 6: return products_of<T, 6>();
        case 7: return products_of<T, 7>();
        case 8: return products_of<T, 8>();
        default: return products_of<T, 0>();
    }
}

// d = ∂ℓ/∂z of the mean loss over the batch: softmax(z) − onehot(y), or z − y; over B.
template <typename T>
inline void loss_grad(typename Vec<T>::type* __restrict z, int C, int B, const int64_t* cls,
                      const T* yreg, typename Vec<T>::type* __restrict d) {
    typedef typename Vec<T>::type V;
    const T inv = T(B);
    for (int b = 0; b < B; ++b) {
        V* zb = z + b * C;
        V* db = d + b * C;
        if (cls == nullptr) {
            db[0] = (zb[0] - yreg[b]) / inv;
            continue;
        }
        V top = zb[0];
        for (int c = 1; c < C; ++c)
            for (int l = 0; l < Vec<T>::L; ++l) top[l] = zb[c][l] > top[l] ? zb[c][l] : top[l];
        V sum = splat<T>(0);
        for (int c = 0; c < C; ++c) {
            const V e = vexp<T>(zb[c] - top);
            db[c] = e;
            sum += e;
        }
        const int64_t k = cls[b];
        for (int c = 0; c < C; ++c) {
            V p = db[c] / sum;
            if (c == k) p -= T(1);
            db[c] = p / inv;
        }
    }
}

struct Shape {
    int layers;            // number of weight matrices
    const int* dims;       // layers + 1 widths, input first
    std::vector<int> off;  // vector offset of layer l's weight; its bias follows at off + out·in
    int size = 0;          // vectors of one network's parameters
    Shape(int L, const int* widths) : layers(L), dims(widths) {
        for (int l = 0; l < L; ++l) {
            off.push_back(size);
            size += dims[l + 1] * dims[l] + dims[l + 1];
        }
    }
};

template <typename T>
struct Scratch {
    typedef typename Vec<T>::type V;
    std::vector<std::vector<V>> act;  // act[l]: [B][dims[l]] activations into layer l (l ≥ 1)
    std::vector<V> z, d, d_in;        // output logits, and the two backward buffers
    std::vector<V> g;                 // one row of a weight gradient
    Scratch(const Shape& s) {
        int wide = 0;
        for (int l = 0; l <= s.layers; ++l) wide = s.dims[l] > wide ? s.dims[l] : wide;
        act.resize(s.layers);
        for (int l = 1; l < s.layers; ++l) act[l].resize(MAXB * s.dims[l]);
        z.resize(MAXB * s.dims[s.layers]);
        d.resize(MAXB * wide);
        d_in.resize(MAXB * wide);
        g.resize(wide);
    }
};

// One step of a lane group on the rows `rows` (nb of them) with the products `k`.
template <typename T, int OPT, int RULE>
void step(const Shape& s, Scratch<T>& sc, const Products<T>& k, typename Vec<T>::type* P,
          typename Vec<T>::type* S1, typename Vec<T>::type* S2, const T* const* rows, int nb,
          const int64_t* cls, const T* yreg, const Hyper<T>& hy) {
    typedef typename Vec<T>::type V;
    const int L = s.layers;
    for (int l = 0; l < L; ++l) {
        const int in = s.dims[l], out = s.dims[l + 1];
        const V* W = P + s.off[l];
        V* z = l == L - 1 ? sc.z.data() : sc.act[l + 1].data();
        if (l == 0)
            k.forward_in(W, W + out * in, in, out, rows, nullptr, nb, z);
        else
            k.forward_hidden(W, W + out * in, in, out, nullptr, sc.act[l].data(), nb, z);
        if (l < L - 1)
            for (int j = 0; j < nb * out; ++j)
                for (int q = 0; q < Vec<T>::L; ++q) z[j][q] = z[j][q] < 0 ? T(0) : z[j][q];
    }
    loss_grad<T>(sc.z.data(), s.dims[L], nb, cls, yreg, sc.d.data());
    V* g = sc.g.data();
    for (int l = L - 1; l >= 0; --l) {
        const int in = s.dims[l], out = s.dims[l + 1], nw = out * in;
        V* W = P + s.off[l];
        V* W1 = S1 == nullptr ? nullptr : S1 + s.off[l];
        V* W2 = S2 == nullptr ? nullptr : S2 + s.off[l];
        const V* h = l == 0 ? nullptr : sc.act[l].data();
        if (l > 0) k.backprop(W, in, out, sc.d.data(), h, nb, sc.d_in.data());
        for (int o = 0; o < out; ++o) {
            V gb;
            (l == 0 ? k.grad_in : k.grad_hidden)(sc.d.data(), out, o, rows, h, in, nb, g, gb);
            const int row = o * in;
            update_row<T, OPT, RULE>(W + row, g, W1 ? W1 + row : nullptr, W2 ? W2 + row : nullptr,
                                     in, hy);
            update_row<T, OPT, PLAIN>(W + nw + o, &gb, W1 ? W1 + nw + o : nullptr,
                                      W2 ? W2 + nw + o : nullptr, 1, hy);
        }
        if (l > 0) sc.d.swap(sc.d_in);
    }
}

// Every lane group of [g0, g1) on every problem through `epochs` epochs of `order` [E, n];
// `finite` [S, G·LANES] gets 1 for a lane whose parameters are all finite after the last one.
template <typename T, int OPT, int RULE>
int run(int S, int m, int L, const int* dims, int G, int g0, int g1, int B, const T* X,
        const int64_t* cls, const T* yreg, const int64_t* order, int n, int epochs, int64_t step0,
        const double* hyper, T* params, T* state1, T* state2, const T* factors, uint8_t* finite) {
    typedef typename Vec<T>::type V;
    constexpr int LN = Vec<T>::L;
    const Shape s(L, dims);
    const int P = s.size;
    const int d = dims[0];
    Scratch<T> sc(s);
    const Products<T> full = products<T>(B), part = products<T>(0);
    const int steps = (n + B - 1) / B;
    Hyper<T> hy;
    hy.set_hyper(hyper);
    const T* rows[MAXB];
    int64_t c_b[MAXB];
    T y_b[MAXB];
    for (int si = 0; si < S; ++si) {
        const T* Xs = X + (int64_t)si * m * d;
        for (int g = g0; g < g1; ++g) {
            const int64_t base = ((int64_t)si * G + g) * P;
            V* Pg = reinterpret_cast<V*>(params) + base;
            V* S1 = state1 == nullptr ? nullptr : reinterpret_cast<V*>(state1) + base;
            V* S2 = state2 == nullptr ? nullptr : reinterpret_cast<V*>(state2) + base;
            const V* f = reinterpret_cast<const V*>(factors);
            hy.lr = f[0 * G + g];
            hy.lr_c = f[1 * G + g];
            hy.c = f[2 * G + g];
            hy.shrink = f[3 * G + g];
            for (int e = 0; e < epochs; ++e) {
                const int64_t* row = order + (int64_t)e * n;
                for (int t = 0; t < steps; ++t) {
                    const int nb = n - t * B < B ? n - t * B : B;
                    for (int b = 0; b < nb; ++b) {
                        const int64_t r = row[t * B + b];
                        rows[b] = Xs + r * d;
                        if (cls != nullptr) c_b[b] = cls[(int64_t)si * m + r];
                        if (yreg != nullptr) y_b[b] = yreg[(int64_t)si * m + r];
                    }
                    if (OPT == ADAM)
                        hy.adam_factors(step0 + (int64_t)e * steps + t + 1, hyper[1], hyper[2],
                                        hyper[3]);
                    step<T, OPT, RULE>(s, sc, nb == B ? full : part, Pg, S1, S2, rows, nb,
                                       cls == nullptr ? nullptr : c_b,
                                       yreg == nullptr ? nullptr : y_b, hy);
                }
            }
            V bad = splat<T>(0);
            for (int j = 0; j < P; ++j) bad += Pg[j] - Pg[j];  // NaN unless every entry is finite
            for (int l = 0; l < LN; ++l)
                finite[(int64_t)si * G * LN + g * LN + l] = bad[l] == T(0) ? 1 : 0;
        }
    }
    return 0;
}

template <typename T, int OPT>
int by_rule(int rule, int S, int m, int L, const int* dims, int G, int g0, int g1, int B,
            const T* X, const int64_t* cls, const T* yreg, const int64_t* order, int n, int epochs,
            int64_t step0, const double* hyper, T* params, T* state1, T* state2, const T* factors,
            uint8_t* finite) {
#define WD_ARGS S, m, L, dims, G, g0, g1, B, X, cls, yreg, order, n, epochs, step0, hyper, params, \
                state1, state2, factors, finite
    switch (rule) {
        case PLAIN: return run<T, OPT, PLAIN>(WD_ARGS);
        case COUPLED: return run<T, OPT, COUPLED>(WD_ARGS);
        case DECOUPLED: return run<T, OPT, DECOUPLED>(WD_ARGS);
        case PROXIMAL: return run<T, OPT, PROXIMAL>(WD_ARGS);
        default: return 2;
    }
}

template <typename T>
int train(int opt, int rule, int S, int m, int L, const int* dims, int G, int g0, int g1, int B,
          const T* X, const int64_t* cls, const T* yreg, const int64_t* order, int n, int epochs,
          int64_t step0, const double* hyper, T* params, T* state1, T* state2, const T* factors,
          uint8_t* finite) {
    if (B < 1 || B > MAXB) return 1;
    switch (opt) {
        case SGD: return by_rule<T, SGD>(rule, WD_ARGS);
        case MOMENTUM: return by_rule<T, MOMENTUM>(rule, WD_ARGS);
        case NESTEROV: return by_rule<T, NESTEROV>(rule, WD_ARGS);
        case ADAM: return by_rule<T, ADAM>(rule, WD_ARGS);
        default: return 3;
    }
}

// The mean loss and the count of correct rows of every lane on the rows X [S, m, d]: the forward
// pass of `step` over ROWS rows at a time; a row is correct when its largest logit (the first
// one among equals) is its class and every logit is finite.
constexpr int ROWS = 8;

template <typename T>
int evaluate(int S, int m, int L, const int* dims, int G, int g0, int g1, const T* X,
             const int64_t* cls, const T* yreg, const T* params, double* loss, double* correct) {
    typedef typename Vec<T>::type V;
    constexpr int LN = Vec<T>::L;
    const Shape s(L, dims);
    const int P = s.size;
    const int d = dims[0], C = dims[L];
    Scratch<T> sc(s);
    const T* rows[ROWS];
    for (int si = 0; si < S; ++si) {
        const T* Xs = X + (int64_t)si * m * d;
        for (int g = g0; g < g1; ++g) {
            const V* Pg = reinterpret_cast<const V*>(params) + ((int64_t)si * G + g) * P;
            double total[LN], right[LN];
            for (int l = 0; l < LN; ++l) total[l] = right[l] = 0;
            for (int r0 = 0; r0 < m; r0 += ROWS) {
                const int nb = m - r0 < ROWS ? m - r0 : ROWS;
                for (int b = 0; b < nb; ++b) rows[b] = Xs + (int64_t)(r0 + b) * d;
                for (int l = 0; l < L; ++l) {
                    const int in = dims[l], out = dims[l + 1];
                    const V* W = Pg + s.off[l];
                    V* z = l == L - 1 ? sc.z.data() : sc.act[l + 1].data();
                    if (l == 0) {
                        if (nb == ROWS)
                            forward<T, ROWS, true>(W, W + out * in, in, out, rows, nullptr, nb, z);
                        else
                            forward<T, 0, true>(W, W + out * in, in, out, rows, nullptr, nb, z);
                    } else {
                        if (nb == ROWS)
                            forward<T, ROWS, false>(W, W + out * in, in, out, nullptr,
                                                    sc.act[l].data(), nb, z);
                        else
                            forward<T, 0, false>(W, W + out * in, in, out, nullptr,
                                                 sc.act[l].data(), nb, z);
                    }
                    if (l < L - 1)
                        for (int j = 0; j < nb * out; ++j)
                            for (int k = 0; k < LN; ++k) z[j][k] = z[j][k] < 0 ? T(0) : z[j][k];
                }
                for (int b = 0; b < nb; ++b) {
                    const V* zb = sc.z.data() + b * C;
                    const int64_t r = (int64_t)si * m + r0 + b;
                    if (cls == nullptr) {
                        for (int l = 0; l < LN; ++l) {
                            const T e = zb[0][l] - yreg[r];
                            total[l] += double(e * e) / 2;
                        }
                        continue;
                    }
                    V top = zb[0];
                    for (int c = 1; c < C; ++c)
                        for (int l = 0; l < LN; ++l) top[l] = zb[c][l] > top[l] ? zb[c][l] : top[l];
                    V sum = splat<T>(0);
                    for (int c = 0; c < C; ++c) sum += vexp<T>(zb[c] - top);
                    const int64_t y = cls[r];
                    for (int l = 0; l < LN; ++l) {
                        int arg = 0;
                        bool finite = std::isfinite(zb[0][l]);
                        for (int c = 1; c < C; ++c) {
                            finite = finite && std::isfinite(zb[c][l]);
                            if (zb[c][l] > zb[arg][l]) arg = c;
                        }
                        total[l] += double(top[l] + std::log(sum[l]) - zb[y][l]);
                        if (finite && arg == y) right[l] += 1;
                    }
                }
            }
            for (int l = 0; l < LN; ++l) {
                loss[(int64_t)si * G * LN + g * LN + l] = total[l] / m;
                correct[(int64_t)si * G * LN + g * LN + l] = right[l];
            }
        }
    }
    return 0;
}

}  // namespace

extern "C" {

int wd_mlp_f32(int opt, int rule, int S, int m, int L, const int* dims, int G, int g0, int g1,
               int B, const float* X, const int64_t* cls, const float* yreg, const int64_t* order,
               int n, int epochs, int64_t step0, const double* hyper, float* params, float* state1,
               float* state2, const float* factors, uint8_t* finite) {
    return train<float>(opt, rule, WD_ARGS);
}

int wd_mlp_f64(int opt, int rule, int S, int m, int L, const int* dims, int G, int g0, int g1,
               int B, const double* X, const int64_t* cls, const double* yreg,
               const int64_t* order, int n, int epochs, int64_t step0, const double* hyper,
               double* params, double* state1, double* state2, const double* factors,
               uint8_t* finite) {
    return train<double>(opt, rule, WD_ARGS);
}

int wd_mlp_eval_f32(int S, int m, int L, const int* dims, int G, int g0, int g1, const float* X,
                    const int64_t* cls, const float* yreg, const float* params, double* loss,
                    double* correct) {
    return evaluate<float>(S, m, L, dims, G, g0, g1, X, cls, yreg, params, loss, correct);
}

int wd_mlp_eval_f64(int S, int m, int L, const int* dims, int G, int g0, int g1, const double* X,
                    const int64_t* cls, const double* yreg, const double* params, double* loss,
                    double* correct) {
    return evaluate<double>(S, m, L, dims, G, g0, g1, X, cls, yreg, params, loss, correct);
}

int wd_mlp_lanes_f32() { return Vec<float>::L; }
int wd_mlp_lanes_f64() { return Vec<double>::L; }
}
