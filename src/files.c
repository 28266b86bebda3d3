/* files.c - reading and writing whole files (files.h). */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <isa-l/igzip_lib.h>

#include "digest.h"

/* Deflate cannot expand data by more than about 1032:1. */
#define DEFLATE_MAX_RATIO 1032

/* Content that says nothing about its size: the general cap. */
static size_t capped(const uint8_t *head, size_t n, int at_end, int *kind)
{
    (void)head, (void)n, (void)at_end;
    *kind = FILES_CONTENT_CAPPED;
    return FILES_MAX_BYTES;
}

/* Asks the kernel to back a big buffer with huge pages: faulting in 47 MB
 * of 4 KB pages one by one costs more than inflating them (0.2 s against
 * 0.1 s here), and huge pages cut the faults 512-fold. Only a hint: where
 * transparent huge pages are off nothing changes. Every buffer that grows
 * big, by malloc or by realloc, gets it. */
static void *advise_big(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (p && n >= 2 * huge) {
        uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1), hi = ((uintptr_t)p + n) & ~(huge - 1);
        if (hi > lo)
            madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
#endif
    return p;
}

void *files_alloc_big(size_t n)
{
    return advise_big(malloc(n), n);
}

/* ---- reading ---- */

static int too_much(const char *path, size_t limit, tr_error *err)
{
    return tr_fail(err, TR_EINPUT, "%s: holds more data than the %zu bytes its IDX header promises; stopped reading "
                   "there", path, limit);
}

static int read_all_fd(const char *path, int fd, files_content_limit limit_of, uint8_t **out, size_t *out_len,
                       tr_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return tr_fail(err, TR_EINPUT, "%s: cannot stat: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return tr_fail(err, TR_EINPUT, "%s: is a directory, not an IDX file", path);
    /* One byte more than the file, so the read that sees EOF needs no growth. */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    if (cap > FILES_MAX_BYTES)
        return tr_fail(err, TR_EINPUT, "%s: file too large (%zu bytes)", path, cap);
    uint8_t *buf = files_alloc_big(cap);
    if (!buf)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    size_t len = 0, limit = 0;
    /* A regular file's size is known; a stream (a FIFO, /dev/zero) is read
     * only as far as its first bytes say it goes (content_limit). */
    const int stream = !S_ISREG(st.st_mode);
    int kind = FILES_CONTENT_CAPPED;
    for (;;) {
        if (stream && !limit)
            limit = limit_of(buf, len, 0, &kind);
        if (stream && limit && len > limit - (kind == FILES_CONTENT_UNKNOWN)) {
            if (kind == FILES_CONTENT_EXACT) {
                free(buf);
                return too_much(path, limit, err);
            }
            if (kind == FILES_CONTENT_UNKNOWN)
                break;
        }
        if (len == cap) {
            if (cap >= FILES_MAX_BYTES) {
                free(buf);
                return tr_fail(err, TR_EINPUT, "%s: file too large", path);
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
            }
            buf = advise_big(nb, cap * 2);
            cap *= 2;
        }
        size_t room = cap - len;
        if (stream && limit && room > limit + 1 - len)
            room = limit + 1 - len;
        else if (stream && !limit && room > 32 - len)
            room = 32 - len;
        ssize_t n = read(fd, buf + len, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return tr_fail(err, TR_EINPUT, "%s: read error: %s", path, strerror(errno));
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* Where one member's inflating ended: not yet (MORE), at its end, past what
 * the content allows, beyond FILES_MAX_BYTES or memory, for want of input,
 * on bad data, or where the content needs no more bytes (ENOUGH). */
enum { GZ_MORE, GZ_END, GZ_TOO_MUCH, GZ_TOO_BIG, GZ_SHORT, GZ_BAD, GZ_ENOUGH };

/* ISA-L's codes, in words. */
static const char *isal_problem(int code)
{
    switch (code) {
    case ISAL_INVALID_BLOCK: return "invalid block";
    case ISAL_INVALID_SYMBOL: return "invalid code";
    case ISAL_INVALID_LOOKBACK: return "distance too far back";
    case ISAL_INVALID_WRAPPER: return "bad gzip header";
    case ISAL_UNSUPPORTED_METHOD: return "unknown compression method";
    case ISAL_INCORRECT_CHECKSUM: return "a checksum (of the header, or the data's CRC-32) or the length does not match";
    default: return "inflate failed";
    }
}

/* One gzip file being inflated: IN[POS..] still to read, BUF[0, LEN) out so
 * far, and LIMIT (0 until the content's first bytes tell) of KIND. */
typedef struct {
    const uint8_t *in;
    size_t in_len, pos;
    files_content_limit limit_of;
    uint8_t *buf;
    size_t cap, len, hint, limit;
    int kind;
    int prefaulting; /* a prefault_async task may still be on buf */
    struct inflate_state *zs;
} gunzip_job;

/* The trailer's ISIZE (length mod 2^32 of the last member) is exact for a
 * single-member file, so MNIST inflates without a realloc. It is only a
 * hint (0: none): the buffer grows if it is wrong. A forged ISIZE must not
 * buy a huge allocation; nor may a true one beyond what the content's
 * header allows (taken when the buffer grows). */
static size_t isize_hint(const uint8_t *in, size_t in_len)
{
    if (in_len < 18)
        return 0;
    const uint8_t *t = in + in_len - 4;
    size_t isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
    return isize < FILES_MAX_BYTES && isize / DEFLATE_MAX_RATIO <= in_len ? isize + 1 : 0;
}

/* Faults in N bytes at P ahead of the inflating, where another thread is
 * free to do it (an OpenMP task: train.c loads the training and test sets
 * side by side, and the test set's thread is done long before): the kernel
 * zeroing 47 MB of fresh pages is about a tenth of loading MNIST.
 * MADV_POPULATE_WRITE maps the pages without touching their contents, so
 * it may run while the inflater writes them. Only a hint (Linux 5.14+). */
static int prefault_async(uint8_t *p, size_t n)
{
#ifdef MADV_POPULATE_WRITE
    const uintptr_t page = 4096;
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + n) & ~(page - 1);
    if (n >= ((size_t)4 << 20) && hi > lo) {
#pragma omp task default(none) firstprivate(lo, hi)
        (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
        return 1;
    }
#else
    (void)p, (void)n;
#endif
    return 0;
}

static int grow(gunzip_job *g)
{
    if (g->cap >= FILES_MAX_BYTES)
        return -1;
    /* A prefault of the old buffer must be done with it before realloc.
     * Only then: a taskwait also waits for the file's hash (files_read_all),
     * which the first growth, after 4 KB, would otherwise make serial. */
    if (g->prefaulting) {
#pragma omp taskwait
        g->prefaulting = 0;
    }
    size_t ncap = g->cap * 2 > g->hint ? g->cap * 2 : g->hint;
    if (g->limit && ncap > g->limit + 1)
        ncap = g->limit + 1;
    if (ncap > FILES_MAX_BYTES)
        ncap = FILES_MAX_BYTES;
    uint8_t *nb = realloc(g->buf, ncap);
    if (!nb)
        return -1;
    g->buf = advise_big(nb, ncap);
    /* No further than 16 times the stored size (MNIST inflates 4.8-fold):
     * a forged length, or a file cut short, must not make the pages real. */
    size_t ahead = ncap - g->len;
    g->prefaulting = prefault_async(g->buf + g->len, ahead / 16 > g->in_len ? g->in_len * 16 : ahead);
    g->cap = ncap;
    return 0;
}

/* One isal_inflate call, into no more room than the content allows. */
static int inflate_step(gunzip_job *g, int *code)
{
    struct inflate_state *zs = g->zs;
    size_t avail_in = g->in_len - g->pos;
    zs->next_in = (uint8_t *)(g->in + g->pos);
    zs->avail_in = avail_in > UINT32_MAX ? UINT32_MAX : (uint32_t)avail_in;
    size_t avail_out = g->cap - g->len;
    if (g->limit && avail_out > g->limit + 1 - g->len)
        avail_out = g->limit + 1 - g->len;
    else if (!g->limit && avail_out > 32 - g->len)
        avail_out = 32 - g->len;
    zs->next_out = g->buf + g->len;
    zs->avail_out = avail_out > UINT32_MAX ? UINT32_MAX : (uint32_t)avail_out;
    uint32_t before_in = zs->avail_in, before_out = zs->avail_out;
    *code = isal_inflate(zs);
    g->pos += before_in - zs->avail_in;
    g->len += before_out - zs->avail_out;
    if (*code != ISAL_DECOMP_OK && *code != ISAL_END_INPUT)
        return GZ_BAD;
    if (zs->block_state == ISAL_BLOCK_FINISH)
        return GZ_END;
    if (zs->avail_out > 0 && g->pos == g->in_len) /* it stopped for want of input */
        return GZ_SHORT;
    if (zs->avail_out > 0 && before_in == zs->avail_in && before_out == zs->avail_out)
        return GZ_BAD; /* no progress with room on both sides: never loop on it */
    return GZ_MORE;
}

/* The member at g->pos, inflated no further than the content allows. */
static int inflate_member(gunzip_job *g, int *code)
{
    isal_inflate_init(g->zs);
    g->zs->crc_flag = ISAL_GZIP;
    int state = GZ_MORE;
    while (state == GZ_MORE) {
        if (!g->limit)
            g->limit = g->limit_of(g->buf, g->len, 0, &g->kind);
        if (g->limit && g->len > g->limit - (g->kind == FILES_CONTENT_UNKNOWN)) {
            if (g->kind == FILES_CONTENT_EXACT)
                return GZ_TOO_MUCH;
            if (g->kind == FILES_CONTENT_UNKNOWN)
                return GZ_ENOUGH;
        }
        if (g->len == g->cap && grow(g) != 0)
            return GZ_TOO_BIG;
        state = inflate_step(g, code);
    }
    return state;
}

/* Inflates every gzip member in turn (as `cat a.gz b.gz` makes); anything
 * after the last member that is not another gzip header is an error, since
 * silently ignoring it could hide a damaged download. ISA-L (igzip) does
 * the inflating: on MNIST's 47 MB it takes half zlib's time (0.056 s against
 * 0.11 s; libdeflate, tried too, took 0.20 s: the long zero runs are its
 * weak case). It checks each member's CRC-32 and length as zlib does. */
static int gunzip_all(const char *path, const uint8_t *in, size_t in_len, files_content_limit limit_of,
                      uint8_t **out, size_t *out_len, tr_error *err)
{
    gunzip_job g = { .in = in, .in_len = in_len, .limit_of = limit_of, .cap = 4096,
                     .hint = isize_hint(in, in_len), .kind = FILES_CONTENT_CAPPED };
    g.buf = files_alloc_big(g.cap);
    g.zs = malloc(sizeof *g.zs); /* about 80 KB of tables and window: not for the stack */
    if (!g.buf || !g.zs) {
        free(g.buf);
        free(g.zs);
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    }
    int rc = 0, state = GZ_END;
    while (rc == 0 && state == GZ_END && g.pos < in_len) {
        if (in_len - g.pos < 2 || in[g.pos] != 0x1f || in[g.pos + 1] != 0x8b) {
            rc = tr_fail(err, TR_EINPUT, "%s: %zu bytes of trailing garbage after the gzip stream", path,
                         in_len - g.pos);
            break;
        }
        size_t member_start = g.pos;
        int code = ISAL_DECOMP_OK;
        state = inflate_member(&g, &code);
        if (state == GZ_TOO_MUCH)
            rc = too_much(path, g.limit, err);
        else if (state == GZ_TOO_BIG)
            rc = tr_fail(err, TR_EINPUT, "%s: decompressed data too large or out of memory", path);
        else if (state == GZ_SHORT)
            rc = tr_fail(err, TR_EINPUT, "%s: truncated gzip stream (member at byte %zu ends early)", path,
                         member_start);
        else if (state == GZ_BAD)
            rc = tr_fail(err, TR_EINPUT, "%s: corrupt gzip data: %s", path, isal_problem(code));
    }
#pragma omp taskwait /* the prefault, before the buffer is freed or shrunk */
    free(g.zs);
    if (rc != 0) {
        free(g.buf);
        return rc;
    }
    *out = g.buf;
    *out_len = g.len;
    return 0;
}

int files_read_all(const char *path, files_content_limit limit_of, uint8_t **data, size_t *len, uint8_t *sha256,
                   tr_error *err)
{
    if (!limit_of)
        limit_of = capped;
    if (!path[0]) /* else the message would name nothing */
        return tr_fail(err, TR_EINPUT, "a file name is empty (a data.* key, or a model path, set to nothing)");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail(err, TR_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    int rc = read_all_fd(path, fd, limit_of, &raw, &raw_len, err);
    close(fd);
    if (rc != 0)
        return rc;
    if (raw_len == 0) {
        free(raw);
        return tr_fail(err, TR_EINPUT, "%s: file is empty", path);
    }
    /* The bytes as stored, before inflating: a hash that sha256sum agrees
     * with, and a tenth of the work for a gzipped file. It needs nothing
     * from the inflating, so it is a task that another thread may take (as
     * prefault_async); outside a parallel region it runs here and now. */
    const int gz = raw_len >= 2 && raw[0] == 0x1f && raw[1] == 0x8b;
    if (sha256) {
#pragma omp task default(none) firstprivate(raw, raw_len, sha256) if (gz)
        digest_bytes(raw, raw_len, sha256);
    }
    if (gz) {
        rc = gunzip_all(path, raw, raw_len, limit_of, data, len, err);
#pragma omp taskwait /* the hash, before its bytes are freed */
        free(raw);
        return rc;
    }
    *data = raw;
    *len = raw_len;
    return 0;
}

/* A text file's cap doubles as the stream limit (a config read from a
 * FIFO or /dev/zero stops one byte past it). */
static size_t text_capped(const uint8_t *head, size_t n, int at_end, int *kind)
{
    (void)head, (void)n, (void)at_end;
    *kind = FILES_CONTENT_CAPPED;
    return FILES_TEXT_MAX_BYTES;
}

int files_read_text(const char *path, const char *what, char **text, size_t *len, tr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail(err, TR_EINPUT, "%s: cannot open %s: %s", path, what, strerror(errno));
    /* The text and its NUL must stay below the cap. */
    const size_t most = FILES_TEXT_MAX_BYTES - 2;
    struct stat st;
    int rc;
    uint8_t *buf = NULL;
    size_t n = 0;
    if (fstat(fd, &st) != 0)
        rc = tr_fail(err, TR_EINPUT, "%s: cannot stat: %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = tr_fail(err, TR_EINPUT, "%s: read error (is it a directory?)", path);
    else if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > most)
        rc = tr_fail(err, TR_EINPUT, "%s: %s file too large", path, what);
    else
        rc = read_all_fd(path, fd, text_capped, &buf, &n, err);
    close(fd);
    if (rc != 0)
        return rc;
    if (n > most) { /* a stream, or a file that grew */
        free(buf);
        return tr_fail(err, TR_EINPUT, "%s: %s file too large", path, what);
    }
    if (memchr(buf, '\0', n)) {
        free(buf);
        return tr_fail(err, TR_EINPUT, "%s: contains a NUL byte; not a text %s", path, what);
    }
    char *t = realloc(buf, n + 1);
    if (!t) {
        free(buf);
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    }
    t[n] = '\0';
    *text = t;
    *len = n;
    return 0;
}

/* ---- atomic publication ---- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Renames TMP onto PATH, then makes the rename durable: it is only once
 * the directory entry is on disk. On failure TMP is removed. */
static int rename_durably(const char *tmp, const char *path, tr_error *err)
{
    if (rename(tmp, path) != 0) {
        tr_fail(err, TR_ERUNTIME, "%s: cannot rename into place: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    char *dircopy = strdup(path);
    if (!dircopy)
        return 0; /* published; only the folder's fsync is skipped */
    int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dircopy);
    return 0;
}

int files_publish(const char *tmp, const char *path, tr_error *err)
{
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        tr_fail(err, TR_ERUNTIME, "%s: cannot finish temporary file %s: %s", path, tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    return rename_durably(tmp, path, err);
}

int atomic_write_file(const char *path, const void *data, size_t len, tr_error *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int rc = -1;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        tr_fail(err, TR_ERUNTIME, "%s: cannot create temporary file: %s", path, strerror(errno));
        goto out;
    }
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        tr_fail(err, TR_ERUNTIME, "%s: write failed: %s; the previous file is untouched", path,
                strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (fchmod(fd, 0644) != 0 || close(fd) != 0) {
        tr_fail(err, TR_ERUNTIME, "%s: cannot finish temporary file: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = rename_durably(tmp, path, err);
out:
    free(tmp);
    return rc;
}

int make_parent_dirs(const char *path, tr_error *err)
{
    char buf[FILES_PATH_MAX];
    if (strlen(path) >= sizeof buf)
        return tr_fail(err, TR_EINPUT, "%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + (buf[0] != '\0'); *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            tr_fail(err, TR_ERUNTIME, "%s: cannot create directory %s: %s", path, buf, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    return 0;
}

/* ---- locks and leftovers ---- */

int files_lock_open(const char *lock_path, struct stat *st)
{
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int files_lock_take(int fd, long *holder)
{
    *holder = 0;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        close(fd);
        /* The pid is the last holder's; name it only if it still runs (a
         * lock taken by other means, flock(1) say, leaves an old one). */
        long h = strtol(pid, NULL, 10);
        if (h > 0 && (kill((pid_t)h, 0) == 0 || errno == EPERM))
            *holder = h;
        return 1;
    }
    char line[32];
    int len = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        /* The lock holds without the pid; the pid only makes a refusal nicer. */
    }
    return 0;
}

void files_remove_stale_temps(const char *path)
{
    char dir[FILES_PATH_MAX + 24];
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    size_t dlen = (size_t)(base - path), blen = strlen(base);
    if (dlen >= sizeof dir || blen == 0)
        return;
    memcpy(dir, path, dlen);
    dir[dlen] = '\0';
    DIR *d = opendir(dlen ? dir : ".");
    if (!d)
        return;
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        /* NAME.tmp. and the six characters mkstemp chose, compared as text. */
        if (strncmp(name, base, blen) != 0 || strncmp(name + blen, ".tmp.", 5) != 0)
            continue;
        const char *tail = name + blen + 5;
        if (strlen(tail) != 6 || strspn(tail, alnum) != 6)
            continue;
        char victim[2 * FILES_PATH_MAX + 64];
        if (snprintf(victim, sizeof victim, "%s%s", dir, name) < (int)sizeof victim)
            unlink(victim);
    }
    closedir(d);
}
