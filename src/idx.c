#include "idx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "digest.h"

enum { IDX_MAGIC_U8_1D = 0x00000801, IDX_MAGIC_U8_3D = 0x00000803 };

/* The largest file we accept, decompressed: far above MNIST (47 MB) yet
 * small enough that a hostile header cannot make us allocate the machine. */
#define IDX_MAX_BYTES ((size_t)1 << 30)
/* Deflate cannot expand data by more than about 1032:1. */
#define DEFLATE_MAX_RATIO 1032

/* malloc, asking the kernel to back big buffers with huge pages: faulting
 * in 47 MB of 4 KB pages one by one costs more than inflating them (0.2 s
 * against 0.1 s here), and huge pages cut the faults 512-fold. Only a hint:
 * where transparent huge pages are off nothing changes. */
static void *alloc_big(size_t n)
{
    uint8_t *p = malloc(n);
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

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* What the first bytes of a file's content say about its size. */
enum { CONTENT_UNKNOWN, CONTENT_EXACT, CONTENT_CAPPED };

static size_t idx_elem_size(uint8_t type)
{
    switch (type) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
    }
}

/* How many bytes content starting with the N bytes at H may have, or 0
 * while N is too short to tell (AT_END: there is no more). An IDX header
 * gives the exact size (CONTENT_EXACT): a gzip bomb or /dev/zero behind a
 * valid header is stopped there. The other formats read here (model files,
 * PGM, PNG, JPEG) get the general cap. Anything else gets no more than what
 * is already there (CONTENT_UNKNOWN): enough for every parser, each of which
 * checks its magic first, to refuse it and say what it is. */
static size_t content_limit(const uint8_t *h, size_t n, int at_end, int *kind)
{
    *kind = CONTENT_CAPPED;
    if (n >= 4 && h[0] == 0 && h[1] == 0 && idx_elem_size(h[2]) && h[3] >= 1 && h[3] <= 4) {
        size_t head = 4 + 4 * (size_t)h[3], total = idx_elem_size(h[2]);
        if (n < head)
            return at_end ? IDX_MAX_BYTES : 0;
        *kind = CONTENT_EXACT;
        for (size_t i = 0; i < h[3]; i++)
            if (tr_mul_size(total, be32(h + 4 + 4 * i), &total) != 0 || total > IDX_MAX_BYTES)
                return IDX_MAX_BYTES;
        return head + total;
    }
    if ((n >= 8 && !memcmp(h, "TRAINCNN", 8)) || (n >= 2 && h[0] == 'P' && (h[1] == '5' || h[1] == '2')) ||
        (n >= 4 && !memcmp(h, "\x89PNG", 4)) || (n >= 3 && !memcmp(h, "\xFF\xD8\xFF", 3)))
        return IDX_MAX_BYTES;
    if (n < 8 && !at_end)
        return 0;
    *kind = CONTENT_UNKNOWN;
    return n;
}

static int too_much(const char *path, size_t limit, tr_error *err)
{
    return tr_fail(err, TR_EINPUT, "%s: holds more data than the %zu bytes its IDX header promises; stopped reading "
                   "there", path, limit);
}

static int read_all_fd(const char *path, int fd, uint8_t **out, size_t *out_len,
                       tr_error *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return tr_fail(err, TR_EINPUT, "%s: cannot stat: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return tr_fail(err, TR_EINPUT, "%s: is a directory, not an IDX file", path);
    /* One byte more than the file, so the read that sees EOF needs no growth. */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    if (cap > IDX_MAX_BYTES)
        return tr_fail(err, TR_EINPUT, "%s: file too large (%zu bytes)", path, cap);
    uint8_t *buf = alloc_big(cap);
    if (!buf)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    size_t len = 0, limit = 0;
    /* A regular file's size is known; a stream (a FIFO, /dev/zero) is read
     * only as far as its first bytes say it goes (content_limit). */
    const int stream = !S_ISREG(st.st_mode);
    int kind = CONTENT_CAPPED;
    for (;;) {
        if (stream && !limit)
            limit = content_limit(buf, len, 0, &kind);
        if (stream && limit && len > limit - (kind == CONTENT_UNKNOWN)) {
            if (kind == CONTENT_EXACT) {
                free(buf);
                return too_much(path, limit, err);
            }
            if (kind == CONTENT_UNKNOWN)
                break;
        }
        if (len == cap) {
            if (cap >= IDX_MAX_BYTES) {
                free(buf);
                return tr_fail(err, TR_EINPUT, "%s: file too large", path);
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
            }
            buf = nb;
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

/* Inflates every gzip member in turn (as `cat a.gz b.gz` makes); anything
 * after the last member that is not another gzip header is an error, since
 * silently ignoring it could hide a damaged download. */
static int gunzip_all(const char *path, const uint8_t *in, size_t in_len,
                      uint8_t **out, size_t *out_len, tr_error *err)
{
    /* The trailer's ISIZE (length mod 2^32 of the last member) is exact for
     * a single-member file, so MNIST inflates without a realloc. It is only
     * a hint: the loop below grows the buffer if it is wrong. */
    size_t cap = 4096, hint = 0;
    if (in_len >= 18) {
        const uint8_t *t = in + in_len - 4;
        size_t isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
        /* A forged ISIZE must not buy a huge allocation; nor may a true one
         * beyond what the content's header allows (taken when it grows). */
        if (isize + 1 > cap && isize < IDX_MAX_BYTES && isize / DEFLATE_MAX_RATIO <= in_len)
            hint = isize + 1;
    }
    uint8_t *buf = alloc_big(cap);
    if (!buf)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    size_t len = 0, pos = 0, limit = 0;
    int rc = 0, kind = CONTENT_CAPPED, done = 0;
    while (pos < in_len && !done) {
        if (in_len - pos < 2 || in[pos] != 0x1f || in[pos + 1] != 0x8b) {
            rc = tr_fail(err, TR_EINPUT,
                         "%s: %zu bytes of trailing garbage after the gzip stream",
                         path, in_len - pos);
            break;
        }
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
            rc = tr_fail(err, TR_ERUNTIME, "%s: zlib initialisation failed", path);
            break;
        }
        size_t member_start = pos;
        int zr = Z_OK;
        while (zr != Z_STREAM_END) {
            /* Inflate no further than the content's first bytes allow. */
            if (!limit)
                limit = content_limit(buf, len, 0, &kind);
            if (limit && len > limit - (kind == CONTENT_UNKNOWN)) {
                if (kind == CONTENT_EXACT)
                    zr = Z_NEED_DICT; /* reported below as too much data */
                else if (kind == CONTENT_UNKNOWN)
                    done = 1;
                if (kind != CONTENT_CAPPED)
                    break;
            }
            if (len == cap) {
                if (cap >= IDX_MAX_BYTES) {
                    zr = Z_MEM_ERROR;
                    break;
                }
                size_t ncap = cap * 2 > hint ? cap * 2 : hint;
                if (limit && ncap > limit + 1)
                    ncap = limit + 1;
                if (ncap > IDX_MAX_BYTES)
                    ncap = IDX_MAX_BYTES;
                uint8_t *nb = realloc(buf, ncap);
                if (!nb) {
                    zr = Z_MEM_ERROR;
                    break;
                }
                buf = nb;
                cap = ncap;
            }
            size_t avail_in = in_len - pos;
            zs.next_in = (Bytef *)(in + pos);
            zs.avail_in = avail_in > UINT32_MAX ? UINT32_MAX : (uInt)avail_in;
            size_t avail_out = cap - len;
            if (limit && avail_out > limit + 1 - len)
                avail_out = limit + 1 - len;
            else if (!limit && avail_out > 32 - len)
                avail_out = 32 - len;
            zs.next_out = buf + len;
            zs.avail_out = avail_out > UINT32_MAX ? UINT32_MAX : (uInt)avail_out;
            uInt before_in = zs.avail_in, before_out = zs.avail_out;
            zr = inflate(&zs, Z_NO_FLUSH);
            pos += before_in - zs.avail_in;
            len += before_out - zs.avail_out;
            if (zr == Z_BUF_ERROR && zs.avail_out > 0) /* input ran out */
                break;
            if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
                break;
        }
        const char *zmsg = zs.msg;
        inflateEnd(&zs);
        if (zr == Z_STREAM_END || done)
            continue;
        if (zr == Z_NEED_DICT && kind == CONTENT_EXACT && len > limit)
            rc = too_much(path, limit, err);
        else if (zr == Z_MEM_ERROR)
            rc = tr_fail(err, TR_EINPUT, "%s: decompressed data too large or out of memory", path);
        else if (zr == Z_BUF_ERROR)
            rc = tr_fail(err, TR_EINPUT,
                         "%s: truncated gzip stream (member at byte %zu ends early)",
                         path, member_start);
        else
            rc = tr_fail(err, TR_EINPUT, "%s: corrupt gzip data: %s", path,
                         zmsg ? zmsg : "inflate failed");
        break;
    }
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

int idx_slurp(const char *path, uint8_t **data, size_t *len, tr_error *err)
{
    return idx_slurp_digest(path, data, len, NULL, err);
}

int idx_slurp_digest(const char *path, uint8_t **data, size_t *len, uint8_t *sha256, tr_error *err)
{
    if (!path[0]) /* else the message would name nothing */
        return tr_fail(err, TR_EINPUT, "a file name is empty (a data.* key, or a model path, set to nothing)");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tr_fail(err, TR_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    int rc = read_all_fd(path, fd, &raw, &raw_len, err);
    close(fd);
    if (rc != 0)
        return rc;
    if (raw_len == 0) {
        free(raw);
        return tr_fail(err, TR_EINPUT, "%s: file is empty", path);
    }
    /* The bytes as stored, before inflating: a hash that sha256sum agrees
     * with, and a tenth of the work for a gzipped file. */
    if (sha256)
        digest_bytes(raw, raw_len, sha256);
    if (raw_len >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
        rc = gunzip_all(path, raw, raw_len, data, len, err);
        free(raw);
        return rc;
    }
    *data = raw;
    *len = raw_len;
    return 0;
}

const char *idx_archive_name(const uint8_t *d, size_t len)
{
    static const struct {
        const char *magic;
        size_t n;
        const char *name;
    } formats[] = {
        { "BZh", 3, "a bzip2 file (decompress it with bunzip2, or use the .gz)" },
        { "\xFD" "7zXZ", 6, "an xz file (decompress it with unxz, or use the .gz)" },
        { "PK\x03\x04", 4, "a zip archive (unzip it, or use the .gz)" },
        { "\x28\xB5\x2F\xFD", 4, "a zstd file (decompress it with unzstd, or use the .gz)" },
        { "7z\xBC\xAF\x27\x1C", 6, "a 7-Zip archive (extract it, or use the .gz)" },
        { "\x1F\x8B", 2, "a gzip file inside a gzip file (gunzip it once)" },
    };
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (len >= formats[i].n && !memcmp(d, formats[i].magic, formats[i].n))
            return formats[i].name;
    return NULL;
}

static int check_magic(const char *path, const uint8_t *data, size_t len,
                       uint32_t want, const char *what, tr_error *err)
{
    if (len < 4)
        return tr_fail(err, TR_EINPUT, "%s: too short for an IDX header (%zu bytes)", path, len);
    uint32_t magic = be32(data);
    if (magic == want)
        return 0;
    if (magic == IDX_MAGIC_U8_1D || magic == IDX_MAGIC_U8_3D)
        return tr_fail(err, TR_EINPUT, "%s: is an IDX %s file, expected %s (magic 0x%08X, want 0x%08X)",
                       path, magic == IDX_MAGIC_U8_1D ? "label" : "image", what, magic, want);
    const char *archive = idx_archive_name(data, len);
    if (archive)
        return tr_fail(err, TR_EINPUT, "%s: is %s, not an IDX %s file (magic 0x%08X)", path, archive, what, magic);
    return tr_fail(err, TR_EINPUT, "%s: bad magic 0x%08X, expected 0x%08X for an IDX %s file",
                   path, magic, want, what);
}

int idx_parse_images(const char *path, const uint8_t *data, size_t len,
                     size_t *count, uint32_t *rows, uint32_t *cols,
                     const uint8_t **pixels, tr_error *err)
{
    if (check_magic(path, data, len, IDX_MAGIC_U8_3D, "image", err) != 0)
        return -1;
    if (len < 16)
        return tr_fail(err, TR_EINPUT, "%s: header truncated (%zu of 16 bytes)", path, len);
    size_t n = be32(data + 4);
    uint32_t r = be32(data + 8), c = be32(data + 12);
    size_t pix, total;
    if (r == 0 || c == 0)
        return tr_fail(err, TR_EINPUT, "%s: image size %ux%u is empty", path, r, c);
    if (tr_mul_size(r, c, &pix) != 0 || tr_mul_size(n, pix, &total) != 0 || total > SIZE_MAX - 16)
        return tr_fail(err, TR_EINPUT, "%s: header claims %zu images of %ux%u, which overflows",
                       path, n, r, c);
    if (len != 16 + total)
        return tr_fail(err, TR_EINPUT,
                       "%s: header promises %zu images of %ux%u (%zu bytes) but the data is %zu bytes",
                       path, n, r, c, 16 + total, len);
    *count = n;
    *rows = r;
    *cols = c;
    *pixels = data + 16;
    return 0;
}

int idx_parse_labels(const char *path, const uint8_t *data, size_t len,
                     size_t *count, const uint8_t **labels, tr_error *err)
{
    if (check_magic(path, data, len, IDX_MAGIC_U8_1D, "label", err) != 0)
        return -1;
    if (len < 8)
        return tr_fail(err, TR_EINPUT, "%s: header truncated (%zu of 8 bytes)", path, len);
    size_t n = be32(data + 4);
    if (len != 8 + n)
        return tr_fail(err, TR_EINPUT,
                       "%s: header promises %zu labels (%zu bytes) but the data is %zu bytes",
                       path, n, 8 + n, len);
    *count = n;
    *labels = data + 8;
    return 0;
}

int dataset_load(dataset *ds, const char *images_path, const char *labels_path,
                 unsigned num_classes, size_t limit, tr_error *err)
{
    return dataset_load_digest(ds, images_path, labels_path, num_classes, limit, NULL, NULL, NULL, err);
}

int dataset_load_digest(dataset *ds, const char *images_path, const char *labels_path, unsigned num_classes,
                        size_t limit, uint8_t *images_sha256, uint8_t *labels_sha256, size_t *file_count,
                        tr_error *err)
{
    memset(ds, 0, sizeof *ds);
    uint8_t *img = NULL, *lab = NULL;
    size_t img_len = 0, lab_len = 0, n_img = 0, n_lab = 0;
    uint32_t rows = 0, cols = 0;
    const uint8_t *pixels = NULL, *labels = NULL;
    int rc = -1;
    if (idx_slurp_digest(images_path, &img, &img_len, images_sha256, err) != 0 ||
        idx_parse_images(images_path, img, img_len, &n_img, &rows, &cols, &pixels, err) != 0 ||
        idx_slurp_digest(labels_path, &lab, &lab_len, labels_sha256, err) != 0 ||
        idx_parse_labels(labels_path, lab, lab_len, &n_lab, &labels, err) != 0)
        goto out;
    if (n_img != n_lab) {
        tr_fail(err, TR_EINPUT, "%s: %zu labels but %s has %zu images", labels_path, n_lab,
                images_path, n_img);
        goto out;
    }
    if (n_img == 0) {
        tr_fail(err, TR_EINPUT, "%s: holds no images", images_path);
        goto out;
    }
    for (size_t i = 0; i < n_lab; i++) {
        if (labels[i] >= num_classes) {
            tr_fail(err, TR_EINPUT, "%s: label %u at index %zu is not below %u classes",
                    labels_path, labels[i], i, num_classes);
            goto out;
        }
    }
    size_t n = limit > 0 && limit < n_img ? limit : n_img;
    size_t pix = (size_t)rows * cols; /* checked in idx_parse_images */
    /* Move the payload to the front and shrink, so we keep one buffer and
     * no header bytes. */
    memmove(img, pixels, n * pix);
    memmove(lab, labels, n);
    ds->pixels = img;
    ds->labels = lab;
    uint8_t *shrunk = realloc(ds->pixels, n * pix);
    if (shrunk)
        ds->pixels = shrunk;
    ds->count = n;
    if (file_count)
        *file_count = n_img;
    ds->rows = rows;
    ds->cols = cols;
    img = lab = NULL;
    rc = 0;
out:
    free(img);
    free(lab);
    return rc;
}

void dataset_free(dataset *ds)
{
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

int dataset_append(dataset *ds, const dataset *extra, const char *extra_path, tr_error *err)
{
    if (extra->rows != ds->rows || extra->cols != ds->cols)
        return tr_fail(err, TR_EINPUT, "%s: images are %ux%u but the training images are %ux%u", extra_path,
                       extra->rows, extra->cols, ds->rows, ds->cols);
    size_t pix = (size_t)ds->rows * ds->cols, n = ds->count + extra->count, bytes;
    if (n < ds->count || n > UINT32_MAX || tr_mul_size(n, pix, &bytes) != 0)
        return tr_fail(err, TR_EINPUT, "%s: more than 2^32 training images in all", extra_path);
    uint8_t *px = realloc(ds->pixels, bytes);
    if (!px)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory appending images", extra_path);
    ds->pixels = px;
    uint8_t *lb = realloc(ds->labels, n);
    if (!lb)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory appending labels", extra_path);
    ds->labels = lb;
    memcpy(ds->pixels + ds->count * pix, extra->pixels, extra->count * pix);
    memcpy(ds->labels + ds->count, extra->labels, extra->count);
    ds->count = n;
    return 0;
}
