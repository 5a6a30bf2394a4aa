/* Compiled CPU kernels for float32 generation (ganspacesynth/model/inference/native.py): Winograd F(MxM, 3x3)
   tile transforms with bias, leaky ReLU and pixel norm fused into the output transform, and one-pass pixel norms.

   Compiled by native.py with -DM=<output tile> -DN=<input tile> -DV=<channels per vector> and -I pointing at a
   generated winograd_transforms.h, which holds input_1d and output_1d: Bt and At of winograd.transforms() written
   out term by term (zeros skipped, +-1 as additions), so this file and the PyTorch route share one construction. */
#include <math.h>
#include <string.h>
#if !defined(M) || !defined(N) || !defined(V)
#error "compile with -DM=... -DN=... -DV=... (see native.py)"
#endif
/* V floats as one value (GCC/Clang vector extension: one AVX-512 register, or several narrower ones). */
typedef float vf __attribute__((vector_size(V * sizeof(float))));
typedef int vi __attribute__((vector_size(V * sizeof(int))));
static inline vf load(const float *p) { vf r; memcpy(&r, p, sizeof r); return r; }
static inline void store(float *p, vf x) { memcpy(p, &x, sizeof x); }
#include "winograd_transforms.h"

/* x: one sample, NHWC [H][W][C], in th x tw tiles; tile (i, j) reads rows 6i-1 .. 6i+6 and columns
   6j-1 .. 6j+6 (zero outside: the conv's padding of 1). Writes Bt d B to v: [N*N][T][C], T = th*tw. */
void input_transform(const float *restrict x, long H, long W, long C, long th, long tw, float *restrict v) {
    long T = th * tw;
    vf d[N][N], r[N][N], o[N];
    const vf zero = {0};
    for (long t = 0; t < T; t++) {
        long ti = t / tw, tj = t % tw, row0 = ti * M - 1, col0 = tj * M - 1;
        for (long c = 0; c < C; c += V) {
            for (int a = 0; a < N; a++) {
                long row = row0 + a;
                for (int b = 0; b < N; b++) {
                    long col = col0 + b;
                    d[a][b] = (row < 0 || row >= H || col < 0 || col >= W) ? zero : load(x + (row * W + col) * C + c);
                }
            }
            for (int b = 0; b < N; b++) input_1d(&d[0][b], N, &r[0][b], N);  /* Bt d: along rows */
            for (int a = 0; a < N; a++) {
                input_1d(r[a], 1, o, 1);                                     /* (Bt d) B: along columns */
                for (int b = 0; b < N; b++) store(v + ((long)(a * N + b) * T + t) * C + c, o[b]);
            }
        }
    }
}

/* p: [N*N][T][K] products. Writes At p A (+ bias, leaky ReLU with `slope` if lrelu, then pixel norm over the K
   channels if pnorm) for every tile into y: one sample, NHWC [H][W][K], cropped at the bottom and right.
   `buf` holds one output tile: M*M*K floats. */
void output_transform(const float *restrict p, long th, long tw, long K,
                      const float *restrict bias, int lrelu, float slope, int pnorm, float eps,
                      float *restrict y, long H, long W, float *restrict buf) {
    long T = th * tw;
    vf q[N][N], r[M][N], o[M];
    const vf zero = {0};
    for (long t = 0; t < T; t++) {
        long ti = t / tw, tj = t % tw, row0 = ti * M, col0 = tj * M;
        int rows = H - row0 < M ? (int)(H - row0) : M, cols = W - col0 < M ? (int)(W - col0) : M;
        /* without pixel norm the tile goes straight to y; with it, through buf until its norms are known */
        float *dst0 = pnorm ? buf : y + (row0 * W + col0) * K;
        long row_stride = pnorm ? M * K : W * K;
        for (long k = 0; k < K; k += V) {
            vf bk = bias ? load(bias + k) : zero;
            for (int a = 0; a < N; a++)
                for (int b = 0; b < N; b++) q[a][b] = load(p + ((long)(a * N + b) * T + t) * K + k);
            for (int b = 0; b < N; b++) output_1d(&q[0][b], N, &r[0][b], N);  /* At q: along rows */
            for (int a = 0; a < rows; a++) {
                output_1d(r[a], 1, o, 1);                                     /* (At q) A: along columns */
                for (int b = 0; b < cols; b++) {
                    vf z = o[b] + bk;
                    if (lrelu) {  /* z < 0 ? z * slope : z, as torch's leaky_relu */
                        vi neg = z < zero;
                        z = (vf)(((vi)z & ~neg) | ((vi)(z * slope) & neg));
                    }
                    store(dst0 + a * row_stride + b * K + k, z);
                }
            }
        }
        if (!pnorm) continue;
        for (int a = 0; a < rows; a++)
            for (int b = 0; b < cols; b++) {
                const float *src = buf + (a * M + b) * K;
                float *dst = y + ((row0 + a) * W + col0 + b) * K;
                vf acc = zero;
                for (long k = 0; k < K; k += V) { vf z = load(src + k); acc += z * z; }
                float ss = 0.0f;
                for (int u = 0; u < V; u++) ss += acc[u];
                float scale = 1.0f / sqrtf(ss / (float)K + eps);
                for (long k = 0; k < K; k += V) store(dst + k, load(src + k) * scale);
            }
    }
}

static inline float sum_lanes(vf a) {
    float s = 0.0f;
    for (int u = 0; u < V; u++) s += a[u];
    return s;
}

/* In place, for P pixels of C channels (NHWC): x *= 1 / sqrt(mean over channels of x^2 + eps). */
void pixel_norm(float *restrict x, long P, long C, float eps) {
    for (long i = 0; i < P; i++, x += C) {
        vf acc = {0};
        for (long c = 0; c < C; c += V) { vf z = load(x + c); acc += z * z; }
        float scale = 1.0f / sqrtf(sum_lanes(acc) / (float)C + eps);
        for (long c = 0; c < C; c += V) store(x + c, load(x + c) * scale);
    }
}

/* The pixel norm of x (P pixels of C channels, NHWC) followed by a 1x1 conv to R outputs (w: [R][C], bias: [R]),
   without writing the normalised x: the projection of a pixel commutes with its scale. out: [P][R] (NHWC). */
void pixel_norm_project(const float *restrict x, long P, long C, const float *restrict w, const float *restrict bias,
                        long R, float eps, float *restrict out) {
    for (long i = 0; i < P; i++, x += C) {
        vf acc = {0};
        for (long c = 0; c < C; c += V) { vf z = load(x + c); acc += z * z; }
        float scale = 1.0f / sqrtf(sum_lanes(acc) / (float)C + eps);
        for (long r = 0; r < R; r++) {
            vf dot = {0};
            for (long c = 0; c < C; c += V) dot += load(x + c) * load(w + r * C + c);
            out[i * R + r] = sum_lanes(dot) * scale + bias[r];
        }
    }
}
