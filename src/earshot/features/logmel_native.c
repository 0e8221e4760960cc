/* The CPU log-mel front-end's stages around the FFT, fused: earshot/features/native.py compiles this
 * file on first use (cc -O3 -march=native -fopenmp) and falls back to the torch ops when it cannot.
 *
 * window_frames:        waveform (B, N) -> windowed frames (B, T, L), padding (zeros or a reflection)
 *                       done in place of a padded copy of the signal.
 * logmel_from_spectrum: complex spectrum (frames, n_freq), interleaved re/im -> log-mel (frames, F), in
 *                       one pass a frame: power (or magnitude), the mel filters over their nonzero bins
 *                       only, then the log. The torch ops make a pass over the spectrum for each
 *                       stage, and multiply every bin by every filter.
 * Both split their rows over n_threads OpenMP threads. Built with -fopenmp, the library needs
 * libgomp.so.1; torch's CPU wheels load theirs under that name first, so these loops run on torch's
 * own thread pool rather than beside it (two pools on two cores spin against each other). Built
 * without, they run on one thread. Everything is float32. */
#include <math.h>
#include <stdint.h>

/* ---- framing ---------------------------------------------------------------------------------- */

int window_frames(const float *x, float *frames, const float *window, int64_t n_batch, int64_t n_samples,
                  int64_t n_frames, int hop, int length, int pad_left, int reflect, int n_threads) {
    const int64_t n = n_samples;
    const int L = length;
    #pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t r = 0; r < n_batch * n_frames; r++) {
        const int64_t b = r / n_frames, t = r % n_frames;
        const float *xb = x + b * n;
        float *f = frames + r * L;
        const int64_t s0 = t * hop - pad_left;
        if (s0 >= 0 && s0 + L <= n) {  /* inside the signal: a windowed copy */
            const float *xs = xb + s0;
            for (int i = 0; i < L; i++) f[i] = xs[i] * window[i];
            continue;
        }
        for (int i = 0; i < L; i++) {  /* at an edge: zeros, or the signal reflected about its ends */
            int64_t k = s0 + i;
            if (reflect && (k < 0 || k >= n)) k = k < 0 ? -k : 2 * (n - 1) - k;
            f[i] = (k >= 0 && k < n) ? xb[k] * window[i] : 0.0f;
        }
    }
    return 0;
}

/* ---- power, mel, log -------------------------------------------------------------------------- */

/* ln(x) for normal x > 0, to about 1e-7 relative: x = m 2^e with m in [sqrt(1/2), sqrt(2)), and
 * ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series to s^9. NaN and +inf come
 * back as they are. Branch-free, so the loops over the filters vectorise (glibc's logf would not,
 * without -ffast-math). The caller keeps x normal (amin and log_offset >= FLT_MIN). */
static inline float ln_normal(float x) {
    union { float f; int32_t i; } u = {x};
    int32_t e = ((u.i >> 23) & 0xff) - 127;
    u.i = (u.i & 0x007fffff) | 0x3f800000;  /* m in [1, 2) */
    float m = u.f;
    const int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    e += big;
    const float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
    const float series = 2.0f + s2 * (0.666666667f + s2 * (0.4f + s2 * (0.285714286f + s2 * 0.222222222f)));
    const float y = s * series + (float)e * 0.693147181f;
    return x < 3.402823466e38f ? y : x;
}

/* The filters go in groups of GROUP consecutive filters; group g weighs bins [lo[g], hi[g]), the
 * bins where any of its filters is nonzero, with its weights as a (hi[g] - lo[g], GROUP) block at
 * w + off[g] (zeros past the last filter). A group's filters add up in GROUP lanes at once, one
 * multiply-add a bin: about n_freq + the groups' overlap per frame, against n_freq * F for the
 * dense matmul. */
#define GROUP 16
typedef float vgroup __attribute__((vector_size(GROUP * sizeof(float)), aligned(sizeof(float))));  /* GCC, Clang */

int mel_group_size(void) { return GROUP; }

int logmel_from_spectrum(const float *spec, float *out, int64_t n_frames, int n_freq, int lo, int hi, int n_mels,
                         int n_groups, const int32_t *glo, const int32_t *ghi, const int32_t *goff, const float *w,
                         int magnitude, int log_mode, float amin, float offset, int n_threads) {
    const int nb = hi - lo;
    #pragma omp parallel num_threads(n_threads)
    {
        float p[nb];
        #pragma omp for schedule(static)
        for (int64_t t = 0; t < n_frames; t++) {
            const float *s = spec + 2 * (t * n_freq + lo);
            for (int k = 0; k < nb; k++) p[k] = s[2 * k] * s[2 * k] + s[2 * k + 1] * s[2 * k + 1];
            if (magnitude) for (int k = 0; k < nb; k++) p[k] = sqrtf(p[k]);
            float *o = out + t * n_mels;
            for (int g = 0; g < n_groups; g++) {
                /* two accumulators, even and odd bins, so that consecutive multiply-adds do not wait
                 * on each other */
                vgroup acc0 = {0}, acc1 = {0};
                const vgroup *wg = (const vgroup *)(w + goff[g]);
                const float *pg = p + (glo[g] - lo);
                const int nk = ghi[g] - glo[g];
                int k = 0;
                for (; k + 1 < nk; k += 2) {
                    acc0 += wg[k] * pg[k];
                    acc1 += wg[k + 1] * pg[k + 1];
                }
                if (k < nk) acc0 += wg[k] * pg[k];
                acc0 += acc1;
                const int m0 = g * GROUP, m = n_mels - m0 < GROUP ? n_mels - m0 : GROUP;
                for (int i = 0; i < m; i++) o[m0 + i] = acc0[i];
            }
            if (log_mode == 0) {  /* 10 log10(max(mel, amin)); a NaN stays NaN, as in torch.clamp */
                for (int m = 0; m < n_mels; m++) o[m] = 4.342944819f * ln_normal(o[m] < amin ? amin : o[m]);
            } else {  /* ln(mel + offset) */
                for (int m = 0; m < n_mels; m++) o[m] = ln_normal(o[m] + offset);
            }
        }
    }
    return 0;
}
