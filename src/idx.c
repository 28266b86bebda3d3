#include "idx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "files.h"

enum { IDX_MAGIC_U8_1D = 0x00000801, IDX_MAGIC_U8_3D = 0x00000803 };

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

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
 * gives the exact size (FILES_CONTENT_EXACT): a gzip bomb or /dev/zero behind a
 * valid header is stopped there. The other formats read here (model files,
 * PGM, PNG, JPEG) get the general cap. Anything else gets no more than what
 * is already there (FILES_CONTENT_UNKNOWN): enough for every parser, each of which
 * checks its magic first, to refuse it and say what it is. */
static size_t content_limit(const uint8_t *h, size_t n, int at_end, int *kind)
{
    *kind = FILES_CONTENT_CAPPED;
    if (n >= 4 && h[0] == 0 && h[1] == 0 && idx_elem_size(h[2]) && h[3] >= 1 && h[3] <= 4) {
        size_t head = 4 + 4 * (size_t)h[3], total = idx_elem_size(h[2]);
        if (n < head)
            return at_end ? FILES_MAX_BYTES : 0;
        *kind = FILES_CONTENT_EXACT;
        for (size_t i = 0; i < h[3]; i++)
            if (tr_mul_size(total, be32(h + 4 + 4 * i), &total) != 0 || total > FILES_MAX_BYTES)
                return FILES_MAX_BYTES;
        return head + total;
    }
    if ((n >= 8 && !memcmp(h, "TRAINCNN", 8)) || (n >= 2 && h[0] == 'P' && (h[1] == '5' || h[1] == '2')) ||
        (n >= 4 && !memcmp(h, "\x89PNG", 4)) || (n >= 3 && !memcmp(h, "\xFF\xD8\xFF", 3)))
        return FILES_MAX_BYTES;
    if (n < 8 && !at_end)
        return 0;
    *kind = FILES_CONTENT_UNKNOWN;
    return n;
}

int idx_slurp(const char *path, uint8_t **data, size_t *len, tr_error *err)
{
    return files_read_all(path, content_limit, data, len, NULL, err);
}

int idx_slurp_digest(const char *path, uint8_t **data, size_t *len, uint8_t *sha256, tr_error *err)
{
    return files_read_all(path, content_limit, data, len, sha256, err);
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
    /* The pixels stay where they were inflated, after the header: moving
     * MNIST's 47 MB to the front took 3% of loading. What the limit leaves
     * out is given back. */
    const size_t head = (size_t)(pixels - img);
    uint8_t *shrunk = realloc(img, head + n * pix);
    if (shrunk)
        img = shrunk;
    memmove(lab, labels, n);
    ds->block = img;
    ds->pixels = img + head;
    ds->labels = lab;
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
    free(ds->block ? ds->block : ds->pixels);
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
    /* One copy into a fresh buffer, not realloc: the block of a big set has
     * huge-page advice on its middle (files.c), which splits its mapping, so
     * glibc cannot mremap it and realloc copied it anyway (after a memmove
     * of the pixels to the front), into 4 KB pages faulted in one by one:
     * appending the 10,000 test images to MNIST's 60,000 took 0.16 s,
     * 0.02 s into a buffer advised before the copy. */
    uint8_t *px = files_alloc_big(bytes);
    if (!px)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory appending images", extra_path);
    memcpy(px, ds->pixels, ds->count * pix);
    free(ds->block ? ds->block : ds->pixels);
    ds->pixels = px;
    ds->block = NULL;
    uint8_t *lb = realloc(ds->labels, n);
    if (!lb)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory appending labels", extra_path);
    ds->labels = lb;
    memcpy(ds->pixels + ds->count * pix, extra->pixels, extra->count * pix);
    memcpy(ds->labels + ds->count, extra->labels, extra->count);
    ds->count = n;
    return 0;
}
