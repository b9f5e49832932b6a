// Coordinate descent for the elastic net along a path of penalties, in float64 (wdbench.oracle).
//
// Minimizes, for each alpha of the path (warm-started from the previous solution):
//
//     (1/2n)||Xw + b - y||^2 + alpha (rho ||w||_1 + (1 - rho)/2 ||w||^2)
//
// with the bias unpenalized: X and y are centred, the centred problem is solved for w, and
// b = mean(y) - mean(X) . w. The iteration is scikit-learn's dense ``enet_coordinate_descent``
// (cyclic order, gap-safe screening) on the n-scaled objective
//
//     P(w) = 1/2 ||y - Xw||^2 + l1 ||w||_1 + l2/2 ||w||^2,   l1 = n alpha rho, l2 = n alpha (1 - rho)
//
// and its stopping rule: once the largest coordinate step of a sweep is at most tol times the
// largest coefficient (or every coefficient is 0), stop when the duality gap is at most
// tol ||y_c||^2. With anderson = K > 0 the iterates of every K + 1 sweeps are extrapolated
// (taken where the objective drops), and between two sweeps over
// every screened-in feature the sweeps visit the non-zero coefficients only: the same minimizer
// and stopping rule in a fraction of the sweeps on ill-conditioned designs (n < d, small alpha).
// anderson = 0 is scikit-learn's iteration exactly. Plain C ABI (ctypes), no Python headers.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

// With extrapolation, sweeps between two sweeps over every active feature (the others sweep the
// non-zero coefficients only).
constexpr int64_t FULL_EVERY = 10;

double dot(int64_t n, const double* a, const double* b) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; ++i) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

void axpy(int64_t n, double a, const double* x, double* y) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// The columns of the centred X, each contiguous (column-major [d, n]), and the centred y.
struct Centred {
    int64_t n, d;
    std::vector<double> X, y, x_mean, norm2;
    double y_mean = 0.0;
};

// Duality gap of the n-scaled objective at w (R = y - Xw), as scikit-learn's ``gap_enet``:
// formulation A when l1 > 0, B when only l2 > 0, ||X'R||^2 for least squares. XtA receives
// X'R - l2 w; dual_norm its largest magnitude (formulation A) or ||X'R||^2.
double gap_enet(const Centred& c, const double* w, double l1, double l2, const double* R,
                double* XtA, double* dual_norm) {
    const int64_t n = c.n, d = c.d;
    const double w_l2_norm2 = l2 > 0 ? dot(d, w, w) : 0.0;
    const double R_norm2 = dot(n, R, R);
    const double Ry = dot(n, R, c.y.data());
    if (l1 == 0) {
        for (int64_t j = 0; j < d; ++j) XtA[j] = dot(n, &c.X[j * n], R);
        const double norm = dot(d, XtA, XtA);
        *dual_norm = norm;
        if (l2 == 0) return norm;
        return R_norm2 + 0.5 * l2 * w_l2_norm2 - Ry + norm / (2 * l2);
    }
    double norm = 0.0, w_l1_norm = 0.0;
    for (int64_t j = 0; j < d; ++j) {
        XtA[j] = dot(n, &c.X[j * n], R) - l2 * w[j];
        norm = std::fmax(norm, std::fabs(XtA[j]));
        w_l1_norm += std::fabs(w[j]);
    }
    *dual_norm = norm;
    const double primal = 0.5 * (R_norm2 + l2 * w_l2_norm2) + l1 * w_l1_norm;
    const double scale = norm > l1 ? l1 / norm : 1.0;
    const double dual = -0.5 * scale * scale * (R_norm2 + l2 * w_l2_norm2) + scale * Ry;
    return primal - dual;
}

// Gap-safe screening (Fercoq et al., eq. 11): the features that may be non-zero at the optimum
// go to active; the others are set to 0 (R updated). Features already excluded stay excluded.
void screen(const Centred& c, double* w, double l1, double l2, double* R, const double* XtA,
            double dual_norm, double gap, std::vector<uint8_t>& excluded,
            std::vector<int64_t>& active) {
    const int64_t n = c.n;
    active.clear();
    const double radius = std::sqrt(2 * gap) / l1;
    for (int64_t j = 0; j < c.d; ++j) {
        if (excluded[j]) continue;
        const double xj_theta = XtA[j] / std::fmax(l1, dual_norm);
        const double d_j = (1 - std::fabs(xj_theta)) / std::sqrt(c.norm2[j] + l2);
        if (d_j <= radius) {
            active.push_back(j);
        } else {
            if (w[j] != 0) {
                axpy(n, w[j], &c.X[j * n], R);
                w[j] = 0;
            }
            excluded[j] = 1;
        }
    }
}

// 0.5 ||R||^2 + l1 ||w||_1 + l2/2 ||w||^2: the n-scaled objective at w (R = y - Xw).
double primal(const Centred& c, const double* w, const double* R, double l1, double l2) {
    double l1_norm = 0.0, l2_norm2 = 0.0;
    for (int64_t j = 0; j < c.d; ++j) {
        l1_norm += std::fabs(w[j]);
        l2_norm2 += w[j] * w[j];
    }
    return 0.5 * dot(c.n, R, R) + l1 * l1_norm + 0.5 * l2 * l2_norm2;
}

// Solves the k x k system A z = 1 (A symmetric positive semi-definite, overwritten) by Cholesky
// with a small relative ridge; false when A is numerically singular.
bool solve_ones(int64_t k, std::vector<double>& A, std::vector<double>& z) {
    double trace = 0.0;
    for (int64_t i = 0; i < k; ++i) trace += A[i * k + i];
    if (!(trace > 0) || !std::isfinite(trace)) return false;
    for (int64_t i = 0; i < k; ++i) A[i * k + i] += 1e-10 * trace;
    for (int64_t j = 0; j < k; ++j) {
        double diag = A[j * k + j];
        for (int64_t m = 0; m < j; ++m) diag -= A[j * k + m] * A[j * k + m];
        if (!(diag > 0)) return false;
        diag = std::sqrt(diag);
        A[j * k + j] = diag;
        for (int64_t i = j + 1; i < k; ++i) {
            double v = A[i * k + j];
            for (int64_t m = 0; m < j; ++m) v -= A[i * k + m] * A[j * k + m];
            A[i * k + j] = v / diag;
        }
    }
    for (int64_t i = 0; i < k; ++i) {  // L u = 1
        double v = 1.0;
        for (int64_t m = 0; m < i; ++m) v -= A[i * k + m] * z[m];
        z[i] = v / A[i * k + i];
    }
    for (int64_t i = k - 1; i >= 0; --i) {  // L' z = u
        double v = z[i];
        for (int64_t m = i + 1; m < k; ++m) v -= A[m * k + i] * z[m];
        z[i] = v / A[i * k + i];
    }
    return true;
}

// Anderson extrapolation of the last K + 1 sweeps' iterates (Bertrand & Massias, 2021): the
// affine combination of the iterates whose successive differences combine to the least norm.
// Taken (w and R replaced) only where it lowers the objective; excluded features stay 0.
void extrapolate(const Centred& c, int64_t K, const std::vector<double>& iterates, double* w,
                 double* R, double l1, double l2, const std::vector<uint8_t>& excluded) {
    const int64_t n = c.n, d = c.d;
    std::vector<double> U(K * d), A(K * K), z(K), w_acc(d, 0.0), R_acc(c.y);
    for (int64_t i = 0; i < K; ++i) {
        for (int64_t j = 0; j < d; ++j) {
            U[i * d + j] = iterates[(i + 1) * d + j] - iterates[i * d + j];
        }
    }
    for (int64_t i = 0; i < K; ++i) {
        for (int64_t m = 0; m <= i; ++m) A[i * K + m] = A[m * K + i] = dot(d, &U[i * d], &U[m * d]);
    }
    if (!solve_ones(K, A, z)) return;
    double total = 0.0;
    for (int64_t i = 0; i < K; ++i) total += z[i];
    if (!(std::fabs(total) > 0) || !std::isfinite(total)) return;
    for (int64_t i = 0; i < K; ++i) axpy(d, z[i] / total, &iterates[(i + 1) * d], w_acc.data());
    for (int64_t j = 0; j < d; ++j) {
        if (excluded[j]) w_acc[j] = 0.0;
        if (w_acc[j] != 0) axpy(n, -w_acc[j], &c.X[j * n], R_acc.data());
    }
    if (primal(c, w_acc.data(), R_acc.data(), l1, l2) < primal(c, w, R, l1, l2)) {
        std::copy(w_acc.begin(), w_acc.end(), w);
        std::copy(R_acc.begin(), R_acc.end(), R);
    }
}

// One penalty: w (warm start in, solution out), R = y - Xw kept up to date. With K > 0 the
// iterates are extrapolated every K + 1 sweeps (K = 0: scikit-learn's iteration exactly).
// Returns the sweeps run; *gap_out receives the last duality gap, *converged whether it met
// the tolerance.
int64_t solve(const Centred& c, double* w, double* R, double l1, double l2, double tol,
              int64_t max_iter, int64_t K, double* gap_out, int* converged) {
    const bool working_sets = K > 0;
    const int64_t n = c.n, d = c.d;
    std::vector<double> XtA(d);
    const double d_w_tol = tol;
    tol *= dot(n, c.y.data(), c.y.data());
    double dual_norm = 0.0;
    double gap = gap_enet(c, w, l1, l2, R, XtA.data(), &dual_norm);
    *gap_out = gap;
    *converged = 1;
    if (gap <= tol) return 0;
    const bool screening = l1 != 0;
    std::vector<uint8_t> excluded(d, 0);
    std::vector<int64_t> active;
    if (screening) {
        for (int64_t j = 0; j < d; ++j) {
            if (c.norm2[j] == 0) {
                w[j] = 0;
                excluded[j] = 1;
            }
        }
        screen(c, w, l1, l2, R, XtA.data(), dual_norm, gap, excluded, active);
    } else {
        for (int64_t j = 0; j < d; ++j) active.push_back(j);
    }
    std::vector<double> iterates(K > 0 ? (K + 1) * d : 0);
    std::vector<int64_t> support;
    int64_t stored = 0, since_full = 0;
    bool full = true;
    *converged = 0;
    int64_t it = 0;
    for (; it < max_iter; ++it) {
        double w_max = 0.0, d_w_max = 0.0;
        for (const int64_t j : full ? active : support) {
            if (c.norm2[j] == 0.0) continue;
            const double* xj = &c.X[j * n];
            const double w_j = w[j];
            const double tmp = dot(n, xj, R) + w_j * c.norm2[j];
            const double sign = tmp > 0 ? 1.0 : (tmp < 0 ? -1.0 : 0.0);
            w[j] = sign * std::fmax(std::fabs(tmp) - l1, 0.0) / (c.norm2[j] + l2);
            if (w[j] != w_j) axpy(n, w_j - w[j], xj, R);
            d_w_max = std::fmax(d_w_max, std::fabs(w[j] - w_j));
            w_max = std::fmax(w_max, std::fabs(w[j]));
        }
        const bool small_step = w_max == 0.0 || d_w_max / w_max <= d_w_tol;
        if (full && (small_step || it == max_iter - 1)) {
            gap = gap_enet(c, w, l1, l2, R, XtA.data(), &dual_norm);
            if (gap <= tol) {
                *converged = 1;
                break;
            }
            if (screening) screen(c, w, l1, l2, R, XtA.data(), dual_norm, gap, excluded, active);
        }
        if (full) {
            support.clear();
            for (const int64_t j : active) {
                if (w[j] != 0) support.push_back(j);
            }
            since_full = 0;
        }
        full = !working_sets || small_step || ++since_full >= FULL_EVERY || it + 2 >= max_iter;
        if (K > 0) {
            std::copy(w, w + d, &iterates[stored * d]);
            if (++stored == K + 1) {
                stored = 0;
                extrapolate(c, K, iterates, w, R, l1, l2, excluded);
            }
        }
    }
    *gap_out = gap;
    return *converged ? it + 1 : it;
}

}  // namespace

extern "C" {

// The elastic-net path of X [n, d] (row-major) and y [n] at alphas [L], in the order given, each
// warm-started from the previous solution (the first from zero). Writes W [L, d], b [L], the
// sweeps of each penalty n_iter [L] and its final duality gap divided by n, gaps [L] (as
// scikit-learn's dual_gap_). Returns the number of penalties that did not converge within
// max_iter sweeps, or -1 when a coefficient is not finite.
int64_t wd_enet_path(int64_t n, int64_t d, const double* X, const double* y, int64_t L,
                     const double* alphas, double l1_ratio, double tol, int64_t max_iter,
                     int64_t anderson, double* W, double* b, int64_t* n_iter, double* gaps) {
    Centred c{n, d, std::vector<double>(d * n), std::vector<double>(n), std::vector<double>(d, 0.0),
              std::vector<double>(d, 0.0)};
    for (int64_t i = 0; i < n; ++i) {
        c.y_mean += y[i];
        for (int64_t j = 0; j < d; ++j) c.x_mean[j] += X[i * d + j];
    }
    c.y_mean /= static_cast<double>(n);
    for (int64_t j = 0; j < d; ++j) c.x_mean[j] /= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) {
        c.y[i] = y[i] - c.y_mean;
        for (int64_t j = 0; j < d; ++j) c.X[j * n + i] = X[i * d + j] - c.x_mean[j];
    }
    for (int64_t j = 0; j < d; ++j) c.norm2[j] = dot(n, &c.X[j * n], &c.X[j * n]);

    std::vector<double> w(d, 0.0), R(c.y);
    int64_t failed = 0;
    for (int64_t k = 0; k < L; ++k) {
        const double l1 = alphas[k] * l1_ratio * static_cast<double>(n);
        const double l2 = alphas[k] * (1.0 - l1_ratio) * static_cast<double>(n);
        // R = y - Xw from scratch at each penalty, as a fresh fit would start
        R = c.y;
        for (int64_t j = 0; j < d; ++j) {
            if (w[j] != 0) axpy(n, -w[j], &c.X[j * n], R.data());
        }
        double gap = 0.0;
        int converged = 0;
        n_iter[k] = solve(c, w.data(), R.data(), l1, l2, tol, max_iter, anderson, &gap, &converged);
        gaps[k] = gap / static_cast<double>(n);
        failed += converged ? 0 : 1;
        double bias = c.y_mean;
        for (int64_t j = 0; j < d; ++j) {
            if (!std::isfinite(w[j])) return -1;
            W[k * d + j] = w[j];
            bias -= c.x_mean[j] * w[j];
        }
        b[k] = bias;
    }
    return failed;
}

}  // extern "C"
