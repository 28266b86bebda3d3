/* test_provenance.c - the pieces behind `trainer info`: SHA-256 against
 * known answers, JSON string escaping and nesting, a data file's hash and
 * count from its bytes (plain and gzipped, only the header inflated), and a
 * fingerprint that moves with the version, the config and every file hash. */
#include "tests.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "json.h"
#include "provenance.h"

static void digest_known_answers(void **state)
{
    (void)state;
    uint8_t d[DIGEST_SIZE];
    char hex[DIGEST_HEX_SIZE];
    digest_bytes("abc", 3, d);
    digest_hex(d, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    digest_bytes("", 0, d);
    digest_hex(d, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* fed in pieces, the same as at once */
    digest_ctx ctx;
    digest_init(&ctx);
    digest_update(&ctx, "a", 1);
    digest_update(&ctx, "bc", 2);
    digest_final(&ctx, d);
    digest_hex(d, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static char *capture_json(void (*write)(json_writer *))
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    json_writer w;
    json_init(&w, f);
    write(&w);
    assert_int_equal(fclose(f), 0);
    return text;
}

static void write_escapes(json_writer *w)
{
    json_begin_object(w, NULL);
    json_string(w, "s", "q\" b\\ n\n t\t c\x01 u\xc3\xa9");
    json_string(w, "null", NULL);
    json_double(w, "nan", NAN);
    json_int(w, "big", INT64_MIN);
    json_begin_array(w, "empty");
    json_end_array(w);
    json_begin_array(w, "a");
    json_begin_object(w, NULL);
    json_int(w, "x", 1);
    json_end_object(w);
    json_double(w, NULL, 0.5);
    json_end_array(w);
    json_end_object(w);
}

static void json_escapes_and_nests(void **state)
{
    (void)state;
    char *text = capture_json(write_escapes);
    assert_string_equal(text, "{\n"
                              "  \"s\": \"q\\\" b\\\\ n\\n t\\t c\\u0001 u\xc3\xa9\",\n"
                              "  \"null\": null,\n"
                              "  \"nan\": null,\n"
                              "  \"big\": -9223372036854775808,\n"
                              "  \"empty\": [],\n"
                              "  \"a\": [\n"
                              "    {\n"
                              "      \"x\": 1\n"
                              "    },\n"
                              "    0.5\n"
                              "  ]\n"
                              "}\n");
    free(text);
}

/* An IDX label file of N labels. */
static uint8_t *label_file(size_t n, size_t *len)
{
    *len = 8 + n;
    uint8_t *b = calloc(1, *len);
    assert_non_null(b);
    b[2] = 8;
    b[3] = 1;
    b[4] = (uint8_t)(n >> 24);
    b[5] = (uint8_t)(n >> 16);
    b[6] = (uint8_t)(n >> 8);
    b[7] = (uint8_t)n;
    for (size_t i = 0; i < n; i++)
        b[8 + i] = (uint8_t)(i % 10);
    return b;
}

static void data_file_hash_and_count(void **state)
{
    const char *dir = *state;
    size_t len, gz_len;
    /* the plain file spans several 1 MB reads */
    uint8_t *plain = label_file(3000000, &len);
    uint8_t *gz = gzip_bytes(plain, len, &gz_len);
    write_file(path_in(dir, "l"), plain, len);
    write_file(path_in(dir, "l.gz"), gz, gz_len);
    tr_error err = { 0 };
    data_file f = { .role = "train_labels" };
    uint8_t want[DIGEST_SIZE];
    strcpy(f.path, path_in(dir, "l"));
    assert_ok(data_file_identify(&f, &err), &err);
    digest_bytes(plain, len, want);
    assert_memory_equal(f.sha256, want, DIGEST_SIZE);
    assert_int_equal(f.count, 3000000);
    /* the gzipped file: the hash of its own bytes, the count inside */
    strcpy(f.path, path_in(dir, "l.gz"));
    f.count = 0;
    assert_ok(data_file_identify(&f, &err), &err);
    digest_bytes(gz, gz_len, want);
    assert_memory_equal(f.sha256, want, DIGEST_SIZE);
    assert_int_equal(f.count, 3000000);
    /* a label file named as images, an empty file, a short one, a missing one */
    data_file g = { .role = "test_images" };
    strcpy(g.path, path_in(dir, "l.gz"));
    assert_fails(data_file_identify(&g, &err), &err, TR_EINPUT, "l.gz", "bad magic 0x00000801");
    write_file(path_in(dir, "empty"), "", 0);
    strcpy(g.path, path_in(dir, "empty"));
    memset(&err, 0, sizeof err);
    assert_fails(data_file_identify(&g, &err), &err, TR_EINPUT, "empty", "empty");
    write_file(path_in(dir, "short"), plain, 5);
    strcpy(g.path, path_in(dir, "short"));
    memset(&err, 0, sizeof err);
    assert_fails(data_file_identify(&g, &err), &err, TR_EINPUT, "short", "too short");
    strcpy(g.path, path_in(dir, "missing"));
    memset(&err, 0, sizeof err);
    assert_fails(data_file_identify(&g, &err), &err, TR_EINPUT, "missing", "cannot open");
    free(plain);
    free(gz);
}

static void fingerprint_moves_with_every_input(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    tr_error err = { 0 };
    data_file files[4];
    memset(files, 0, sizeof files);
    const char *roles[] = { "train_images", "train_labels", "test_images", "test_labels" };
    for (int i = 0; i < 4; i++) {
        strcpy(files[i].role, roles[i]);
        files[i].sha256[0] = (uint8_t)i;
    }
    char base[DIGEST_HEX_SIZE], other[DIGEST_HEX_SIZE];
    assert_ok(provenance_fingerprint("1.0", &c, files, 4, base, &err), &err);
    assert_int_equal(strlen(base), 64);
    assert_ok(provenance_fingerprint("1.0", &c, files, 4, other, &err), &err);
    assert_string_equal(base, other);
    assert_ok(provenance_fingerprint("1.1", &c, files, 4, other, &err), &err);
    assert_string_not_equal(base, other);
    for (int i = 0; i < 4; i++) {
        files[i].sha256[31] ^= 1;
        assert_ok(provenance_fingerprint("1.0", &c, files, 4, other, &err), &err);
        assert_string_not_equal(base, other);
        files[i].sha256[31] ^= 1;
    }
    assert_ok(provenance_fingerprint("1.0", &c, files, 3, other, &err), &err);
    assert_string_not_equal(base, other);
    /* [output] is not part of it; the rest of the config is */
    assert_ok(config_set(&c, "output.model=x.model", &err), &err);
    assert_ok(provenance_fingerprint("1.0", &c, files, 4, other, &err), &err);
    assert_string_equal(base, other);
    assert_ok(config_set(&c, "train.seed=2", &err), &err);
    assert_ok(provenance_fingerprint("1.0", &c, files, 4, other, &err), &err);
    assert_string_not_equal(base, other);
}

/* data.extra: pairs in bytewise name order between the training and the
 * test files; dot-names skipped; anything else refused by name. */
static void plan_lists_extra_pairs_in_name_order(void **state)
{
    const char *dir = *state;
    const char *names[] = { "b-labels-idx1-ubyte.gz", "B-images-idx3-ubyte", "a-b-images-idx3-ubyte.gz",
                            "b-images-idx3-ubyte.gz", "a-b-labels-idx1-ubyte", "B-labels-idx1-ubyte",
                            "a-images-idx3-ubyte", "a-labels-idx1-ubyte.gz", ".c-images-idx3-ubyte.gz" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        write_file(path_in(dir, names[i]), "x", 1);
    config c;
    config_defaults(&c);
    tr_error err = { 0 };
    char set[1200];
    snprintf(set, sizeof set, "data.extra=%s", dir);
    assert_ok(config_set(&c, set, &err), &err);
    data_file *files;
    size_t n;
    assert_ok(data_plan(&c, &files, &n, &err), &err);
    /* B < a < a-b < b, bytewise */
    const char *want[] = { "B-images-idx3-ubyte", "B-labels-idx1-ubyte", "a-images-idx3-ubyte",
                           "a-labels-idx1-ubyte.gz", "a-b-images-idx3-ubyte.gz", "a-b-labels-idx1-ubyte",
                           "b-images-idx3-ubyte.gz", "b-labels-idx1-ubyte.gz" };
    assert_int_equal(n, 2 + 8 + 2);
    assert_string_equal(files[0].role, "train_images");
    assert_string_equal(files[1].role, "train_labels");
    for (int i = 0; i < 8; i++) {
        assert_string_equal(files[2 + i].role, i % 2 ? "extra_labels" : "extra_images");
        assert_string_equal(files[2 + i].path, path_in(dir, want[i]));
    }
    assert_string_equal(files[10].role, "test_images");
    assert_string_equal(files[11].role, "test_labels");
    free(files);

    /* refusals, each naming the file */
    write_file(path_in(dir, "b-images-idx3-ubyte"), "x", 1);
    assert_fails(data_plan(&c, &files, &n, &err), &err, TR_EINPUT, "b-images-idx3-ubyte.gz", "two images files");
    unlink(path_in(dir, "b-images-idx3-ubyte"));
    unlink(path_in(dir, "b-labels-idx1-ubyte.gz"));
    memset(&err, 0, sizeof err);
    assert_fails(data_plan(&c, &files, &n, &err), &err, TR_EINPUT, path_in(dir, "b-images-idx3-ubyte.gz"),
                 "no b-labels-idx1-ubyte[.gz]");
    unlink(path_in(dir, "b-images-idx3-ubyte.gz"));
    write_file(path_in(dir, "-images-idx3-ubyte.gz"), "x", 1); /* no NAME */
    memset(&err, 0, sizeof err);
    assert_fails(data_plan(&c, &files, &n, &err), &err, TR_EINPUT, path_in(dir, "-images-idx3-ubyte.gz"),
                 "not NAME-images");
    unlink(path_in(dir, "-images-idx3-ubyte.gz"));
    assert_int_equal(mkdir(path_in(dir, "d-images-idx3-ubyte"), 0755), 0);
    memset(&err, 0, sizeof err);
    assert_fails(data_plan(&c, &files, &n, &err), &err, TR_EINPUT, path_in(dir, "d-images-idx3-ubyte"),
                 "not a regular file");
}

#define T(f) cmocka_unit_test_setup_teardown(f, tmpdir_setup, tmpdir_teardown)
static const struct CMUnitTest tests[] = {
    cmocka_unit_test(digest_known_answers),
    cmocka_unit_test(json_escapes_and_nests),
    T(data_file_hash_and_count),
    cmocka_unit_test(fingerprint_moves_with_every_input),
    T(plan_lists_extra_pairs_in_name_order),
};
TEST_GROUP(provenance_group, tests);
