/* conv_oc.c - the kernels with 512-bit vectors along the output channels
 * (16 filters a vector), for outputs too narrow to fill vectors along a
 * row: dw (dwt16, which the general path's backward takes for rows
 * narrower than 16) and the forward pass of rows 4 to 7 wide (fwdoc), with
 * 16x16 transposes in registers to and from the (channel, position)
 * layout. */
#include "conv_simd.h"

#ifdef GEN_V16
/* ---- dw along the output channels with 512-bit vectors, no scalar work ----
 * As dwoc_v16 (lanes = 16 output channels, the sum over positions in
 * order, then added to dw), but dout is transposed to (position, OCp) and
 * the accumulators back to (o, c, ky, kx) by 16x16 transposes in
 * registers: before, those were 3-4 scalar moves per dw element and cost
 * about as much as the FMAs. A tile is CB input channels x NKY kernel rows
 * x K columns, taps f = (cb*NKY + ky)*K + kx; they are contiguous in dw
 * for each o (CB = 1 or NKY = K), so the transposed rows are added with
 * masked vector loads and stores. Same bits as dwoc_v16. */
static inline void tr16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4)
        for (int j = 0; j < 2; j++) {
            __m512d a = _mm512_castps_pd(t[i + j]), b = _mm512_castps_pd(t[i + j + 2]);
            u[i + 2 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            u[i + 2 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    /* u[4q + k] holds, in 128-bit block b, column 4b + k of rows 4q..4q+3 */
    for (int i = 0; i < 16; i += 8)
        for (int k = 0; k < 4; k++) {
            t[i + k] = _mm512_shuffle_f32x4(u[i + k], u[i + k + 4], 0x88);
            t[i + k + 4] = _mm512_shuffle_f32x4(u[i + k], u[i + k + 4], 0xdd);
        }
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
        r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
    }
}

/* gt (np, OCp) = dout (OC, np) transposed, zeros past OC. */
void convk_dout_t16(float *gt, int OCp, const float *dout, int OC, int np)
{
    for (int o0 = 0; o0 < OCp; o0 += 16)
        for (int p0 = 0; p0 < np; p0 += 16) {
            const int n = np - p0 < 16 ? np - p0 : 16;
            const __mmask16 m = (__mmask16)((1u << n) - 1);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = o0 + i < OC ? _mm512_maskz_loadu_ps(m, dout + (size_t)(o0 + i) * np + p0)
                                   : _mm512_setzero_ps();
            tr16(r);
            for (int i = 0; i < n; i++)
                _mm512_storeu_ps(gt + (size_t)(p0 + i) * OCp + o0, r[i]);
        }
}

static ALWAYS_INLINE void dwt16_tile(float *dw, const float *gt, int OCp, const float *in, int H, int W, int C,
                                     int OC, int OH, int OW, int c0, int ky0, int n0, const int CB,
                                     const int NKY, const int K)
{
    enum { NTMAX = 32 };
    const int NT = CB * NKY * K;
    vz acc[NTMAX];
    for (int f = 0; f < NT; f++)
        acc[f] = vbcast_v16(0.0f);
    for (int y = 0; y < OH; y++) {
        const float *grow = gt + (size_t)y * OW * OCp + (size_t)n0 * 16;
        /* One pointer per input row, stepped along x and hidden from GCC:
         * else it keeps the inputs that the next x reuses in scalar
         * registers and spills them, or holds each row's offset in a
         * register it has too few of, instead of one broadcast-FMA per
         * tap with the kx offset as displacement. */
        const float *rp[NTMAX];
        for (int r = 0; r < CB * NKY; r++)
            rp[r] = in + ((size_t)(c0 + r / NKY) * H + y + ky0 + r % NKY) * W;
        for (int x = 0; x < OW; x++) {
            vz g = vload_v16(grow + (size_t)x * OCp);
            IN_REGISTER(g);
            for (int r = 0; r < CB * NKY; r++) {
                __asm__("" : "+r"(rp[r]));
                for (int kx = 0; kx < K; kx++)
                    acc[r * K + kx] += vbcast_v16(rp[r][kx]) * g;
                rp[r]++;
            }
        }
    }
    for (int f0 = 0; f0 < NT; f0 += 16) {
        const int n = NT - f0 < 16 ? NT - f0 : 16;
        const __mmask16 m = (__mmask16)((1u << n) - 1);
        __m512 r[16];
        for (int i = 0; i < 16; i++)
            r[i] = i < n ? (__m512)acc[f0 + i] : _mm512_setzero_ps();
        tr16(r);
        for (int l = 0; l < 16 && n0 * 16 + l < OC; l++) {
            float *d = dw + (((size_t)(n0 * 16 + l) * C + c0) * K + ky0) * K + f0;
            _mm512_mask_storeu_ps(d, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d), r[l]));
        }
    }
}

/* Tiles of up to 28 taps (+ 1 gradient vector in the 32 registers):
 * whole kernels of CB channels where K*K <= 14, else single channels in
 * blocks of kernel rows. */
static ALWAYS_INLINE void dwt16_k(float *dw, const float *gt, int OCp, const float *in, int H, int W, int C,
                                  int OC, int OH, int OW, const int K)
{
    const int CB = K * K <= 14 ? 28 / (K * K) : 1, NKY = K * K <= 28 ? K : 28 / K;
    for (int n0 = 0; n0 < OCp / 16; n0++) {
        int c = 0;
        if (CB > 1)
            for (; c + CB <= C; c += CB)
                dwt16_tile(dw, gt, OCp, in, H, W, C, OC, OH, OW, c, 0, n0, CB, K, K);
        for (; c < C; c++) {
            int ky = 0;
            for (; ky + NKY <= K; ky += NKY)
                dwt16_tile(dw, gt, OCp, in, H, W, C, OC, OH, OW, c, ky, n0, 1, NKY, K);
            if (ky < K)
                dwt16_tile(dw, gt, OCp, in, H, W, C, OC, OH, OW, c, ky, n0, 1, K % NKY, K);
        }
    }
}

void convk_dwt16(float *dw, const float *gt, int OCp, const float *in, int H, int W, int C, int OC, int OH,
                 int OW, int K)
{
    switch (K) {
    case 1: dwt16_k(dw, gt, OCp, in, H, W, C, OC, OH, OW, 1); break;
    case 2: dwt16_k(dw, gt, OCp, in, H, W, C, OC, OH, OW, 2); break;
    case 3: dwt16_k(dw, gt, OCp, in, H, W, C, OC, OH, OW, 3); break;
    case 4: dwt16_k(dw, gt, OCp, in, H, W, C, OC, OH, OW, 4); break;
    case 5: dwt16_k(dw, gt, OCp, in, H, W, C, OC, OH, OW, 5); break;
    case 6: dwt16_k(dw, gt, OCp, in, H, W, C, OC, OH, OW, 6); break;
    case 7: dwt16_k(dw, gt, OCp, in, H, W, C, OC, OH, OW, 7); break;
    default: break;
    }
}

/* ---- Forward with vectors along the output channels, rows 4 to 7 wide ----
 * For the narrow outputs of a late layer (7x7 kernels: 5 wide), where
 * rows padded to 8 leave 3 lanes in 8 idle: the lanes are 16 output
 * channels, the accumulators NR whole output rows (NR*OW <= 28), per tap
 * one vector of weights (w transposed to (c, ky, kx, OCp) once per call,
 * in registers) and a broadcast-FMA per position, then the accumulators
 * transposed back to (o, position). The sum order per output (bias, c,
 * ky, kx) is the other forward kernels', so the bits are too. */
static ALWAYS_INLINE void fwdoc_tile(float *out, const float *in, const float *wt, int OCp, const float *b, int C,
                                     int H, int W, int OC, int OH, int K, int n0, int y0, const int OW,
                                     const int NR, int relu)
{
    enum { NMAX = 28 };
    const int NP = NR * OW;
    const int nb = OC - 16 * n0 < 16 ? OC - 16 * n0 : 16;
    const vz bv = (vz)_mm512_maskz_loadu_ps((__mmask16)((1u << nb) - 1), b + 16 * n0);
    vz acc[NMAX];
    for (int i = 0; i < NP; i++)
        acc[i] = bv;
    ptrdiff_t rw[NMAX / 4 + 1];
    for (int r = 0; r < NR; r++)
        rw[r] = (ptrdiff_t)r * W;
    const float *wp = wt + (size_t)16 * n0;
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++) {
            const float *base = in + ((size_t)c * H + y0 + ky) * W;
            for (int kx = 0; kx < K; kx++, wp += OCp) {
                vz wv = vload_v16(wp);
                IN_REGISTER(wv);
                const float *bp = base + kx;
                __asm__("" : "+r"(bp));
                for (int r = 0; r < NR; r++)
                    for (int x = 0; x < OW; x++)
                        acc[r * OW + x] += vbcast_v16(bp[rw[r] + x]) * wv;
            }
        }
    for (int f0 = 0; f0 < NP; f0 += 16) {
        const int n = NP - f0 < 16 ? NP - f0 : 16;
        __m512 t[16];
        for (int i = 0; i < 16; i++) {
            vz v = i < n ? acc[f0 + i] : vbcast_v16(0.0f);
            if (relu)
                v = vrelu_v16(&v);
            t[i] = (__m512)v;
        }
        tr16(t);
        for (int l = 0; l < nb; l++)
            _mm512_mask_storeu_ps(out + ((size_t)(16 * n0 + l) * OH + y0) * OW + f0, (__mmask16)((1u << n) - 1),
                                  t[l]);
    }
}

static ALWAYS_INLINE void fwdoc_w(float *out, const float *in, const float *wt, int OCp, const float *b, int C,
                                  int H, int W, int OC, int K, const int OW, int relu)
{
    /* as many whole rows as 28 accumulators hold; 4-wide rows: 4 rows,
     * one transpose's worth (the 7x7 network's conv2, 4x4 live) */
    const int NR = OW == 4 ? 4 : 28 / OW;
    const int OH = H - K + 1;
    for (int n0 = 0; n0 < OCp / 16; n0++) {
        int y0 = 0;
        for (; y0 + NR <= OH; y0 += NR)
            fwdoc_tile(out, in, wt, OCp, b, C, H, W, OC, OH, K, n0, y0, OW, NR, relu);
        for (; y0 < OH; y0++)
            fwdoc_tile(out, in, wt, OCp, b, C, H, W, OC, OH, K, n0, y0, OW, 1, relu);
    }
}

void convk_fwdoc(float *out, const float *in, const float *w, const float *b, float *wt, int C, int H, int W,
                 int OC, int K, int relu)
{
    const int OCp = (OC + 15) / 16 * 16;
    convk_dout_t16(wt, OCp, w, OC, C * K * K);
    switch (W - K + 1) {
    case 4: fwdoc_w(out, in, wt, OCp, b, C, H, W, OC, K, 4, relu); break;
    case 5: fwdoc_w(out, in, wt, OCp, b, C, H, W, OC, K, 5, relu); break;
    case 6: fwdoc_w(out, in, wt, OCp, b, C, H, W, OC, K, 6, relu); break;
    case 7: fwdoc_w(out, in, wt, OCp, b, C, H, W, OC, K, 7, relu); break;
    default: break;
    }
}
#endif
