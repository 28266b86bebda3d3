/* test_image.c - decoding pictures (image.c, the PPM part of pgm.c) and
 * making them look like MNIST (preprocess.c). The bats tests feed real
 * files from ImageMagick; these pin down the arithmetic. */
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "pngout.h"
#include "preprocess.h"
#include "tests.h"

static void ppm_colour_becomes_luma_grey(void **state)
{
    (void)state;
    tr_error err = { 0 };
    gray_image img;
    /* red, green, blue, white */
    const uint8_t p6[] = "P6\n4 1\n255\n\xff\x00\x00\x00\xff\x00\x00\x00\xff\xff\xff\xff";
    assert_int_equal(image_sniff(p6, sizeof p6 - 1), IMAGE_PNM);
    assert_ok(image_decode("a.ppm", p6, sizeof p6 - 1, &img, &err), &err);
    assert_int_equal(img.width, 4);
    assert_int_equal(img.height, 1);
    assert_memory_equal(img.pixels, "\x4c\x95\x1d\xff", 4); /* 76 149 29 255 */
    image_free(&img);
    const char p3[] = "P3\n4 1\n255\n255 0 0  0 255 0  0 0 255  255 255 255\n";
    assert_ok(image_decode("b.ppm", (const uint8_t *)p3, strlen(p3), &img, &err), &err);
    assert_memory_equal(img.pixels, "\x4c\x95\x1d\xff", 4);
    image_free(&img);
    /* 16-bit samples, big-endian: the same colours */
    const uint8_t p6w[] = "P6\n2 1\n65535\n\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff";
    assert_ok(image_decode("c.ppm", p6w, sizeof p6w - 1, &img, &err), &err);
    assert_memory_equal(img.pixels, "\x4c\xff", 2);
    image_free(&img);
    /* a pixel short */
    assert_fails(image_decode("d.ppm", p6, sizeof p6 - 2, &img, &err), &err, TR_EINPUT, "d.ppm", "promises");
    assert_null(img.pixels);
}

static void png_round_trip_and_truncation(void **state)
{
    const char *dir = *state;
    tr_error err = { 0 };
    uint8_t rgb[3 * 3 * 2];
    for (int i = 0; i < 6; i++) {
        rgb[3 * i] = (uint8_t)(40 * i);
        rgb[3 * i + 1] = (uint8_t)(40 * i);
        rgb[3 * i + 2] = (uint8_t)(40 * i);
    }
    const char *path = path_in(dir, "a.png");
    assert_ok(png_write_rgb(path, rgb, 3, 2, &err), &err);
    size_t len;
    uint8_t *data = read_file(path, &len);
    gray_image img;
    assert_int_equal(image_sniff(data, len), IMAGE_PNG);
    assert_ok(image_decode(path, data, len, &img, &err), &err);
    assert_int_equal(img.width, 3);
    assert_int_equal(img.height, 2);
    for (int i = 0; i < 6; i++)
        assert_int_equal(img.pixels[i], 40 * i); /* grey stays grey */
    image_free(&img);
    for (size_t cut = 8; cut < len; cut += 7) {
        err = (tr_error){ 0 };
        assert_fails(image_decode("cut.png", data, cut, &img, &err), &err, TR_EINPUT, "cut.png", "PNG");
        assert_null(img.pixels);
    }
    free(data);
    err = (tr_error){ 0 };
    assert_fails(image_decode("t.txt", (const uint8_t *)"hello", 5, &img, &err), &err, TR_EINPUT, "t.txt",
                 "not a PNG, JPEG");
}

/* A W x H picture: background BG, a rectangle of INK at (x, y, w, h). */
static uint8_t *picture(int W, int H, uint8_t bg, uint8_t ink, int x, int y, int w, int h)
{
    uint8_t *p = malloc((size_t)W * H);
    assert_non_null(p);
    memset(p, bg, (size_t)W * H);
    for (int r = y; r < y + h; r++)
        memset(p + (size_t)r * W + x, ink, (size_t)w);
    return p;
}

static void preprocess_fits_20x20_and_centres_by_mass(void **state)
{
    (void)state;
    tr_error err = { 0 };
    /* a 10x40 black bar on white, far off centre in a 100x60 picture */
    uint8_t *p = picture(100, 60, 255, 0, 70, 5, 10, 40), out[28 * 28];
    assert_ok(preprocess_mnist("bar.png", p, 100, 60, 28, out, &err), &err);
    int x0 = 28, x1 = -1, y0 = 28, y1 = -1, top = 0;
    double mass = 0, mx = 0, my = 0;
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            int v = out[y * 28 + x];
            if (!v)
                continue;
            x0 = x < x0 ? x : x0;
            x1 = x > x1 ? x : x1;
            y0 = y < y0 ? y : y0;
            y1 = y > y1 ? y : y1;
            top = v > top ? v : top;
            mass += v;
            mx += v * (x + 0.5);
            my += v * (y + 0.5);
        }
    assert_int_equal(top, 255);       /* white ink on black */
    assert_int_equal(y1 - y0 + 1, 20); /* the long side fits 20 */
    assert_int_equal(x1 - x0 + 1, 5);  /* aspect ratio kept: 10/40 of 20 */
    assert_true(mx / mass > 13.4 && mx / mass < 14.6);
    assert_true(my / mass > 13.4 && my / mass < 14.6);
    /* the same bar white on black gives the same picture */
    uint8_t *q = picture(100, 60, 0, 255, 70, 5, 10, 40), again[28 * 28];
    assert_ok(preprocess_mnist("bar2.png", q, 100, 60, 28, again, &err), &err);
    assert_memory_equal(out, again, sizeof out);
    free(p);
    free(q);
}

static void preprocess_area_averages_when_shrinking(void **state)
{
    (void)state;
    tr_error err = { 0 };
    /* an L of 1-pixel lines, 30x30, in a 40x40 picture, scaled by 2/3: each
     * output pixel of a line covers 1.5 input rows, one of them ink:
     * 255 / 1.5 = 170, grey, not a hard on/off edge */
    uint8_t *p = picture(40, 40, 0, 255, 5, 5, 30, 1), out[28 * 28];
    for (int y = 5; y < 35; y++)
        p[y * 40 + 5] = 255;
    assert_ok(preprocess_mnist("thin.png", p, 40, 40, 28, out, &err), &err);
    int x0 = 28, y0 = 28;
    for (int i = 0; i < 28 * 28; i++)
        if (out[i]) {
            x0 = i % 28 < x0 ? i % 28 : x0;
            y0 = i / 28 < y0 ? i / 28 : y0;
        }
    assert_int_equal(out[y0 * 28 + x0 + 10], 170);
    assert_int_equal(out[(y0 + 10) * 28 + x0], 170);
    assert_int_equal(out[(y0 + 10) * 28 + x0 + 10], 0);
    free(p);
}

static void preprocess_refuses_blank(void **state)
{
    (void)state;
    tr_error err = { 0 };
    uint8_t *p = picture(50, 40, 200, 200, 0, 0, 0, 0), out[28 * 28];
    assert_fails(preprocess_mnist("blank.png", p, 50, 40, 28, out, &err), &err, TR_EINPUT, "blank.png", "blank");
    /* faint marks below a sixth of the range are no ink either */
    free(p);
    p = picture(50, 40, 200, 180, 10, 10, 5, 5);
    err = (tr_error){ 0 };
    assert_fails(preprocess_mnist("faint.png", p, 50, 40, 28, out, &err), &err, TR_EINPUT, "faint.png", "blank");
    free(p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(ppm_colour_becomes_luma_grey),
    cmocka_unit_test_setup_teardown(png_round_trip_and_truncation, tmpdir_setup, tmpdir_teardown),
    cmocka_unit_test(preprocess_fits_20x20_and_centres_by_mass),
    cmocka_unit_test(preprocess_area_averages_when_shrinking),
    cmocka_unit_test(preprocess_refuses_blank),
};
TEST_GROUP(image_group, tests);
