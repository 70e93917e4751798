/* The forward pass's vector operations against their definitions computed in double: exp (vectorised polynomial),
 * softmax, SwiGLU, RMSNorm and RoPE through the per-position angle table. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "compute/ops.h"
#include "test_util.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double uniform(double lo, double hi) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (double)(rng >> 11) / 9007199254740992.0;
}

static void test_exp(void) {
    enum { N = 200003 }; /* odd: the scalar tail runs too */
    static float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = (float)uniform(-100, 100);
    const float edge[] = {0.0f, -0.0f, 1.0f, -1.0f, 88.7f, 88.72283f, 89.0f, -87.33f, -87.34f, -100.0f, -INFINITY,
                          INFINITY, 0.34657359f, -0.34657359f, 1e-8f};
    memcpy(x, edge, sizeof edge);
    memcpy(y, x, sizeof x);
    kvl_exp_inplace(y, N);
    double worst = 0;
    int bad_tail = 0;
    for (int i = 0; i < N; i++) {
        const double ref = exp((double)x[i]);
        if (x[i] < -87.33f) { /* below the normal range: 0 or a denormal, never more */
            bad_tail += !(y[i] >= 0 && y[i] <= 1.2e-38f);
            continue;
        }
        if (ref > 3.4028234663852886e38) {
            bad_tail += !isinf(y[i]);
            continue;
        }
        const double rel = fabs(y[i] - ref) / ref;
        if (rel > worst) worst = rel;
    }
    printf("exp: worst relative error %.3g (%.2f ulp of 2^-23)\n", worst, worst / 1.1920929e-7);
    CHECK_MSG(worst < 3 * 1.1920929e-7, "worst %g", worst);
    CHECK(bad_tail == 0);
}

static void test_softmax_swiglu(void) {
    enum { N = 1001 };
    static float x[N], g[N], u[N];
    double mx = -1e30, sum = 0;
    for (int i = 0; i < N; i++) {
        x[i] = (float)uniform(-30, 30);
        if (x[i] > mx) mx = x[i];
    }
    for (int i = 0; i < N; i++) sum += exp(x[i] - mx);
    float p[N];
    memcpy(p, x, sizeof x);
    kvl_softmax(p, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        const double ref = exp(x[i] - mx) / sum;
        worst = fmax(worst, fabs(p[i] - ref) / fmax(ref, 1e-30));
    }
    CHECK_MSG(worst < 1e-5, "softmax worst %g", worst); /* x - max rounds in float */
    for (int i = 0; i < N; i++) {
        g[i] = (float)uniform(-20, 20);
        u[i] = (float)uniform(-3, 3);
    }
    float out[N];
    memcpy(out, g, sizeof g);
    kvl_swiglu(out, u, N);
    worst = 0;
    for (int i = 0; i < N; i++) {
        const double ref = (double)g[i] / (1 + exp(-(double)g[i])) * u[i];
        worst = fmax(worst, fabs(out[i] - ref) / fmax(fabs(ref), 1e-6));
    }
    CHECK_MSG(worst < 2e-6, "swiglu worst %g", worst);
}

static void test_rope(void) {
    enum { HD = 128 };
    float inv[HD / 2], cs[HD], v[HD], ref[HD];
    for (int i = 0; i < HD / 2; i++) inv[i] = powf(1e6f, -2.0f * i / HD);
    for (int pos = 0; pos < 5000; pos += 997) {
        for (int i = 0; i < HD; i++) v[i] = (float)uniform(-2, 2);
        for (int i = 0; i < HD / 2; i++) {
            const double a = (double)(float)((float)pos * inv[i]);
            ref[i] = (float)(v[i] * cos(a) - v[i + HD / 2] * sin(a));
            ref[i + HD / 2] = (float)(v[i + HD / 2] * cos(a) + v[i] * sin(a));
        }
        kvl_rope_table(cs, HD, pos, inv);
        kvl_rope_cs(v, HD, cs);
        for (int i = 0; i < HD; i++) CHECK_NEAR(v[i], ref[i], 2e-6);
    }
}

/* RMSNorm against the definition in double, for lengths around the vector width and magnitudes from 1e-20 to 1e15
 * (the sum of squares must neither underflow nor overflow in float). */
static void test_rmsnorm(void) {
    static const int ns[] = {1, 7, 8, 9, 64, 128, 1000, 1024};
    static const double scales[] = {1e-20, 1e-3, 1, 1e15};
    float x[1024], w[1024], out[1024];
    double worst = 0;
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof scales / sizeof *scales; b++) {
            const int n = ns[a];
            for (int i = 0; i < n; i++) {
                x[i] = (float)(uniform(-1, 1) * scales[b]);
                w[i] = (float)uniform(0.5, 1.5);
            }
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
            const double r = 1.0 / sqrt(ss / n + 1e-6);
            kvl_rmsnorm(out, x, w, n, 1e-6f);
            for (int i = 0; i < n; i++) {
                const double ref = x[i] * r * w[i], err = fabs(out[i] - ref) / (fabs(ref) + 1e-30);
                if (err > worst) worst = err;
            }
        }
    CHECK_MSG(worst < 4 * 1.1920929e-7, "rmsnorm worst relative error %g", worst);
}

int main(void) {
    test_rmsnorm();
    test_exp();
    test_softmax_swiglu();
    test_rope();
    return kvl_test_result("test_ops");
}
