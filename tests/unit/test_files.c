/* test_files.c: files.c, the module every reader and writer of files goes
 * through: whole-file reads, publication, locks, stale temp files. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "tests.h"

static void test_read_all(void **state)
{
    const char *dir = *state;
    tr_error err = { 0 };
    uint8_t *data = NULL, sha[32];
    size_t len = 0, zlen;
    const char text[] = "not any format at all, read whole";
    uint8_t *z = gzip_bytes(text, sizeof text, &zlen);
    write_file(path_in(dir, "a.gz"), z, zlen);
    assert_ok(files_read_all(path_in(dir, "a.gz"), NULL, &data, &len, sha, &err), &err);
    assert_int_equal(len, sizeof text);
    assert_memory_equal(data, text, sizeof text);
    free(data);
    /* the strict refusal of anything after the last gzip member */
    uint8_t *junk = malloc(zlen + 3);
    assert_non_null(junk);
    memcpy(junk, z, zlen);
    memcpy(junk + zlen, "xyz", 3);
    write_file(path_in(dir, "b.gz"), junk, zlen + 3);
    assert_fails(files_read_all(path_in(dir, "b.gz"), NULL, &data, &len, NULL, &err), &err, TR_EINPUT,
                 "3 bytes of trailing garbage");
    write_file(path_in(dir, "empty"), "", 0);
    err = (tr_error){ 0 };
    assert_fails(files_read_all(path_in(dir, "empty"), NULL, &data, &len, NULL, &err), &err, TR_EINPUT, "empty");
    free(junk);
    free(z);
}

/* The text read (config.c's): as stored, never inflated, empty allowed,
 * NUL-terminated; refusals worded for the kind of file. */
static void test_read_text(void **state)
{
    const char *dir = *state;
    tr_error err = { 0 };
    char *text = NULL;
    size_t len = 1;
    write_file(path_in(dir, "e.ini"), "", 0);
    assert_ok(files_read_text(path_in(dir, "e.ini"), "config", &text, &len, &err), &err);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
    write_file(path_in(dir, "a.ini"), "[x]\ny = 1\n", 10);
    assert_ok(files_read_text(path_in(dir, "a.ini"), "config", &text, &len, &err), &err);
    assert_int_equal(len, 10);
    assert_string_equal(text, "[x]\ny = 1\n");
    free(text);
    write_file(path_in(dir, "n.ini"), "a\0b", 3);
    assert_fails(files_read_text(path_in(dir, "n.ini"), "config", &text, &len, &err), &err, TR_EINPUT,
                 "contains a NUL byte; not a text config");
    /* a gzipped config is refused, not inflated (its header holds a NUL) */
    size_t zlen;
    uint8_t *z = gzip_bytes("[x]\n", 4, &zlen);
    write_file(path_in(dir, "z.ini"), z, zlen);
    free(z);
    err = (tr_error){ 0 };
    assert_fails(files_read_text(path_in(dir, "z.ini"), "config", &text, &len, &err), &err, TR_EINPUT,
                 "not a text config");
    err = (tr_error){ 0 };
    assert_fails(files_read_text(path_in(dir, "none.ini"), "config", &text, &len, &err), &err, TR_EINPUT,
                 "cannot open config: ");
    err = (tr_error){ 0 };
    assert_fails(files_read_text(dir, "config", &text, &len, &err), &err, TR_EINPUT, "is it a directory?");
    /* the cap, to the byte: the text and its NUL below FILES_TEXT_MAX_BYTES */
    char *big = malloc(FILES_TEXT_MAX_BYTES);
    assert_non_null(big);
    memset(big, '#', FILES_TEXT_MAX_BYTES);
    write_file(path_in(dir, "big.ini"), big, FILES_TEXT_MAX_BYTES - 2);
    assert_ok(files_read_text(path_in(dir, "big.ini"), "config", &text, &len, &err), &err);
    assert_int_equal(len, FILES_TEXT_MAX_BYTES - 2);
    free(text);
    write_file(path_in(dir, "big.ini"), big, FILES_TEXT_MAX_BYTES - 1);
    err = (tr_error){ 0 };
    assert_fails(files_read_text(path_in(dir, "big.ini"), "config", &text, &len, &err), &err, TR_EINPUT,
                 "config file too large");
    free(big);
}

static void test_publish(void **state)
{
    const char *dir = *state;
    tr_error err = { 0 };
    const char *tmp = path_in(dir, "r.html.tmp"), *final = path_in(dir, "r.html");
    write_file(final, "old", 3);
    write_file(tmp, "new", 3);
    assert_ok(files_publish(tmp, final, &err), &err);
    assert_int_equal(access(tmp, F_OK), -1);
    size_t len;
    uint8_t *got = read_file(final, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(got, "new", 3);
    free(got);
    /* a missing temp file fails and leaves the published one */
    err = (tr_error){ 0 };
    assert_fails(files_publish(tmp, final, &err), &err, TR_ERUNTIME, "r.html");
    got = read_file(final, &len);
    assert_memory_equal(got, "new", 3);
    free(got);
}

static void test_lock(void **state)
{
    const char *dir = *state;
    struct stat st, st2;
    long holder = -1;
    int fd = files_lock_open(path_in(dir, "m.lock"), &st);
    assert_true(fd >= 0);
    assert_int_equal(files_lock_take(fd, &holder), 0);
    assert_int_equal(holder, 0);
    /* a second open file description is refused, naming us as the holder */
    int fd2 = files_lock_open(path_in(dir, "m.lock"), &st2);
    assert_true(fd2 >= 0);
    assert_true(st.st_ino == st2.st_ino);
    assert_int_equal(files_lock_take(fd2, &holder), 1);
    assert_int_equal(holder, (long)getpid());
    close(fd);
    fd2 = files_lock_open(path_in(dir, "m.lock"), &st2);
    assert_int_equal(files_lock_take(fd2, &holder), 0); /* free again */
    close(fd2);
}

static void test_stale_temps(void **state)
{
    const char *dir = *state;
    const char *keep[] = { "m.model", "m.model.tmp.ab12", "m.model.tmp.abc1234", "x.model.tmp.abc123",
                           "m.model.tmp.ab-123" };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        write_file(path_in(dir, keep[i]), "k", 1);
    write_file(path_in(dir, "m.model.tmp.Xy9abc"), "t", 1);
    write_file(path_in(dir, "m.model.tmp.000000"), "t", 1);
    files_remove_stale_temps(path_in(dir, "m.model"));
    assert_int_equal(count_dir_entries(dir), 5);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        assert_int_equal(access(path_in(dir, keep[i]), F_OK), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_read_all, tmpdir_setup, tmpdir_teardown),
    cmocka_unit_test_setup_teardown(test_read_text, tmpdir_setup, tmpdir_teardown),
    cmocka_unit_test_setup_teardown(test_publish, tmpdir_setup, tmpdir_teardown),
    cmocka_unit_test_setup_teardown(test_lock, tmpdir_setup, tmpdir_teardown),
    cmocka_unit_test_setup_teardown(test_stale_temps, tmpdir_setup, tmpdir_teardown),
};
TEST_GROUP(files_group, tests);
