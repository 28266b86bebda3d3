/* tests.h - what the unit test files share: each file exposes one group of
 * cmocka tests (an array and its length) that main.c runs, and the helpers
 * in util.c (test data, temporary directories, files, gzip, message checks).
 * Every random input comes from the project's counter-based RNG with a fixed
 * seed, so a failure reproduces exactly. */
#ifndef TRAINER_UNIT_TESTS_H
#define TRAINER_UNIT_TESTS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"
#include "error.h"
#include "rng.h"

typedef struct {
    const char *name;
    const struct CMUnitTest *tests;
    size_t count;
} test_group;

#define TEST_GROUP(name, array) \
    const test_group name = { #name, array, sizeof(array) / sizeof((array)[0]) }

extern const test_group grad_group;       /* test_grad.c: finite-difference checks */
extern const test_group kernel_group;     /* test_kernels.c: fast == reference, maxpool ties */
extern const test_group idx_group;        /* test_idx.c: IDX reader */
extern const test_group config_group;     /* test_config.c: INI, --set, layer stacks */
extern const test_group checkpoint_group; /* test_checkpoint.c: model files */
extern const test_group optim_group;      /* test_optim.c: optimizers and schedules */
extern const test_group data_group;       /* test_data.c: RNG, normalisation, PGM, eval */
extern const test_group provenance_group; /* test_provenance.c: SHA-256, JSON, data files, fingerprint */
extern const test_group image_group;      /* test_image.c: PNG/PPM decoding, MNIST-style preprocessing */
extern const test_group tree_group;       /* test_tree.c: the summation tree, across ranks */
extern const test_group cli_group;        /* test_cli.c: the command line and its option table */
extern const test_group files_group;      /* test_files.c: reads, publication, locks, temp files */
extern const test_group runlog_group;     /* test_runlog.c: the metrics CSV and the step log */
extern const test_group sched_group;      /* test_sched.c: the batch scheduler under stress */

/* ---- test data ---- */

/* Uniform floats in [lo, hi) from (seed, counter). */
void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed);
/* Uniform in [-hi, -lo] or [lo, hi]: values kept away from zero. */
void fill_away_from_zero(float *x, size_t n, float lo, float hi, uint64_t seed);
float *alloc_floats(size_t n);
double *alloc_doubles(size_t n);

/* Largest |x[i]|. */
double max_abs(const float *x, size_t n);

/* Asserts that analytic gradient A matches the numerical one N elementwise:
 * |a - n| <= tol * max(|a|, |n|, floor * max|N|). Also asserts that A is not
 * all zeros, so the check cannot pass vacuously. WHAT names the array. */
void assert_grad_close(const char *what, const float *a, const double *n, size_t count, double tol,
                       double floor);

/* Asserts |a - b| <= tol * (|b| + max|B|) elementwise: float results that may
 * differ only by the order of additions. */
void assert_floats_close(const char *what, const float *a, const float *b, size_t n, double tol);

/* ---- errors ---- */

/* Asserts rc == -1, err->code == CODE and that err->msg contains every one
 * of the NULL-terminated strings (case-sensitive). */
void assert_failed_with(int rc, const tr_error *err, int code, ...);
#define assert_fails(rc, err, code, ...) assert_failed_with((rc), (err), (code), __VA_ARGS__, (const char *)NULL)
/* Asserts rc == 0, printing err->msg otherwise. */
void assert_ok(int rc, const tr_error *err);

/* ---- files ---- */

/* A fresh directory under $TMPDIR, else /dev/shm, else /tmp. */
char *tmpdir_make(void);
/* Removes DIR and everything in it. */
void tmpdir_remove(const char *dir);
/* cmocka fixtures: *state is a fresh temporary directory for each test. */
int tmpdir_setup(void **state);
int tmpdir_teardown(void **state);
/* DIR/NAME in a static rotating buffer (8 slots). */
const char *path_in(const char *dir, const char *name);
void write_file(const char *path, const void *data, size_t len);
uint8_t *read_file(const char *path, size_t *len);
/* Number of entries in DIR other than . and .. */
int count_dir_entries(const char *dir);

/* One gzip member holding DATA (malloc'd). */
uint8_t *gzip_bytes(const void *data, size_t len, size_t *out_len);

/* A config text written by config_write into a malloc'd string. */
char *config_text(const config *cfg, int with_output);

#endif
