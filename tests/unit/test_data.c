/* test_data.c - the counter-based RNG, input normalisation and shift
 * augmentation, the PGM reader, and evaluation's independence of the
 * thread count. */
#include "tests.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "data.h"
#include "eval.h"
#include "network.h"
#include "pgm.h"

static void rng_below_in_range(void **state)
{
    (void)state;
    const uint32_t ns[] = { 1, 2, 3, 7, 10, 1000, 65537, 0x80000001u, 0xFFFFFFFFu };
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        rng_t r = rng_seed(42, 1, k);
        uint32_t lo = UINT32_MAX, hi = 0;
        for (int i = 0; i < 20000; i++) {
            uint32_t v = rng_below(&r, ns[k]);
            if (v >= ns[k])
                fail_msg("rng_below(%u) gave %u", ns[k], v);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        if (ns[k] <= 1000) { /* small ranges are covered end to end */
            assert_int_equal(lo, 0);
            assert_int_equal(hi, ns[k] - 1);
        } else {
            assert_true(hi > ns[k] / 2); /* not stuck in the low half */
        }
    }
    /* Roughly uniform: 100000 draws in 10 bins, each within 5% of 10000. */
    rng_t r = rng_seed(7, 2, 0);
    int bins[10] = { 0 };
    for (int i = 0; i < 100000; i++)
        bins[rng_below(&r, 10)]++;
    for (int b = 0; b < 10; b++)
        assert_in_range(bins[b], 9500, 10500);
}

static void rng_is_a_pure_function(void **state)
{
    (void)state;
    rng_t a = rng_seed(1, 2, 3), b = rng_seed(1, 2, 3);
    for (int i = 0; i < 100; i++)
        assert_true(rng_next(&a) == rng_next(&b));
    /* Seed, stream and counter each change the sequence. */
    rng_t s0 = rng_seed(1, 2, 3), s1 = rng_seed(2, 2, 3), s2 = rng_seed(1, 3, 3), s3 = rng_seed(1, 2, 4);
    uint64_t v0 = rng_next(&s0);
    assert_true(v0 != rng_next(&s1));
    assert_true(v0 != rng_next(&s2));
    assert_true(v0 != rng_next(&s3));
    /* rng_uniform stays in [0, 1) and has mean about 0.5. */
    rng_t u = rng_seed(9, 9, 9);
    double sum = 0.0;
    for (int i = 0; i < 100000; i++) {
        float x = rng_uniform(&u);
        assert_true(x >= 0.0f && x < 1.0f);
        sum += x;
    }
    assert_true(fabs(sum / 100000 - 0.5) < 0.01);
}

static void stats(const float *x, size_t n, double *mean, double *sd)
{
    double s = 0.0, q = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    *mean = s / (double)n;
    for (size_t i = 0; i < n; i++)
        q += (x[i] - *mean) * (x[i] - *mean);
    *sd = sqrt(q / (double)n);
}

static void normalize_modes(void **state)
{
    (void)state;
    enum { NPIX = 28 * 28 };
    uint8_t pix[NPIX];
    float out[NPIX];
    /* A digit-like image: a dark background with a bright stroke. */
    for (int i = 0; i < NPIX; i++)
        pix[i] = (i % 28 > 10 && i % 28 < 15) ? (uint8_t)(200 + i % 50) : (uint8_t)(i % 3);
    data_normalize(out, pix, NPIX, NORM_ZSCORE);
    double mean, sd;
    stats(out, NPIX, &mean, &sd);
    assert_true(fabs(mean) < 1e-5);
    assert_true(fabs(sd - 1.0) < 1e-4);
    /* Blank images have no spread: all zeros, no NaN or Inf. */
    const uint8_t levels[2] = { 0, 255 };
    for (int k = 0; k < 2; k++) {
        memset(pix, levels[k], NPIX);
        for (int i = 0; i < NPIX; i++)
            out[i] = NAN;
        data_normalize(out, pix, NPIX, NORM_ZSCORE);
        for (int i = 0; i < NPIX; i++)
            assert_true(out[i] == 0.0f);
    }
    /* One odd pixel in a blank image: finite, mean 0, deviation 1. */
    pix[5] = 0;
    data_normalize(out, pix, NPIX, NORM_ZSCORE);
    stats(out, NPIX, &mean, &sd);
    assert_true(isfinite(out[5]) && fabs(mean) < 1e-5 && fabs(sd - 1.0) < 1e-4);
    /* scale: pixels / 255; dataset: (pixels / 255 - 0.1307) / 0.3081. */
    const uint8_t three[3] = { 0, 51, 255 };
    float o3[3];
    data_normalize(o3, three, 3, NORM_SCALE);
    assert_true(o3[0] == 0.0f && fabs(o3[1] - 0.2) < 1e-6 && o3[2] == 1.0f);
    data_normalize(o3, three, 3, NORM_DATASET);
    assert_true(fabs(o3[0] - (-0.1307 / 0.3081)) < 1e-5);
    assert_true(fabs(o3[2] - (1 - 0.1307) / 0.3081) < 1e-5);
}

static void augment_shift_deterministic(void **state)
{
    (void)state;
    int seen[7][7] = { { 0 } };
    int changed_by_epoch = 0;
    for (size_t i = 0; i < 2000; i++) {
        int dx, dy, dx2, dy2;
        data_augment_shift(11, 4, i, 3, &dx, &dy);
        data_augment_shift(11, 4, i, 3, &dx2, &dy2);
        assert_int_equal(dx, dx2);
        assert_int_equal(dy, dy2);
        assert_in_range(dx + 3, 0, 6);
        assert_in_range(dy + 3, 0, 6);
        seen[dy + 3][dx + 3]++;
        data_augment_shift(11, 5, i, 3, &dx2, &dy2);
        changed_by_epoch += dx != dx2 || dy != dy2;
    }
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 7; x++)
            assert_true(seen[y][x] > 0); /* every shift in [-3, 3]^2 happens */
    assert_true(changed_by_epoch > 1500);
    int dx = 99, dy = 99;
    data_augment_shift(11, 4, 0, 0, &dx, &dy);
    assert_true(dx == 0 && dy == 0);
}

/* data_sample moves the picture by (dx, dy), filling with zeros. */
static void sample_shift_moves_pixels(void **state)
{
    (void)state;
    enum { R = 6, C = 5 };
    uint8_t pix[2 * R * C] = { 0 };
    uint8_t label[2] = { 0, 1 };
    pix[R * C + 2 * C + 1] = 255; /* image 1, (y, x) = (2, 1) */
    pix[R * C + 0 * C + 4] = 51;  /* image 1, (0, 4) */
    dataset ds = { 2, R, C, pix, label, NULL };
    float out[R * C];
    data_sample(out, &ds, 1, NORM_SCALE, 2, 3);
    for (int y = 0; y < R; y++)
        for (int x = 0; x < C; x++) {
            float want = (y == 5 && x == 3) ? 1.0f : 0.0f; /* (2,1) moved by (+3, +2); (0,4) left the image */
            assert_true(out[y * C + x] == want);
        }
    data_sample(out, &ds, 1, NORM_SCALE, -4, 0);
    for (int y = 0; y < R; y++)
        for (int x = 0; x < C; x++)
            assert_true(fabs(out[y * C + x] - ((y == 0 && x == 0) ? 0.2 : 0.0)) < 1e-6);
    data_sample(out, &ds, 1, NORM_SCALE, 0, 0);
    assert_true(out[2 * C + 1] == 1.0f);
}

/* The row-span copy against a pixel-by-pixel oracle, for every shift up
 * to past the edges (all zero there). */
static void sample_shift_matches_pixel_copy(void **state)
{
    (void)state;
    enum { R = 6, C = 5 };
    uint8_t pix[R * C], label[1] = { 0 };
    for (int i = 0; i < R * C; i++)
        pix[i] = (uint8_t)(37 * i + 11);
    dataset ds = { 1, R, C, pix, label, NULL };
    for (int dy = -R - 1; dy <= R + 1; dy++)
        for (int dx = -C - 1; dx <= C + 1; dx++) {
            uint8_t moved[R * C] = { 0 };
            for (int y = 0; y < R; y++)
                for (int x = 0; x < C; x++)
                    if (y - dy >= 0 && y - dy < R && x - dx >= 0 && x - dx < C)
                        moved[y * C + x] = pix[(y - dy) * C + (x - dx)];
            float got[R * C], want[R * C];
            data_sample(got, &ds, 0, NORM_ZSCORE, dx, dy);
            data_normalize(want, moved, R * C, NORM_ZSCORE);
            assert_memory_equal(got, want, sizeof got);
        }
}

/* A big image's squares pass 2^32 (255^2 * 70,000): its z-score still
 * comes out at exactly -1 and +1. */
static void zscore_big_image_sums_exactly(void **state)
{
    (void)state;
    enum { N = 140000 };
    uint8_t *px = malloc(N);
    float *out = malloc(N * sizeof *out);
    assert_non_null(px);
    assert_non_null(out);
    for (size_t i = 0; i < N; i++)
        px[i] = i % 2 ? 255 : 0;
    data_normalize(out, px, N, NORM_ZSCORE);
    assert_true(out[0] == -1.0f && out[1] == 1.0f && out[N - 1] == 1.0f);
    free(px);
    free(out);
}

static void pgm_reads_and_refuses(void **state)
{
    (void)state;
    uint8_t *px = NULL;
    uint32_t rows = 0, cols = 0;
    tr_error err = { 0 };
    const uint8_t p5[] = "P5\n# a comment\n3 2\n255\n\x00\x10\x20\x30\x40\xff";
    assert_true(pgm_sniff(p5, sizeof p5 - 1));
    assert_ok(pgm_parse("a.pgm", p5, sizeof p5 - 1, &px, &rows, &cols, &err), &err);
    assert_int_equal(rows, 2);
    assert_int_equal(cols, 3);
    assert_memory_equal(px, "\x00\x10\x20\x30\x40\xff", 6);
    free(px);
    const char p2[] = "P2\n2 2\n15\n0 15\n# mid\n5 10\n";
    assert_ok(pgm_parse("b.pgm", (const uint8_t *)p2, strlen(p2), &px, &rows, &cols, &err), &err);
    assert_memory_equal(px, "\x00\xff\x55\xaa", 4); /* scaled from maxval 15 */
    free(px);
    px = NULL;
    assert_false(pgm_sniff((const uint8_t *)"\x00\x00\x08\x03", 4));
    assert_fails(pgm_parse("c.idx", (const uint8_t *)"\x00\x00\x08\x03", 4, &px, &rows, &cols, &err), &err,
                 TR_EINPUT, "c.idx", "not a PGM");
    err = (tr_error){ 0 };
    assert_fails(pgm_parse("d.pgm", p5, sizeof p5 - 2, &px, &rows, &cols, &err), &err, TR_EINPUT, "d.pgm",
                 "promises");
    err = (tr_error){ 0 };
    const char bad[] = "P2\n2 2\n255\n0 1 300 3\n";
    assert_fails(pgm_parse("e.pgm", (const uint8_t *)bad, strlen(bad), &px, &rows, &cols, &err), &err,
                 TR_EINPUT, "e.pgm", "pixel 2");
    err = (tr_error){ 0 };
    const char nomax[] = "P5\n2 2\n65535\n";
    assert_fails(pgm_parse("f.pgm", (const uint8_t *)nomax, strlen(nomax), &px, &rows, &cols, &err), &err,
                 TR_EINPUT, "f.pgm", "header");
    /* A header promising a huge image is refused before anything is
     * allocated (under ASan an attempt to allocate it aborts the run). */
    err = (tr_error){ 0 };
    const char huge[] = "P5\n1000000 1000000\n255\n\x01\x02\x03";
    assert_fails(pgm_parse("g.pgm", (const uint8_t *)huge, strlen(huge), &px, &rows, &cols, &err), &err,
                 TR_EINPUT, "g.pgm");
    err = (tr_error){ 0 };
    const char huge2[] = "P2\n1000000 1000000\n255\n1 2 3\n";
    assert_fails(pgm_parse("h.pgm", (const uint8_t *)huge2, strlen(huge2), &px, &rows, &cols, &err), &err,
                 TR_EINPUT, "h.pgm");
    assert_null(px);
}

/* Evaluation gives the same figures with 1 thread and with 3. */
static void eval_independent_of_threads(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    network net;
    tr_error err = { 0 };
    assert_ok(net_create(&net, &c, &err), &err);
    net_init_params(&net, c.init, 3);
    enum { COUNT = 23 };
    uint8_t *pix = malloc(COUNT * 28 * 28), labels[COUNT];
    assert_non_null(pix);
    rng_t r = rng_seed(4, 4, 4);
    for (size_t i = 0; i < COUNT * 28 * 28; i++)
        pix[i] = (uint8_t)rng_below(&r, 256);
    for (int i = 0; i < COUNT; i++)
        labels[i] = (uint8_t)(i % 10);
    dataset ds = { COUNT, 28, 28, pix, labels, NULL };
    net_workspace *ws = net_workspaces_create(&net, 3, &err);
    assert_non_null(ws);
    eval_result a, b;
    uint8_t pa[COUNT - 2], pb[COUNT - 2];
    float ca[COUNT - 2], cb[COUNT - 2];
    assert_ok(eval_dataset(&net, &ds, 2, COUNT - 2, NORM_ZSCORE, ws, 1, &a, pa, ca, &err), &err);
    assert_ok(eval_dataset(&net, &ds, 2, COUNT - 2, NORM_ZSCORE, ws, 3, &b, pb, cb, &err), &err);
    assert_int_equal(a.total, COUNT - 2);
    assert_int_equal(a.correct, b.correct);
    assert_true(a.loss == b.loss && a.loss > 0);
    assert_memory_equal(a.confusion, b.confusion, 100 * sizeof(uint64_t));
    assert_memory_equal(pa, pb, sizeof pa);
    assert_memory_equal(ca, cb, sizeof ca);
    uint64_t total = 0;
    for (int i = 0; i < 100; i++)
        total += a.confusion[i];
    assert_int_equal(total, COUNT - 2);
    eval_result_free(&a);
    eval_result_free(&b);
    net_workspaces_free(ws, 3);
    net_free(&net);
    free(pix);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(rng_below_in_range),
    cmocka_unit_test(rng_is_a_pure_function),
    cmocka_unit_test(normalize_modes),
    cmocka_unit_test(augment_shift_deterministic),
    cmocka_unit_test(sample_shift_moves_pixels),
    cmocka_unit_test(sample_shift_matches_pixel_copy),
    cmocka_unit_test(zscore_big_image_sums_exactly),
    cmocka_unit_test(pgm_reads_and_refuses),
    cmocka_unit_test(eval_independent_of_threads),
};
TEST_GROUP(data_group, tests);
