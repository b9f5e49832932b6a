// The optimizer's step on one vector of weights, shared by the compiled kernels (the population
// kernel, kernel.cpp beside this file, and the networks' kernel, wdbench/networks/kernel.cpp);
// wdbench.population.native._build compiles them with this folder on the include path and keys
// their cached libraries on this file too.
//
// The arithmetic is that of Optimizer.step_ (wdbench.optimizers), in torch's order, lane by lane
// on a vector V of scalars T (GCC vector extension):
//   sgd       p ← p − η·g
//   momentum  u ← μ·u + g;  p ← p − η·u       Nesterov   p ← p − η·(g + μ·u)
//   adam      m ← m + (1 − β₁)(g − m);  v ← β₂·v + (1 − β₂)·g·g
//             p ← p − m / (√v·bc₁/(η√bc₂) + ε·bc₁/η)   bc = 1 − βᵗ, t the step count
#pragma once

#include <cmath>
#include <cstdint>

namespace wd_optim {

enum Opt { SGD = 0, MOMENTUM = 1, NESTEROV = 2, ADAM = 3 };

// One vector's learning rates and the factors of this step (a kernel's own factors derive from
// it).
template <typename T, typename V>
struct Factors {
    V lr;
    V scale, shift;               // Adam: bc₁/(η√bc₂) and ε·bc₁/η (`adam_factors`)
    T mu, beta1c, beta2, beta2c;  // μ; 1 − β₁; β₂; 1 − β₂

    // From hyper = (μ, β₁, β₂, ε).
    void set_hyper(const double* hyper) {
        mu = static_cast<T>(hyper[0]);
        beta1c = static_cast<T>(1 - hyper[1]);
        beta2 = static_cast<T>(hyper[2]);
        beta2c = static_cast<T>(1 - hyper[2]);
    }

    // Adam's factors of step t (from 1): bc₁, bc₂ in double (Python floats), then dtype T.
    void adam_factors(int64_t t, double beta1, double beta2, double eps) {
        const double bc1 = 1 - std::pow(beta1, static_cast<double>(t));
        const double bc2 = 1 - std::pow(beta2, static_cast<double>(t));
        scale = static_cast<T>(bc1) / (lr * static_cast<T>(std::sqrt(bc2)));
        shift = static_cast<T>(eps * bc1) / lr;
    }
};

// p ← the optimizer's step from p with gradient g, advancing the state s1 (momentum u, Adam's
// m) and s2 (Adam's v; unread otherwise).
template <int OPT, typename T, typename V>
inline V step(V p, V g, V* s1, V* s2, const Factors<T, V>& h) {
    if (OPT == ADAM) {
        const V m = *s1 + h.beta1c * (g - *s1);
        const V v = *s2 * h.beta2 + (h.beta2c * g) * g;
        *s1 = m;
        *s2 = v;
        V root;
        for (int l = 0; l < static_cast<int>(sizeof(V) / sizeof(T)); ++l) root[l] = std::sqrt(v[l]);
        return p - m / (h.shift + root * h.scale);
    } else if (OPT == SGD) {
        return p - g * h.lr;
    } else {
        const V u = *s1 * h.mu + g;
        *s1 = u;
        if (OPT == NESTEROV) return p - (g + h.mu * u) * h.lr;
        return p - u * h.lr;
    }
}

}  // namespace wd_optim
