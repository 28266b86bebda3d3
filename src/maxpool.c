#include <string.h>

#include "layers.h"

/* The plain version for any window and stride. */
static void maxpool_forward_loops(float *out, int32_t *argmax, const float *in, int C, int H, int W,
                                  int K, int S)
{
    int OH = (H - K) / S + 1, OW = (W - K) / S + 1;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                int best = (c * H + y * S) * W + x * S;
                float m = in[best];
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++) {
                        int i = (c * H + y * S + ky) * W + x * S + kx;
                        if (in[i] > m) { /* strict: the first maximum wins a tie */
                            m = in[i];
                            best = i;
                        }
                    }
                int o = (c * OH + y) * OW + x;
                out[o] = m;
                argmax[o] = best;
            }
}

#if defined(__GNUC__) && defined(__has_builtin) && !defined(TRAINER_NO_VECTORS)
#if __has_builtin(__builtin_shufflevector)
#define POOL_VECTORS 1
#endif
#endif

#ifdef POOL_VECTORS
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

#ifndef __AVX512F__
/* 2x2 windows, stride 2, any H and W (an odd last row or column is left
 * out, as the loops do): 8 inputs of two rows give 4 outputs, and a row's
 * last W % 8 columns go one window at a time. The four candidates of each
 * window are compared in row-major order with strict >, as the loop
 * version does, so ties and NaNs pick the same input. */
static void maxpool_forward_2x2(float *out, int32_t *argmax, const float *in, int C, int H, int W)
{
    const int OH = H / 2, OW = W / 2, W8 = W & ~7;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < OH; y++) {
            int32_t row = (c * H + 2 * y) * W;
            const float *r0 = in + row;
            size_t o = ((size_t)c * OH + y) * OW;
            for (int x = 0; x < W8; x += 8) {
                v8f u, l;
                memcpy(&u, r0 + x, sizeof u);
                memcpy(&l, r0 + W + x, sizeof l);
                v4f a = __builtin_shufflevector(u, u, 0, 2, 4, 6);
                v4f b = __builtin_shufflevector(u, u, 1, 3, 5, 7);
                v4f cc = __builtin_shufflevector(l, l, 0, 2, 4, 6);
                v4f d = __builtin_shufflevector(l, l, 1, 3, 5, 7);
                int32_t base = row + x;
                v4i ia = (v4i){ base, base + 2, base + 4, base + 6 };
                v4f m = a;
                v4i idx = ia, take;
                take = b > m;
                m = (v4f)(((v4i)b & take) | ((v4i)m & ~take));
                idx = ((ia + 1) & take) | (idx & ~take);
                take = cc > m;
                m = (v4f)(((v4i)cc & take) | ((v4i)m & ~take));
                idx = ((ia + W) & take) | (idx & ~take);
                take = d > m;
                m = (v4f)(((v4i)d & take) | ((v4i)m & ~take));
                idx = ((ia + W + 1) & take) | (idx & ~take);
                memcpy(out + o + x / 2, &m, sizeof m);
                memcpy(argmax + o + x / 2, &idx, sizeof idx);
            }
            for (int x = W8; x + 2 <= W; x += 2) {
                int32_t best = row + x;
                const int32_t cand[3] = { row + x + 1, row + W + x, row + W + x + 1 };
                for (int k = 0; k < 3; k++)
                    if (in[cand[k]] > in[best])
                        best = cand[k];
                out[o + x / 2] = in[best];
                argmax[o + x / 2] = best;
            }
        }
}
#endif
#endif

#if defined(POOL_VECTORS) && defined(__AVX512F__)
#include <immintrin.h>
#include "pool512.inc"
#define POOL_V16 1

/* The first N of 16 lanes. */
static inline __mmask16 first_lanes(int n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* One window row (OW <= 16 outputs) from the input rows r0 and r0 + W;
 * M: whether the loads and stores are masked to the row, else lanes past
 * it load from the rows after it and store into the next window row's
 * outputs, which are written after. */
static inline void pool_row16(float *out, int32_t *argmax, const float *r0, int W, int32_t row, __mmask16 lo,
                              __mmask16 hi, __mmask16 keep, int M)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const float *r1 = r0 + W;
    __m512 u0, u1, l0, l1;
    if (M) {
        u0 = _mm512_maskz_loadu_ps(lo, r0), u1 = _mm512_maskz_loadu_ps(hi, r0 + 16);
        l0 = _mm512_maskz_loadu_ps(lo, r1), l1 = _mm512_maskz_loadu_ps(hi, r1 + 16);
    } else {
        u0 = _mm512_loadu_ps(r0), u1 = _mm512_loadu_ps(r0 + 16);
        l0 = _mm512_loadu_ps(r1), l1 = _mm512_loadu_ps(r1 + 16);
    }
    __m512 a = _mm512_permutex2var_ps(u0, even, u1), b = _mm512_permutex2var_ps(u0, odd, u1);
    __m512 cc = _mm512_permutex2var_ps(l0, even, l1), d = _mm512_permutex2var_ps(l0, odd, l1);
    const __m512i ia = _mm512_add_epi32(_mm512_set1_epi32(row), even);
    __m512i idx;
    const __m512 m = pool_window16(a, b, cc, d, ia, 1, W, &idx);
    if (M) {
        _mm512_mask_storeu_ps(out, keep, m);
        _mm512_mask_storeu_epi32(argmax, keep, idx);
    } else {
        _mm512_storeu_ps(out, m);
        _mm512_storeu_epi32(argmax, idx);
    }
}

/* Even H, rows at most 32 wide: the window rows of all channels one after
 * another, 2W inputs and OW outputs apart; masked only at the end, where
 * 32 inputs from the second row or 16 outputs would pass the tensor's. */
static void maxpool_forward_2x2_rows16(float *out, int32_t *argmax, const float *in, int C, int H, int W)
{
    const int OW = W / 2, rows = C * (H / 2);
    const __mmask16 lo = first_lanes(2 * OW), hi = first_lanes(2 * OW - 16), keep = first_lanes(OW);
    /* the first row r with r*2W + W + 32 > rows*2W or r*OW + 16 > rows*OW */
    int safe = rows, r = 0;
    while (safe > 0 && ((safe - 1) * 2 * W + W + 32 > rows * 2 * W || (safe - 1) * OW + 16 > rows * OW))
        safe--;
    for (; r < safe; r++)
        pool_row16(out + (size_t)r * OW, argmax + (size_t)r * OW, in + (size_t)r * 2 * W, W, r * 2 * W, lo, hi,
                   keep, 0);
    for (; r < rows; r++)
        pool_row16(out + (size_t)r * OW, argmax + (size_t)r * OW, in + (size_t)r * 2 * W, W, r * 2 * W, lo, hi,
                   keep, 1);
}

/* The same for odd H (a channel's last row is in no window), rows at most
 * 32 wide: the window rows channel by channel. */
static void maxpool_forward_2x2_rows16_odd(float *out, int32_t *argmax, const float *in, int C, int H, int W)
{
    const int OH = H / 2, OW = W / 2, nin = C * H * W, nout = C * OH * OW;
    const __mmask16 lo = first_lanes(2 * OW), hi = first_lanes(2 * OW - 16), keep = first_lanes(OW);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < OH; y++) {
            const int row = (c * H + 2 * y) * W, o = (c * OH + y) * OW;
            const int M = row + W + 32 > nin || o + 16 > nout;
            pool_row16(out + o, argmax + o, in + row, W, row, lo, hi, keep, M);
        }
}

/* 2x2 windows, stride 2, 16 windows at a time: each row's 32 inputs are
 * split into even and odd columns by two permutes for pool_window16. */
static void maxpool_forward_2x2_v16(float *out, int32_t *argmax, const float *in, int C, int H, int W)
{
    const int OH = H / 2, OW = W / 2;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int c = 0; c < C; c++)
        for (int y = 0; y < OH; y++) {
            const int32_t row = (c * H + 2 * y) * W;
            const float *r0 = in + row, *r1 = r0 + W;
            const size_t o = ((size_t)c * OH + y) * OW;
            for (int x = 0; x < OW; x += 16) {
                const int n = OW - x < 16 ? OW - x : 16;
                const __mmask16 lo = first_lanes(2 * n), hi = first_lanes(2 * n - 16);
                __m512 u0 = _mm512_maskz_loadu_ps(lo, r0 + 2 * x), u1 = _mm512_maskz_loadu_ps(hi, r0 + 2 * x + 16);
                __m512 l0 = _mm512_maskz_loadu_ps(lo, r1 + 2 * x), l1 = _mm512_maskz_loadu_ps(hi, r1 + 2 * x + 16);
                __m512 a = _mm512_permutex2var_ps(u0, even, u1), b = _mm512_permutex2var_ps(u0, odd, u1);
                __m512 cc = _mm512_permutex2var_ps(l0, even, l1), d = _mm512_permutex2var_ps(l0, odd, l1);
                const __m512i ia = _mm512_add_epi32(_mm512_set1_epi32(row + 2 * x), even);
                __m512i idx;
                const __m512 m = pool_window16(a, b, cc, d, ia, 1, W, &idx);
                const __mmask16 keep = first_lanes(n);
                _mm512_mask_storeu_ps(out + o + x, keep, m);
                _mm512_mask_storeu_epi32(argmax + o + x, keep, idx);
            }
        }
}
#endif

#ifdef POOL_V16
/* Where maxpool2x2_relu_backward takes its 16-lane rows. */
static int pool_bwd16(int H, int W)
{
    (void)H;
    return W <= 32;
}

/* The window rows of maxpool2x2_relu_backward_rows16, with NV (its
 * vectors per window row) a constant after inlining. */
static inline __attribute__((always_inline)) void
pool_back_rows(float *din, const float *dout, const int32_t *argmax, const float *pooled, int C, int H, int W,
               int OH, int OW, size_t nin, __mmask16 pm, const __m512i *win, const __m512i *want, const int NV)
{
    for (int c = 0; c < C; c++) {
        for (int y = 0; y < OH; y++) {
            const size_t q = ((size_t)c * OH + y) * OW, at = ((size_t)c * H + 2 * (size_t)y) * W;
            const __m512 pv = _mm512_maskz_loadu_ps(pm, pooled + q);
            const __mmask16 live = _mm512_mask_cmp_ps_mask(pm, pv, _mm512_setzero_ps(), _CMP_GT_OQ);
            const __m512 g = _mm512_maskz_loadu_ps(live, dout + q);
            const __m512i rel =
                _mm512_sub_epi32(_mm512_maskz_loadu_epi32(pm, argmax + q), _mm512_set1_epi32((int)at));
            __m512 v[4];
            for (int k = 0; k < NV; k++)
                v[k] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(_mm512_permutexvar_epi32(win[k], rel), want[k]),
                                           _mm512_permutexvar_ps(win[k], g));
            if (at + 16 * (size_t)NV <= nin)
                for (int k = 0; k < NV; k++)
                    _mm512_storeu_ps(din + at + 16 * (size_t)k, v[k]);
            else
                for (int k = 0; k < NV; k++) {
                    const size_t n = at + 16 * (size_t)k >= nin ? 0 : nin - at - 16 * (size_t)k;
                    _mm512_mask_storeu_ps(din + at + 16 * (size_t)k, (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1),
                                          v[k]);
                }
        }
        if (H % 2) /* the channel's last row is in no window */
            memset(din + ((size_t)c * H + H - 1) * W, 0, sizeof(float) * (size_t)W);
    }
}

/* maxpool2x2_relu_backward for W <= 32 with 16 lanes: a window row's two
 * input rows are 2W contiguous floats, written as NV vectors; lane j of
 * them is input (j / W, j % W) of the window row, in window j % W / 2 (for
 * an odd W's last column, window OW, whose gradient lane is zero), and gets
 * its gradient if the window's argmax less the window row's first input is
 * j. A vector's lanes past 2W are the next rows', written after it (an odd
 * H's last row of a channel is zeroed after its window rows); the stores
 * past the tensor's end are masked. */
static void maxpool2x2_relu_backward_rows16(float *din, const float *dout, const int32_t *argmax,
                                            const float *pooled, int C, int H, int W)
{
    const int OW = W / 2, nv = (2 * W + 15) / 16;
    __m512i win[4], want[4];
    for (int k = 0; k < nv; k++) {
        int32_t wi[16], wa[16];
        for (int l = 0; l < 16; l++) {
            const int j = (16 * k + l) % (2 * W);
            wi[l] = j % W / 2;
            wa[l] = j;
        }
        win[k] = _mm512_loadu_si512(wi);
        want[k] = _mm512_loadu_si512(wa);
    }
    const __mmask16 pm = (__mmask16)((1u << OW) - 1);
    const int OH = H / 2;
    const size_t nin = (size_t)C * H * W;
    switch (nv) {
    case 1: pool_back_rows(din, dout, argmax, pooled, C, H, W, OH, OW, nin, pm, win, want, 1); break;
    case 2: pool_back_rows(din, dout, argmax, pooled, C, H, W, OH, OW, nin, pm, win, want, 2); break;
    case 3: pool_back_rows(din, dout, argmax, pooled, C, H, W, OH, OW, nin, pm, win, want, 3); break;
    default: pool_back_rows(din, dout, argmax, pooled, C, H, W, OH, OW, nin, pm, win, want, 4); break;
    }
}
#endif

/* Windows do not overlap, so each input receives at most one term: the
 * window's gradient where it is the window's argmax and its value (the
 * window's output) is > 0, else zero. 8 inputs of a row from 4 windows at
 * a time. */
void maxpool2x2_relu_backward(float *din, const float *dout, const int32_t *argmax, const float *pooled,
                              int C, int H, int W)
{
    const int OH = H / 2, OW = W / 2;
#ifdef POOL_V16
    if (pool_bwd16(H, W)) {
        maxpool2x2_relu_backward_rows16(din, dout, argmax, pooled, C, H, W);
        return;
    }
#endif
    for (int c = 0; c < C; c++) {
        for (int y = 0; y < OH; y++) {
            const size_t o = ((size_t)c * OH + y) * OW;
            for (int r = 0; r < 2; r++) {
                const int32_t row = (c * H + 2 * y + r) * W;
                int x = 0;
#ifdef POOL_VECTORS
                typedef int32_t v8i __attribute__((vector_size(32)));
                for (; x < (W & ~7); x += 8) {
                    v4i a4;
                    v4f g4, p4;
                    memcpy(&a4, argmax + o + x / 2, sizeof a4);
                    memcpy(&g4, dout + o + x / 2, sizeof g4);
                    memcpy(&p4, pooled + o + x / 2, sizeof p4);
                    g4 = (v4f)((v4i)g4 & (p4 > (v4f){ 0 }));
                    v8i a8 = __builtin_shufflevector(a4, a4, 0, 0, 1, 1, 2, 2, 3, 3);
                    v8f g8 = __builtin_shufflevector(g4, g4, 0, 0, 1, 1, 2, 2, 3, 3);
                    v8i idx = (v8i){ 0, 1, 2, 3, 4, 5, 6, 7 } + (row + x);
                    v8i take = a8 == idx;
                    v8f d = (v8f)((v8i)g8 & take);
                    memcpy(din + row + x, &d, sizeof d);
                }
#endif
                for (; x < W; x++) {
                    int32_t i = row + x;
                    float d = 0.0f;
                    if (x / 2 < OW && argmax[o + x / 2] == i && pooled[o + x / 2] > 0.0f)
                        d = dout[o + x / 2];
                    din[i] = d;
                }
            }
        }
        /* an odd last row belongs to no window */
        for (int x = 2 * OH * W; x < H * W; x++)
            din[(size_t)c * H * W + x] = 0.0f;
    }
}

static int maxpool_fast(int K, int S)
{
#ifdef POOL_VECTORS
    return K == 2 && S == 2;
#else
    (void)K, (void)S;
    return 0;
#endif
}

const char *maxpool_forward_kernel_path(int K, int S)
{
#ifdef POOL_V16
    return maxpool_fast(K, S) ? "vec512" : "loops";
#else
    return maxpool_fast(K, S) ? "vec128" : "loops";
#endif
}

const char *maxpool_backward_kernel_path(int K, int S, int H, int W)
{
#ifdef POOL_V16
    if (!maxpool_fast(K, S))
        return "loops";
    return pool_bwd16(H, W) ? "vec512" : "vec256";
#else
    (void)H, (void)W;
    return maxpool_fast(K, S) ? "vec128" : "loops";
#endif
}

void maxpool_forward(float *out, int32_t *argmax, const float *in, int C, int H, int W, int K, int S)
{
#ifdef POOL_VECTORS
    if (maxpool_fast(K, S)) {
#ifdef POOL_V16
        if (H % 2 == 0 && W <= 32)
            maxpool_forward_2x2_rows16(out, argmax, in, C, H, W);
        else if (W <= 32)
            maxpool_forward_2x2_rows16_odd(out, argmax, in, C, H, W);
        else
            maxpool_forward_2x2_v16(out, argmax, in, C, H, W);
#else
        maxpool_forward_2x2(out, argmax, in, C, H, W);
#endif
        return;
    }
#endif
    maxpool_forward_loops(out, argmax, in, C, H, W, K, S);
}

void maxpool_backward(float *din, const float *dout, const int32_t *argmax, int in_size, int out_size)
{
    memset(din, 0, sizeof(float) * (size_t)in_size);
    /* += because overlapping windows (stride < size) can pick one input twice. */
    for (int o = 0; o < out_size; o++)
        din[argmax[o]] += dout[o];
}

void maxpool_relu_backward(float *din, const float *dout, const int32_t *argmax, const float *in,
                           int in_size, int out_size)
{
    memset(din, 0, sizeof(float) * (size_t)in_size);
    /* Each input's mask is the same for every window that picked it, so
     * masking each term equals masking the sum, as relu_backward does. */
    for (int o = 0; o < out_size; o++) {
        int32_t a = argmax[o];
        din[a] += in[a] > 0.0f ? dout[o] : 0.0f;
    }
}
