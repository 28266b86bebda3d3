#include "provenance.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static int add_file(data_file **files, size_t *n, size_t *cap, const char *role, const char *path,
                    tr_error *err)
{
    if (*n == PROV_MAX_FILES)
        return tr_fail(err, TR_EINPUT, "%s: more than %d data files", path, PROV_MAX_FILES);
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        data_file *nf = realloc(*files, ncap * sizeof *nf);
        if (!nf)
            return tr_fail(err, TR_ERUNTIME, "out of memory listing data files");
        *files = nf;
        *cap = ncap;
    }
    data_file *f = &(*files)[(*n)++];
    memset(f, 0, sizeof *f);
    snprintf(f->role, sizeof f->role, "%s", role);
    if (strlen(path) >= sizeof f->path)
        return tr_fail(err, TR_EINPUT, "%s: path too long", path);
    strcpy(f->path, path);
    return 0;
}

/* ---- data.extra: a directory of NAME-images / NAME-labels pairs ---- */

typedef struct {
    char *name; /* the file name */
    size_t stem; /* length of NAME */
    int labels;  /* 0 images, 1 labels */
} extra_entry;

static const char *const extra_suffix[2] = { "-images-idx3-ubyte", "-labels-idx1-ubyte" };

/* NAME's length when FILE is NAME-images-idx3-ubyte[.gz] (or -labels-),
 * with *LABELS set; 0 when it is neither. */
static size_t extra_stem(const char *file, int *labels)
{
    size_t len = strlen(file);
    if (len > 3 && !strcmp(file + len - 3, ".gz"))
        len -= 3;
    for (int k = 0; k < 2; k++) {
        size_t sl = strlen(extra_suffix[k]);
        if (len > sl && !strncmp(file + len - sl, extra_suffix[k], sl)) {
            *labels = k;
            return len - sl;
        }
    }
    return 0;
}

static int extra_cmp(const void *a, const void *b)
{
    const extra_entry *x = a, *y = b;
    size_t n = x->stem < y->stem ? x->stem : y->stem;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    if (x->stem != y->stem)
        return x->stem < y->stem ? -1 : 1;
    return x->labels - y->labels;
}

static int extra_fail(tr_error *err, const char *dir, const char *name, const char *what)
{
    return tr_fail(err, TR_EINPUT, "%s/%s: %s (data.extra)", dir, name, what);
}

/* Why DIR/NAME cannot be a data.extra file (NULL: it can), with its stem
 * and kind; PATH gets DIR/NAME. */
static const char *extra_refusal(const char *dir, const char *name, size_t *stem, int *labels, char *path,
                                 size_t size)
{
    struct stat st;
    if ((*stem = extra_stem(name, labels)) == 0)
        return "not NAME-images-idx3-ubyte[.gz] or NAME-labels-idx1-ubyte[.gz]; move it away or start its name "
               "with '.'";
    if (snprintf(path, size, "%s/%s", dir, name) >= (int)size)
        return "path too long";
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return "not a regular file";
    return NULL;
}

/* DIR's data files, checked one by one, into *E (*N of them), unsorted. */
static int list_extra(const char *dir, extra_entry **e, size_t *n, tr_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return tr_fail(err, TR_EINPUT, "%s: cannot open the data.extra directory: %s", dir, strerror(errno));
    size_t ecap = 0;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue; /* ., .., and drops still being copied in */
        int labels = 0;
        size_t stem = 0;
        char path[CONFIG_PATH_MAX];
        const char *why = extra_refusal(dir, de->d_name, &stem, &labels, path, sizeof path);
        if (why) {
            rc = extra_fail(err, dir, de->d_name, why);
        } else if (*n == PROV_MAX_FILES) {
            rc = extra_fail(err, dir, de->d_name, "too many files");
        } else {
            if (*n == ecap) {
                ecap = ecap ? ecap * 2 : 16;
                extra_entry *ne = realloc(*e, ecap * sizeof *ne);
                if (!ne) {
                    rc = tr_fail(err, TR_ERUNTIME, "%s: out of memory", dir);
                    break;
                }
                *e = ne;
            }
            extra_entry *x = &(*e)[*n];
            x->name = strdup(de->d_name);
            x->stem = stem;
            x->labels = labels;
            if (!x->name)
                rc = tr_fail(err, TR_ERUNTIME, "%s: out of memory", dir);
            else
                (*n)++;
        }
    }
    if (rc == 0 && errno != 0)
        rc = tr_fail(err, TR_EINPUT, "%s: cannot read the data.extra directory: %s", dir, strerror(errno));
    closedir(d);
    return rc;
}

/* Sorted, each NAME must be exactly one images file then one labels file;
 * the pairs go into the plan in that order. */
static int plan_extra_pairs(const char *dir, const extra_entry *e, size_t n, data_file **fs, size_t *count,
                            size_t *cap, tr_error *err)
{
    for (size_t i = 0; i < n;) {
        const extra_entry *a = &e[i], *b = i + 1 < n ? &e[i + 1] : NULL;
        int same = b && b->stem == a->stem && !memcmp(a->name, b->name, a->stem);
        if (same && a->labels == b->labels)
            return tr_fail(err, TR_EINPUT, "%s/%s: %s also exists: two %s files for '%.*s' (data.extra)", dir,
                           b->name, a->name, a->labels ? "labels" : "images", (int)a->stem, a->name);
        if (!same || a->labels) {
            char want[512];
            snprintf(want, sizeof want, "no %.*s%s[.gz] beside it", (int)a->stem, a->name,
                     extra_suffix[!a->labels]);
            return extra_fail(err, dir, a->name, want);
        }
        char ip[CONFIG_PATH_MAX], lp[CONFIG_PATH_MAX];
        snprintf(ip, sizeof ip, "%s/%s", dir, a->name);
        snprintf(lp, sizeof lp, "%s/%s", dir, b->name);
        if (add_file(fs, count, cap, "extra_images", ip, err) != 0 ||
            add_file(fs, count, cap, "extra_labels", lp, err) != 0)
            return -1;
        i += 2;
    }
    return 0;
}

/* Appends the pairs of DIR to the plan, in name order. */
static int plan_extra(const char *dir, data_file **fs, size_t *count, size_t *cap, tr_error *err)
{
    extra_entry *e = NULL;
    size_t n = 0;
    int rc = list_extra(dir, &e, &n, err);
    if (rc == 0) {
        qsort(e, n, sizeof *e, extra_cmp);
        rc = plan_extra_pairs(dir, e, n, fs, count, cap, err);
    }
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
    return rc;
}

int data_plan(const config *cfg, data_file **files, size_t *n, tr_error *err)
{
    data_file *fs = NULL;
    size_t count = 0, cap = 0;
    *files = NULL;
    *n = 0;
    if (add_file(&fs, &count, &cap, "train_images", cfg->train_images, err) != 0 ||
        add_file(&fs, &count, &cap, "train_labels", cfg->train_labels, err) != 0 ||
        (cfg->extra[0] && plan_extra(cfg->extra, &fs, &count, &cap, err) != 0) ||
        add_file(&fs, &count, &cap, "test_images", cfg->test_images, err) != 0 ||
        add_file(&fs, &count, &cap, "test_labels", cfg->test_labels, err) != 0) {
        free(fs);
        return -1;
    }
    *files = fs;
    *n = count;
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The first bytes of a file's content (magic and count), inflated when
 * the file is gzipped, gathered from the chunks as they are read. */
typedef struct {
    uint8_t head[8];
    size_t len;
    int gz, zdone; /* gz: -1 until the first chunk says */
    z_stream zs;
} idx_head;

static int head_feed(idx_head *h, uint8_t *buf, size_t got, const char *path, tr_error *err)
{
    if (h->gz < 0) {
        h->gz = got >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
        if (h->gz && inflateInit2(&h->zs, 16 + MAX_WBITS) != Z_OK)
            return tr_fail(err, TR_ERUNTIME, "%s: zlib initialisation failed", path);
    }
    if (h->len == sizeof h->head || h->zdone)
        return 0;
    if (!h->gz) {
        size_t take = got < sizeof h->head - h->len ? got : sizeof h->head - h->len;
        memcpy(h->head + h->len, buf, take);
        h->len += take;
        return 0;
    }
    h->zs.next_in = buf;
    h->zs.avail_in = (uInt)got;
    while (h->zs.avail_in > 0 && h->len < sizeof h->head) {
        h->zs.next_out = h->head + h->len;
        h->zs.avail_out = (uInt)(sizeof h->head - h->len);
        int zr = inflate(&h->zs, Z_NO_FLUSH);
        h->len = sizeof h->head - h->zs.avail_out;
        if (zr != Z_OK) { /* the stream ended, or is corrupt: the header is what we have */
            h->zdone = 1;
            break;
        }
    }
    return 0;
}

/* Hashes the whole of FD as stored and gathers its header into *H;
 * *TOTAL gets its size. */
static int hash_and_head(int fd, const char *path, digest_ctx *ctx, idx_head *h, size_t *total, tr_error *err)
{
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, buf, CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = tr_fail(err, TR_EINPUT, "%s: read error: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        digest_update(ctx, buf, (size_t)r);
        *total += (size_t)r;
        if ((rc = head_feed(h, buf, (size_t)r, path, err)) != 0)
            break;
    }
    free(buf);
    return rc;
}

int data_file_identify(data_file *f, tr_error *err)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail(err, TR_EINPUT, "%s: cannot open: %s", f->path, strerror(errno));
    digest_ctx ctx;
    digest_init(&ctx);
    /* The header (magic and count) comes from the first bytes, inflated
     * when the file is gzipped; the rest of the file is only hashed. */
    idx_head h;
    memset(&h, 0, sizeof h);
    h.gz = -1;
    size_t total = 0;
    int rc = hash_and_head(fd, f->path, &ctx, &h, &total, err);
    close(fd);
    if (h.gz > 0)
        inflateEnd(&h.zs);
    if (rc != 0)
        return rc;
    if (total == 0)
        return tr_fail(err, TR_EINPUT, "%s: file is empty", f->path);
    int images = strstr(f->role, "images") != NULL;
    uint32_t want = images ? 0x00000803u : 0x00000801u;
    if (h.len < sizeof h.head)
        return tr_fail(err, TR_EINPUT, "%s: too short for an IDX header", f->path);
    if (be32(h.head) != want)
        return tr_fail(err, TR_EINPUT, "%s: bad magic 0x%08X, expected 0x%08X for an IDX %s file", f->path,
                       be32(h.head), want, images ? "image" : "label");
    f->count = be32(h.head + 4);
    digest_final(&ctx, f->sha256);
    return 0;
}

int provenance_fingerprint(const char *version, const config *cfg, const data_file *files, size_t n,
                           char hex[DIGEST_HEX_SIZE], tr_error *err)
{
    char *text = NULL;
    size_t text_len = 0;
    FILE *mf = open_memstream(&text, &text_len);
    if (!mf || config_write(cfg, mf, 0) != 0 || fclose(mf) != 0) {
        free(text);
        return tr_fail(err, TR_ERUNTIME, "out of memory writing the config");
    }
    digest_ctx ctx;
    digest_init(&ctx);
    char line[PROV_ROLE_MAX + DIGEST_HEX_SIZE + 64];
    int len = snprintf(line, sizeof line, "trainer-fingerprint 1\nversion %s\nconfig %zu\n", version, text_len);
    digest_update(&ctx, line, (size_t)len);
    digest_update(&ctx, text, text_len);
    free(text);
    for (size_t i = 0; i < n; i++) {
        char h[DIGEST_HEX_SIZE];
        digest_hex(files[i].sha256, h);
        len = snprintf(line, sizeof line, "%s %s\n", files[i].role, h);
        digest_update(&ctx, line, (size_t)len);
    }
    uint8_t d[DIGEST_SIZE];
    digest_final(&ctx, d);
    digest_hex(d, hex);
    return 0;
}

int provenance_set_files(provenance *dst, const data_file *files, size_t n, tr_error *err)
{
    data_file *copy = NULL;
    if (n) {
        copy = malloc(n * sizeof *copy);
        if (!copy)
            return tr_fail(err, TR_ERUNTIME, "out of memory copying the data list");
        memcpy(copy, files, n * sizeof *copy);
    }
    free(dst->files);
    dst->files = copy;
    dst->nfiles = n;
    return 0;
}

void provenance_free(provenance *p)
{
    free(p->files);
    p->files = NULL;
    p->nfiles = 0;
}

int data_load_train(dataset *ds, data_file *plan, size_t n, const config *cfg, tr_error *err)
{
    memset(ds, 0, sizeof *ds);
    if (n < 4)
        return tr_fail(err, TR_ERUNTIME, "internal error: a data plan without training and test files");
    size_t in_file = 0;
    if (dataset_load_digest(ds, plan[0].path, plan[1].path, (unsigned)cfg->classes, (size_t)cfg->limit,
                            plan[0].sha256, plan[1].sha256, &in_file, err) != 0)
        return -1;
    plan[0].count = plan[1].count = in_file;
    for (size_t i = 2; i + 1 < n - 2; i += 2) {
        dataset extra;
        if (dataset_load_digest(&extra, plan[i].path, plan[i + 1].path, (unsigned)cfg->classes, 0,
                                plan[i].sha256, plan[i + 1].sha256, &in_file, err) != 0) {
            dataset_free(ds);
            return -1;
        }
        plan[i].count = plan[i + 1].count = in_file;
        int rc = dataset_append(ds, &extra, plan[i].path, err);
        dataset_free(&extra);
        if (rc != 0) {
            dataset_free(ds);
            return -1;
        }
    }
    return 0;
}

int data_load_test(dataset *ds, data_file *plan, size_t n, const config *cfg, tr_error *err)
{
    memset(ds, 0, sizeof *ds);
    if (n < 4)
        return tr_fail(err, TR_ERUNTIME, "internal error: a data plan without training and test files");
    data_file *img = &plan[n - 2], *lab = &plan[n - 1];
    size_t in_file = 0;
    if (dataset_load_digest(ds, img->path, lab->path, (unsigned)cfg->classes, (size_t)cfg->test_limit,
                            img->sha256, lab->sha256, &in_file, err) != 0)
        return -1;
    img->count = lab->count = in_file;
    return 0;
}

int provenance_clock_fixed(void)
{
    const char *s = getenv("SOURCE_DATE_EPOCH");
    return s && *s && strspn(s, "0123456789") == strlen(s) && strlen(s) < 19;
}

int64_t provenance_now(void)
{
    if (provenance_clock_fixed())
        return (int64_t)strtoll(getenv("SOURCE_DATE_EPOCH"), NULL, 10);
    return (int64_t)time(NULL);
}
