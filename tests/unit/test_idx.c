/* test_idx.c - the IDX reader on small files made here: plain, gzipped and
 * multi-member gzip files read back exactly; every kind of damage is refused
 * with TR_EINPUT and a message that names the file and says what is wrong. */
#include "tests.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "idx.h"

enum { N = 5, ROWS = 3, COLS = 4 };

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint8_t pixel(size_t i, size_t j)
{
    return (uint8_t)(i * 37 + j * 11 + 1);
}

/* An image file of n images of rows x cols (len bytes, malloc'd). */
static uint8_t *image_file(uint32_t n, uint32_t rows, uint32_t cols, size_t *len)
{
    size_t pix = (size_t)rows * cols;
    *len = 16 + n * pix;
    uint8_t *d = malloc(*len);
    assert_non_null(d);
    put_be32(d, 0x00000803);
    put_be32(d + 4, n);
    put_be32(d + 8, rows);
    put_be32(d + 12, cols);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < pix; j++)
            d[16 + i * pix + j] = pixel(i, j);
    return d;
}

static uint8_t *label_file(uint32_t n, size_t *len)
{
    *len = 8 + n;
    uint8_t *d = malloc(*len);
    assert_non_null(d);
    put_be32(d, 0x00000801);
    put_be32(d + 4, n);
    for (size_t i = 0; i < n; i++)
        d[8 + i] = (uint8_t)((i * 3 + 1) % 10);
    return d;
}

/* Writes the standard label file to DIR/labels and returns its path. */
static const char *write_labels(const char *dir, uint32_t n)
{
    size_t len;
    uint8_t *d = label_file(n, &len);
    const char *p = path_in(dir, "labels");
    write_file(p, d, len);
    free(d);
    return p;
}

static void assert_dataset(const dataset *ds, size_t n)
{
    assert_int_equal(ds->count, n);
    assert_int_equal(ds->rows, ROWS);
    assert_int_equal(ds->cols, COLS);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ds->labels[i], (i * 3 + 1) % 10);
        for (size_t j = 0; j < ROWS * COLS; j++)
            assert_int_equal(ds->pixels[i * ROWS * COLS + j], pixel(i, j));
    }
}

/* Loads IMAGES (and DIR/labels with N labels) expecting failure. */
static void expect_load_fails(const char *images, const char *labels, unsigned classes, ...)
{
    dataset ds;
    tr_error err = { 0 };
    int rc = dataset_load(&ds, images, labels, classes, 0, &err);
    if (rc != -1)
        fail_msg("dataset_load(%s) should have failed", images);
    assert_int_equal(err.code, TR_EINPUT);
    assert_null(ds.pixels);
    va_list ap;
    va_start(ap, classes);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
        if (!strstr(err.msg, s)) {
            va_end(ap);
            fail_msg("message '%s' does not contain '%s'", err.msg, s);
        }
    va_end(ap);
}

/* Writes DATA as DIR/NAME and expects loading it as the image file to fail
 * with a message naming it and containing WORD. */
static void expect_images_refused(const char *dir, const char *name, const uint8_t *data, size_t len,
                                  const char *word)
{
    const char *img = path_in(dir, name);
    write_file(img, data, len);
    const char *lab = write_labels(dir, N);
    expect_load_fails(img, lab, 10, img, word, (const char *)NULL);
}

static void idx_plain(void **state)
{
    const char *dir = *state;
    size_t len;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    const char *ip = path_in(dir, "images");
    write_file(ip, img, len);
    free(img);
    dataset ds;
    tr_error err = { 0 };
    assert_ok(dataset_load(&ds, ip, write_labels(dir, N), 10, 0, &err), &err);
    assert_dataset(&ds, N);
    dataset_free(&ds);
    assert_null(ds.pixels);
}

static void idx_gzip(void **state)
{
    const char *dir = *state;
    size_t len, zlen;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    uint8_t *z = gzip_bytes(img, len, &zlen);
    const char *ip = path_in(dir, "images.gz");
    write_file(ip, z, zlen);
    /* The labels through zlib's file interface, as gzip(1) would write them. */
    uint8_t *lab = label_file(N, &len);
    const char *lp = path_in(dir, "labels.gz");
    gzFile gz = gzopen(lp, "wb9");
    assert_non_null(gz);
    assert_int_equal(gzwrite(gz, lab, (unsigned)len), (int)len);
    assert_int_equal(gzclose(gz), Z_OK);
    dataset ds;
    tr_error err = { 0 };
    assert_ok(dataset_load(&ds, ip, lp, 10, 0, &err), &err);
    assert_dataset(&ds, N);
    dataset_free(&ds);
    /* idx_slurp gives the decompressed bytes exactly. */
    uint8_t *data = NULL;
    size_t dlen = 0;
    assert_ok(idx_slurp(ip, &data, &dlen, &err), &err);
    assert_int_equal(dlen, 16 + N * ROWS * COLS);
    assert_memory_equal(data, img, dlen);
    free(data);
    free(img);
    free(z);
    free(lab);
}

/* Concatenates gzip members of DATA cut at the given offsets. */
static uint8_t *multi_member(const uint8_t *data, size_t len, const size_t *cuts, int ncuts, size_t *out_len)
{
    uint8_t *out = NULL;
    size_t n = 0, start = 0;
    for (int i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len, zl;
        uint8_t *z = gzip_bytes(data + start, end - start, &zl);
        uint8_t *grown = realloc(out, n + zl);
        assert_non_null(grown);
        out = grown;
        memcpy(out + n, z, zl);
        n += zl;
        free(z);
        start = end;
    }
    *out_len = n;
    return out;
}

static void idx_multi_member_gzip(void **state)
{
    const char *dir = *state;
    size_t len, zlen, llen, lzlen;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    const size_t cuts[] = { 7, 16, 29 }; /* inside the header, at its end, inside an image */
    uint8_t *z = multi_member(img, len, cuts, 3, &zlen);
    const char *ip = path_in(dir, "images.gz");
    write_file(ip, z, zlen);
    uint8_t *lab = label_file(N, &llen);
    const size_t lcuts[] = { 10 };
    uint8_t *lz = multi_member(lab, llen, lcuts, 1, &lzlen);
    const char *lp = path_in(dir, "labels.gz");
    write_file(lp, lz, lzlen);
    dataset ds;
    tr_error err = { 0 };
    assert_ok(dataset_load(&ds, ip, lp, 10, 0, &err), &err);
    assert_dataset(&ds, N);
    dataset_free(&ds);
    /* An empty member between two others is still a valid stream. */
    size_t e1, e2, e3;
    uint8_t *a = gzip_bytes(img, 20, &e1), *b = gzip_bytes("", 0, &e2), *c = gzip_bytes(img + 20, len - 20, &e3);
    uint8_t *all = malloc(e1 + e2 + e3);
    assert_non_null(all);
    memcpy(all, a, e1);
    memcpy(all + e1, b, e2);
    memcpy(all + e1 + e2, c, e3);
    write_file(ip, all, e1 + e2 + e3);
    uint8_t *data = NULL;
    size_t dlen = 0;
    assert_ok(idx_slurp(ip, &data, &dlen, &err), &err);
    assert_int_equal(dlen, len);
    assert_memory_equal(data, img, len);
    free(data);
    free(a);
    free(b);
    free(c);
    free(all);
    free(img);
    free(z);
    free(lab);
    free(lz);
}

static void idx_limit_keeps_first(void **state)
{
    const char *dir = *state;
    size_t len;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    const char *ip = path_in(dir, "images");
    write_file(ip, img, len);
    free(img);
    const char *lp = write_labels(dir, N);
    dataset ds;
    tr_error err = { 0 };
    assert_ok(dataset_load(&ds, ip, lp, 10, 2, &err), &err);
    assert_dataset(&ds, 2);
    dataset_free(&ds);
    assert_ok(dataset_load(&ds, ip, lp, 10, 1000, &err), &err); /* more than there is: all */
    assert_dataset(&ds, N);
    /* The pixels are kept where they were read, after the header; appending
     * (data.extra) still gives one run of pixels. */
    dataset head;
    assert_ok(dataset_load(&head, ip, lp, 10, 3, &err), &err);
    assert_ok(dataset_append(&head, &ds, ip, &err), &err);
    assert_int_equal(head.count, 3 + N);
    assert_memory_equal(head.pixels, ds.pixels, 3 * ROWS * COLS);
    assert_memory_equal(head.pixels + 3 * ROWS * COLS, ds.pixels, N * ROWS * COLS);
    assert_memory_equal(head.labels + 3, ds.labels, N);
    /* and a second pair after it, the header still in front */
    assert_ok(dataset_append(&head, &ds, ip, &err), &err);
    assert_int_equal(head.count, 3 + 2 * N);
    assert_memory_equal(head.pixels, ds.pixels, 3 * ROWS * COLS);
    assert_memory_equal(head.pixels + (3 + N) * ROWS * COLS, ds.pixels, N * ROWS * COLS);
    assert_memory_equal(head.labels + 3 + N, ds.labels, N);
    dataset_free(&head);
    dataset_free(&ds);
}

static void idx_wrong_magic(void **state)
{
    const char *dir = *state;
    size_t len;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    put_be32(img, 0x12345678);
    expect_images_refused(dir, "bad-magic", img, len, "0x12345678");
    /* A label file given as the image file, and the other way round. */
    uint8_t *lab = label_file(N, &len);
    expect_images_refused(dir, "swapped", lab, len, "label file");
    free(lab);
    put_be32(img, 0x00000803);
    const char *ip = path_in(dir, "images");
    write_file(ip, img, 16 + N * ROWS * COLS);
    expect_load_fails(ip, ip, 10, ip, "image file", "expected label", (const char *)NULL);
    free(img);
}

/* A gzip file's first bytes read as an IDX magic say so in hex. */
static void idx_gzip_bytes_as_magic(void **state)
{
    const char *dir = *state;
    size_t len, zlen, zzlen;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    uint8_t *z = gzip_bytes(img, len, &zlen);
    size_t n;
    uint32_t r, c;
    const uint8_t *pix;
    tr_error err = { 0 };
    assert_fails(idx_parse_images("raw.gz", z, zlen, &n, &r, &c, &pix, &err), &err, TR_EINPUT, "raw.gz",
                 "magic 0x1F8B08");
    /* Gzipped twice: one layer comes off, the second shows as the magic. */
    uint8_t *zz = gzip_bytes(z, zlen, &zzlen);
    expect_images_refused(dir, "twice.gz", zz, zzlen, "0x1F8B08");
    free(img);
    free(z);
    free(zz);
}

static void idx_truncated(void **state)
{
    const char *dir = *state;
    size_t len;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    expect_images_refused(dir, "short-data", img, len - 1, "promises");
    expect_images_refused(dir, "short-header", img, 10, "header truncated");
    expect_images_refused(dir, "tiny", img, 3, "too short");
    free(img);
    uint8_t *lab = label_file(N, &len);
    const char *ip = path_in(dir, "images");
    img = image_file(N, ROWS, COLS, &len);
    write_file(ip, img, len);
    const char *lp = path_in(dir, "short-labels");
    write_file(lp, lab, 8 + N - 2);
    expect_load_fails(ip, lp, 10, lp, "promises 5 labels", (const char *)NULL);
    free(lab);
    free(img);
}

static void idx_header_promises_more(void **state)
{
    const char *dir = *state;
    size_t len;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    put_be32(img + 4, N + 1);
    expect_images_refused(dir, "more-images", img, len, "promises 6 images");
    put_be32(img + 4, N);
    put_be32(img + 8, ROWS + 1);
    expect_images_refused(dir, "bigger-images", img, len, "promises");
    free(img);
}

static void idx_extra_bytes(void **state)
{
    const char *dir = *state;
    size_t len;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    uint8_t *more = calloc(len + 3, 1);
    assert_non_null(more);
    memcpy(more, img, len);
    expect_images_refused(dir, "extra", more, len + 3, "promises");
    uint8_t *lab = label_file(N, &len);
    memcpy(more, lab, len);
    const char *ip = path_in(dir, "images");
    write_file(ip, img, 16 + N * ROWS * COLS);
    const char *lp = path_in(dir, "extra-labels");
    write_file(lp, more, len + 1);
    expect_load_fails(ip, lp, 10, lp, "promises", (const char *)NULL);
    free(img);
    free(more);
    free(lab);
}

/* Headers whose sizes multiply past any memory: refused from the header
 * alone. (Under ASan an attempt to allocate them would abort the run.) */
static void idx_huge_header_fails_fast(void **state)
{
    const char *dir = *state;
    uint8_t h[16 + 8] = { 0 };
    put_be32(h, 0x00000803);
    put_be32(h + 4, 1u << 31);
    put_be32(h + 8, 65536);
    put_be32(h + 12, 65536);
    clock_t t0 = clock();
    expect_images_refused(dir, "huge", h, sizeof h, "2147483648 images of 65536x65536");
    put_be32(h + 4, 0xFFFFFFFFu);
    put_be32(h + 8, 0xFFFFFFFFu);
    put_be32(h + 12, 0xFFFFFFFFu);
    expect_images_refused(dir, "overflow", h, sizeof h, "overflow");
    put_be32(h + 4, 0x7FFFFFFFu);
    put_be32(h, 0x00000801);
    const char *ip = path_in(dir, "images");
    size_t len;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    write_file(ip, img, len);
    const char *lp = path_in(dir, "huge-labels");
    write_file(lp, h, sizeof h);
    expect_load_fails(ip, lp, 10, lp, "promises 2147483647 labels", (const char *)NULL);
    free(img);
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
}

static void idx_label_out_of_range(void **state)
{
    const char *dir = *state;
    size_t len;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    const char *ip = path_in(dir, "images");
    write_file(ip, img, len);
    uint8_t *lab = label_file(N, &len);
    lab[8 + 3] = 10;
    const char *lp = path_in(dir, "labels-10");
    write_file(lp, lab, len);
    expect_load_fails(ip, lp, 10, lp, "label 10 at index 3", "10 classes", (const char *)NULL);
    /* With 11 classes the same file is fine. */
    dataset ds;
    tr_error err = { 0 };
    assert_ok(dataset_load(&ds, ip, lp, 11, 0, &err), &err);
    assert_int_equal(ds.labels[3], 10);
    dataset_free(&ds);
    free(img);
    free(lab);
}

static void idx_count_mismatch(void **state)
{
    const char *dir = *state;
    size_t len;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    const char *ip = path_in(dir, "images");
    write_file(ip, img, len);
    const char *lp = write_labels(dir, N - 1);
    expect_load_fails(ip, lp, 10, lp, ip, "4 labels", "5 images", (const char *)NULL);
    free(img);
    /* No images at all. */
    img = image_file(0, ROWS, COLS, &len);
    write_file(ip, img, len);
    lp = write_labels(dir, 0);
    expect_load_fails(ip, lp, 10, ip, "no images", (const char *)NULL);
    /* Images of 0 rows. */
    free(img);
    img = image_file(N, 0, COLS, &len);
    expect_images_refused(dir, "zero-rows", img, len, "empty");
    free(img);
}

static void idx_empty_file_and_directory(void **state)
{
    const char *dir = *state;
    expect_images_refused(dir, "empty", (const uint8_t *)"", 0, "empty");
    const char *sub = path_in(dir, "subdir");
    assert_int_equal(mkdir(sub, 0755), 0);
    expect_load_fails(sub, path_in(dir, "labels"), 10, sub, "directory", (const char *)NULL);
    const char *missing = path_in(dir, "no-such-file");
    expect_load_fails(missing, missing, 10, missing, "cannot open", (const char *)NULL);
}

static void idx_gzip_damage(void **state)
{
    const char *dir = *state;
    size_t len, zlen;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    uint8_t *z = gzip_bytes(img, len, &zlen);
    /* Cut in the middle of the deflate data, inside the trailer, and inside
     * the gzip header. */
    expect_images_refused(dir, "half.gz", z, zlen / 2, "truncated");
    expect_images_refused(dir, "no-trailer.gz", z, zlen - 3, "truncated");
    expect_images_refused(dir, "header-only.gz", z, 5, "truncated");
    /* A wrong CRC-32 in the trailer, then a wrong length. */
    uint8_t *bad = malloc(zlen + 16);
    assert_non_null(bad);
    memcpy(bad, z, zlen);
    bad[zlen - 8] ^= 0x5A;
    expect_images_refused(dir, "bad-crc.gz", bad, zlen, "corrupt");
    memcpy(bad, z, zlen);
    bad[zlen - 1] ^= 0x01;
    expect_images_refused(dir, "bad-size.gz", bad, zlen, "corrupt");
    /* Garbage after the stream, and a single stray byte. */
    memcpy(bad, z, zlen);
    memcpy(bad + zlen, "garbage!", 8);
    expect_images_refused(dir, "garbage.gz", bad, zlen + 8, "trailing garbage");
    bad[zlen] = 0;
    expect_images_refused(dir, "zero.gz", bad, zlen + 1, "trailing garbage");
    /* A second member cut short: the file split in two members, the second
     * one cut. (A whole file followed by more is more than its header
     * promises, which idx_gzip_bomb_stops_at_header covers.) */
    size_t z1len, z2len;
    uint8_t *z1 = gzip_bytes(img, len / 2, &z1len), *z2 = gzip_bytes(img + len / 2, len - len / 2, &z2len);
    uint8_t *two = malloc(z1len + z2len);
    assert_non_null(two);
    memcpy(two, z1, z1len);
    memcpy(two + z1len, z2, z2len);
    expect_images_refused(dir, "second-short.gz", two, z1len + 12, "truncated");
    expect_images_refused(dir, "second-cut.gz", two, z1len + z2len - 3, "truncated");
    free(z1);
    free(z2);
    free(two);
    free(bad);
    free(img);
    free(z);
}

/* A gzip bomb behind a valid header: 5 images promised, 16 MB of zeros
 * inside. Inflating stops just past the header's size, with a message
 * that says so (before, all 16 MB were inflated, and up to 1 GiB would be). */
static void idx_gzip_bomb_stops_at_header(void **state)
{
    const char *dir = *state;
    size_t len, zlen;
    uint8_t *img = image_file(N, ROWS, COLS, &len);
    const size_t big = (size_t)16 << 20;
    uint8_t *bomb = calloc(big, 1);
    assert_non_null(bomb);
    memcpy(bomb, img, len);
    uint8_t *z = gzip_bytes(bomb, big, &zlen);
    free(bomb);
    assert_true(zlen < big / 500);
    expect_images_refused(dir, "bomb.gz", z, zlen, "stopped reading");
    /* And the labels' header likewise. */
    free(z);
    uint8_t *lab = label_file(N, &len);
    bomb = calloc(big, 1);
    assert_non_null(bomb);
    memcpy(bomb, lab, len);
    z = gzip_bytes(bomb, big, &zlen);
    free(bomb);
    const char *ip = path_in(dir, "images"), *lp = path_in(dir, "labels-bomb.gz");
    write_file(ip, img, 16 + N * ROWS * COLS);
    write_file(lp, z, zlen);
    expect_load_fails(ip, lp, 10, lp, "promises", "stopped reading", (const char *)NULL);
    free(z);
    free(lab);
    free(img);
}

/* A device named as data: /dev/zero is refused by its (zero) magic at once,
 * not read to the 1 GiB cap first. */
static void idx_device_refused_by_magic(void **state)
{
    const char *dir = *state;
    const char *lab = write_labels(dir, N);
    expect_load_fails("/dev/zero", lab, 10, "/dev/zero", "magic 0x00000000", (const char *)NULL);
    uint8_t *d;
    size_t len;
    tr_error err = { 0 };
    assert_ok(idx_slurp("/dev/zero", &d, &len, &err), &err);
    assert_true(len < 4096 + 1); /* a prefix, enough to refuse it */
    free(d);
}

/* bzip2, xz and zip files are named, not just given as a bad magic. */
static void idx_archives_named(void **state)
{
    const char *dir = *state;
    static const char bz[] = "BZh91AY&SY and then some compressed bytes";
    expect_images_refused(dir, "img.bz2", (const uint8_t *)bz, sizeof bz - 1, "bzip2");
    static const char xz[] = "\xFD" "7zXZ\0 and then some compressed bytes";
    expect_images_refused(dir, "img.xz", (const uint8_t *)xz, sizeof xz - 1, "xz file");
    static const char zip[] = "PK\x03\x04 and then some compressed bytes";
    expect_images_refused(dir, "img.zip", (const uint8_t *)zip, sizeof zip - 1, "zip archive");
}

#define T(f) cmocka_unit_test_setup_teardown(f, tmpdir_setup, tmpdir_teardown)
static const struct CMUnitTest tests[] = {
    T(idx_plain),
    T(idx_gzip),
    T(idx_multi_member_gzip),
    T(idx_limit_keeps_first),
    T(idx_wrong_magic),
    T(idx_gzip_bytes_as_magic),
    T(idx_truncated),
    T(idx_header_promises_more),
    T(idx_gzip_bomb_stops_at_header),
    T(idx_device_refused_by_magic),
    T(idx_archives_named),
    T(idx_extra_bytes),
    T(idx_huge_header_fails_fast),
    T(idx_label_out_of_range),
    T(idx_count_mismatch),
    T(idx_empty_file_and_directory),
    T(idx_gzip_damage),
};
TEST_GROUP(idx_group, tests);
