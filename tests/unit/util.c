/* util.c - helpers shared by the unit tests (see tests.h). */
#include "tests.h"

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- test data ---- */

void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    rng_t r = rng_seed(seed, 99, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * rng_uniform(&r);
}

void fill_away_from_zero(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    rng_t r = rng_seed(seed, 98, 0);
    for (size_t i = 0; i < n; i++) {
        float v = lo + (hi - lo) * rng_uniform(&r);
        x[i] = rng_below(&r, 2) ? v : -v;
    }
}

float *alloc_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

double *alloc_doubles(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    assert_non_null(p);
    return p;
}

double max_abs(const float *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

void assert_grad_close(const char *what, const float *a, const double *n, size_t count, double tol,
                       double floor)
{
    double scale = 0.0, worst = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < count; i++)
        scale = fabs(n[i]) > scale ? fabs(n[i]) : scale;
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)a[i] - n[i]);
        double den = fmax(fmax(fabs(a[i]), fabs(n[i])), floor * scale);
        double rel = den > 0 ? d / den : d;
        if (!(rel <= worst)) { /* also catches NaN */
            worst = rel;
            worst_i = i;
        }
    }
    if (getenv("UNIT_VERBOSE"))
        print_message("# %s: %zu values, worst relative error %.3g (tolerance %.3g)\n", what, count, worst, tol);
    if (!(worst <= tol))
        fail_msg("%s: analytic %.9g vs numerical %.9g at index %zu (relative error %.3g > %.3g)", what,
                 (double)a[worst_i], n[worst_i], worst_i, worst, tol);
    if (!(max_abs(a, count) > 1e-6))
        fail_msg("%s: the analytic gradient is all zeros (max |g| = %g); the check would be vacuous",
                 what, max_abs(a, count));
}

void assert_floats_close(const char *what, const float *a, const float *b, size_t n, double tol)
{
    double scale = max_abs(b, n);
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= tol * (fabs(b[i]) + scale)))
            fail_msg("%s: %.9g != %.9g at index %zu (|diff| %.3g, scale %.3g)", what, (double)a[i],
                     (double)b[i], i, d, scale);
    }
    if (!(scale > 0))
        fail_msg("%s: the reference is all zeros; the comparison would be vacuous", what);
}

/* ---- errors ---- */

void assert_failed_with(int rc, const tr_error *err, int code, ...)
{
    if (rc != -1)
        fail_msg("expected failure (-1), got %d", rc);
    if (err->code != code)
        fail_msg("expected error code %d, got %d (message: '%s')", code, err->code, err->msg);
    va_list ap;
    va_start(ap, code);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) {
        if (!strstr(err->msg, s)) {
            va_end(ap);
            fail_msg("message '%s' does not contain '%s'", err->msg, s);
        }
    }
    va_end(ap);
}

void assert_ok(int rc, const tr_error *err)
{
    if (rc != 0)
        fail_msg("expected success, got %d: %s", rc, err->msg);
}

/* ---- files ---- */

char *tmpdir_make(void)
{
    /* tmpfs when there is one: checkpoint saves fsync, and on a busy disk
     * each fsync can take a large part of a second. */
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s/trainer-unit-XXXXXX", base);
    char *d = mkdtemp(buf);
    if (!d)
        fail_msg("mkdtemp(%s) failed", buf);
    char *copy = strdup(d);
    assert_non_null(copy);
    return copy;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tmpdir_remove(const char *dir)
{
    if (dir)
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *path_in(const char *dir, const char *name)
{
    static char slots[8][2048];
    static int next;
    char *p = slots[next++ % 8];
    snprintf(p, sizeof slots[0], "%s/%s", dir, name);
    return p;
}

void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot create %s", path);
    if (len && fwrite(data, 1, len, f) != len) {
        fclose(f);
        fail_msg("cannot write %s", path);
    }
    if (fclose(f) != 0)
        fail_msg("cannot close %s", path);
}

uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            uint8_t *nb = realloc(buf, cap);
            assert_non_null(nb);
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("cannot open directory %s", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

uint8_t *gzip_bytes(const void *data, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)len) + 64;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

char *config_text(const config *cfg, int with_output)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(config_write(cfg, f, with_output), 0);
    assert_int_equal(fclose(f), 0);
    assert_non_null(text);
    return text;
}

int tmpdir_setup(void **state)
{
    *state = tmpdir_make();
    return 0;
}

int tmpdir_teardown(void **state)
{
    tmpdir_remove(*state);
    free(*state);
    return 0;
}
