/* conv_simd.h - what the files of the convolution layer share (conv.c, the
 * dispatch, and conv_*.c, one file per kernel family); internal to them,
 * layers.h being the layer's interface. The vector types with their
 * helpers, static inline in every file so that the kernels keep their
 * vectors in registers; then per family, the convk_ kernels that the
 * dispatch calls and the scratch sizes that the path choice asks. The
 * convk_ functions take pointers and scalars only: no vector crosses a
 * file. */
#ifndef TRAINER_CONV_SIMD_H
#define TRAINER_CONV_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- Fast kernels ----
 *
 * The hot shapes (5x5 kernels whose output rows are 8 or 24 wide, as in the
 * default network) get register-blocked kernels written with GCC/Clang
 * vector types: 8 floats per vector, loads and stores through memcpy so no
 * alignment is assumed, and FMAs from -ffp-contract=fast. Every sum runs in
 * an order fixed by the shape alone, so a sample's result does not depend on
 * the thread or buffer that computes it. Other shapes, and compilers
 * without vector types, take the loop kernels (conv.c). */

#if defined(__GNUC__) && !defined(TRAINER_NO_VECTORS)
#define CONV_VECTORS 1
#if !defined(__clang__)
/* Only static functions see vector arguments; no ABI crosses a file. */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

typedef float vf __attribute__((vector_size(32)));
enum { VL = 8 };

static inline vf vload(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Vector arguments go by pointer: by value they would raise GCC's ABI
 * note on targets without AVX. */
static inline void vstore(float *p, const vf *v)
{
    memcpy(p, v, sizeof *v);
}

static inline vf vbcast(float x)
{
    return (vf){ x, x, x, x, x, x, x, x };
}

/* max(x, 0) lane by lane; NaN gives 0, as relu_forward does. */
static inline vf vrelu(const vf *x)
{
    typedef int vi __attribute__((vector_size(32)));
    vi keep = *x > vbcast(0.0f);
    return (vf)((vi)*x & keep);
}

/* A fixed pairwise order: the same bits for the same vector. */
static inline float hsum(const vf *p)
{
    vf v = *p;
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

/* Targets with 32 vector registers (AVX-512VL, also for 256-bit vectors)
 * take twice the accumulators; AVX2 and SSE have 16. */
#if defined(__AVX512VL__)
enum { WIDE = 2 };
#else
enum { WIDE = 1 };
#endif
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* CALL with KC the constant 1 to 7 that equals K (nothing for another K):
 * each ALWAYS_INLINE kernel it names is compiled for its own kernel size. */
#define CONVK_WITH_K(K, CALL)                                                                            \
    switch (K) {                                                                                        \
    case 1: { enum { KC = 1 }; CALL; } break;                                                           \
    case 2: { enum { KC = 2 }; CALL; } break;                                                           \
    case 3: { enum { KC = 3 }; CALL; } break;                                                           \
    case 4: { enum { KC = 4 }; CALL; } break;                                                           \
    case 5: { enum { KC = 5 }; CALL; } break;                                                           \
    case 6: { enum { KC = 6 }; CALL; } break;                                                           \
    case 7: { enum { KC = 7 }; CALL; } break;                                                           \
    default: break;                                                                                     \
    }

/* GCC folds a loaded vector into every FMA that uses it as a memory
 * operand, so a vector used by 4 FMAs is loaded 4 times (often across a
 * cache line). An empty asm that claims to change it keeps it in a
 * register. No instructions; elsewhere a no-op. */
#if defined(__AVX512F__)
#define IN_REGISTER(v) __asm__("" : "+v"(v))
#elif defined(__AVX__)
#define IN_REGISTER(v) __asm__("" : "+x"(v))
#else
#define IN_REGISTER(v) ((void)0)
#endif

/* 512-bit vectors where the CPU has AVX-512: the general kernels' 16-lane
 * width and the vec512 families. */
#if defined(__AVX512F__)
#define GEN_V16 1
#include <immintrin.h>
typedef float vz __attribute__((vector_size(64)));
#endif

/* The helpers per width (vload_v8, vbcast_v16, ...). */
#define TV vf
#define TL 8
#define TN(x) x##_v8
#include "conv_vec.inc"
#undef TV
#undef TL
#undef TN
#ifdef GEN_V16
#define TV vz
#define TL 16
#define TN(x) x##_v16
#include "conv_vec.inc"
#undef TV
#undef TL
#undef TN
#endif

/* conv_tiled.c: 5x5 filters, output rows 24 or 8 wide (the shapes that
 * fwd_path and bwd_path send), and db for every vector path. */
void convk_fwd_w24_k5(float *out, const float *in, const float *w, const float *b, int C, int H,
                      int W, int OC, int relu);
void convk_fwd_w8_k5(float *out, const float *in, const float *w, const float *b, int C, int H,
                     int W, int OC, int relu);
void convk_bias_grad(float *db, const float *dout, int OC, int n);
void convk_dw_w24_k5(float *dw, const float *dout, const float *in, int C, int H, int W, int OC);
void convk_dw_w8_k5_oc16(float *dw, const float *dout, const float *in, int C, int H, int W);
void convk_din_w8_k5_h12(float *din, const float *dout, const float *w, int C, int W, int OC);

/* conv_general.c: any filter count, K <= 7. The path choice asks the
 * lanes and the scratch below, gen_backward the lanes of dw along the
 * output channels. */

static inline int round_up(int n, int m)
{
    return (n + m - 1) / m * m;
}

/* Lanes for rows OW wide: 16 above 8 (a row's last chunk overlaps the one
 * before; rows of 9 to 15 are padded to 16, measured 1.25-1.5x faster than
 * two overlapping 8-lane chunks); 8 up to 8, narrower rows padded to 8. */
static inline int gen_lanes(int OW)
{
#if defined(GEN_V16) && !defined(GEN_FORCE8)
    if (OW > 8)
        return 16;
#endif
    (void)OW;
    return 8;
}

/* dw with vectors along the output channels (dwoc) for rows narrower than
 * 16, where row vectors would leave few positions per horizontal sum; its
 * lanes: 16 where there are more than 8 channels and AVX-512. */
static inline int dwoc_lanes(int OW, int OC)
{
    if (OW >= 16)
        return 0;
#if defined(GEN_V16) && !defined(GEN_FORCE8)
    if (OC > 8)
        return 16;
#endif
    (void)OC;
    return 8;
}

/* C planes of H rows, W wide, copied into rows WP wide, zero past W (the
 * general path's padding; flat_din's grid). */
void convk_pad_rows(float *dst, int WP, const float *src, int C, int H, int W);

/* Floats of scratch the general path needs: where rows are padded, the
 * input padded to rows OWp+K-1 wide, din as the input and the gradient
 * padded to OWp; then dout transposed for dwoc. */
static inline size_t gen_scratch(int C, int H, int W, int OC, int K)
{
    int OH = H - K + 1, OW = W - K + 1, lanes = gen_lanes(OW), OWp = OW < lanes ? lanes : OW;
    int Wp = OWp + K - 1, ol = dwoc_lanes(OW, OC);
    size_t n = OWp != OW ? 2 * (size_t)C * H * Wp + (size_t)OC * OH * OWp : 0;
    if (ol)
        n += (size_t)OH * OW * round_up(OC, ol);
    return n;
}

/* LANES: gen_lanes; SCRATCH: gen_scratch floats. */
void convk_gen_forward(float *out, const float *in, const float *w, const float *b, int C, int H, int W,
                       int OC, int K, int relu, int lanes, float *scratch);
void convk_gen_backward(float *din, float *dw, float *db, const float *dout, const float *in, const float *w,
                        int C, int H, int W, int OC, int K, int lanes, float *scratch);

#ifdef GEN_V16
/* conv_rowpairs.c: output rows 8 wide, two to a vector. */
void convk_din_pair(float *din, const float *dout, const float *w, int C, int OC, int K);
void convk_fwd_pair(float *out, const float *in, const float *w, const float *b, int C, int H, int W, int OC,
                    int K, int relu, float *pooled, int32_t *argmax);

/* conv_flat.c: the input's grid. flat_dw takes GG with flat_dw_floats of
 * room, for dout spread onto the grid. */
void convk_flat_fwd(float *out, const float *in, const float *w, const float *b, int C, int H, int W, int OC,
                    int K, int relu);
/* Floats of gg: OC x the grid's vectors. */
static inline size_t flat_dw_floats(int H, int W, int OC, int K)
{
    const int OH = H - K + 1, OW = W - K + 1, ng = (OH - 1) * W + OW;
    return (size_t)OC * ((ng + 15) / 16 * 16);
}
void convk_flat_dw(float *dw, float *gg, const float *dout, const float *in, int C, int H, int W, int OC, int K);
/* din on its own grid: GP takes flat_din_floats of room, for dout with
 * zeros around it. */
static inline size_t flat_din_lead(int W, int K)
{
    return (size_t)(K - 1) * W + (size_t)(K - 1);
}
/* Floats of one filter's grid: the lead, H rows, whole vectors and one
 * more, for the last vector's loads shifted past the rows. */
static inline size_t flat_din_stride(int H, int W, int K)
{
    return (flat_din_lead(W, K) + (size_t)H * W + 15) / 16 * 16 + 16;
}
static inline size_t flat_din_floats(int H, int W, int OC, int K)
{
    return (size_t)OC * flat_din_stride(H, W, K);
}
/* The share of its lanes that sum a term: flat_din against rows padded to
 * the vector (the path choice compares them). */
static inline double flat_din_lane_use(int H, int W, int K)
{
    return (double)(H - K + 1) * (W - K + 1) / (16.0 * ((H * W + 15) / 16));
}
void convk_flat_din(float *din, float *gp, const float *dout, const float *w, int C, int H, int W, int OC, int K);

/* conv_rows.c: output rows 17 to 31 wide, along the output. */
void convk_rows_fwd(float *out, const float *in, const float *w, const float *b, int C, int H, int W, int OC,
                    int K, int relu, float *pooled, int32_t *argmax);

/* conv_oc.c: vectors along the output channels. dwt16 takes dout as
 * dout_t16 transposes it; fwdoc takes WT with fwdoc_floats of room, for
 * the weights transposed. */
void convk_dout_t16(float *gt, int OCp, const float *dout, int OC, int np);
void convk_dwt16(float *dw, const float *gt, int OCp, const float *in, int H, int W, int C, int OC, int OH,
                 int OW, int K);
/* Floats of the transposed weights. */
static inline size_t fwdoc_floats(int C, int OC, int K)
{
    return (size_t)C * K * K * ((OC + 15) / 16 * 16);
}
void convk_fwdoc(float *out, const float *in, const float *w, const float *b, float *wt, int C, int H, int W,
                 int OC, int K, int relu);
#endif
#endif /* CONV_VECTORS */

#endif
