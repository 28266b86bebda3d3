#include "pgm.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Reads the next header integer, skipping white space and # comments. */
static int next_int(const uint8_t *d, size_t len, size_t *pos, unsigned long *out)
{
    while (*pos < len) {
        if (d[*pos] == '#')
            while (*pos < len && d[*pos] != '\n')
                (*pos)++;
        else if (isspace(d[*pos]))
            (*pos)++;
        else
            break;
    }
    if (*pos >= len || !isdigit(d[*pos]))
        return -1;
    unsigned long v = 0;
    while (*pos < len && isdigit(d[*pos])) {
        v = v * 10 + (unsigned long)(d[*pos] - '0');
        if (v > 1u << 20)
            return -1;
        (*pos)++;
    }
    *out = v;
    return 0;
}

int pgm_sniff(const uint8_t *d, size_t len)
{
    return len >= 2 && d[0] == 'P' && (d[1] == '5' || d[1] == '2' || d[1] == '6' || d[1] == '3');
}

/* A colour pixel's grey: the luma weights JPEG's grey conversion uses. */
static uint8_t luma(const unsigned long *rgb, unsigned long maxval)
{
    return (uint8_t)((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2]) * 255 / (1000 * maxval));
}

/* P5/P6: WxH pixels of CHANNELS samples, one byte each, or two
 * (big-endian) above maxval 255, after the one white-space byte at POS. */
static int binary_pixels(const char *path, const uint8_t *d, size_t len, size_t pos, unsigned long w,
                         unsigned long h, size_t channels, unsigned long maxval, uint8_t *out, tr_error *err)
{
    pos++; /* the single white-space byte after maxval */
    size_t bytes = maxval > 255 ? 2 : 1; /* 16-bit samples are big-endian */
    if (len < pos || len - pos != w * h * channels * bytes)
        return tr_fail(err, TR_EINPUT, "%s: PGM data is %zu bytes, the header promises %lu", path,
                       len < pos ? 0 : len - pos, w * h * channels * bytes);
    for (size_t i = 0; i < w * h; i++) {
        unsigned long rgb[3];
        for (size_t c = 0; c < 3; c++) {
            const uint8_t *p = d + pos + (i * channels + (channels > 1 ? c : 0)) * bytes;
            rgb[c] = bytes == 2 ? (unsigned long)p[0] << 8 | p[1] : p[0];
        }
        out[i] = channels == 1 ? (uint8_t)(rgb[0] * 255u / maxval) : luma(rgb, maxval);
    }
    return 0;
}

/* P2/P3: the same as decimal numbers from POS on. */
static int text_pixels(const char *path, const uint8_t *d, size_t len, size_t pos, unsigned long w,
                       unsigned long h, size_t channels, unsigned long maxval, uint8_t *out, tr_error *err)
{
    for (size_t i = 0; i < w * h; i++) {
        unsigned long v[3];
        for (size_t c = 0; c < channels; c++)
            if (next_int(d, len, &pos, &v[c]) || v[c] > maxval)
                return tr_fail(err, TR_EINPUT, "%s: %s pixel %zu is missing or above maxval", path,
                               channels == 3 ? "PPM" : "PGM", i);
        out[i] = channels == 3 ? luma(v, maxval) : (uint8_t)(v[0] * 255u / maxval);
    }
    return 0;
}

int pgm_parse(const char *path, const uint8_t *d, size_t len, uint8_t **pixels, uint32_t *rows,
              uint32_t *cols, tr_error *err)
{
    size_t pos = 2;
    unsigned long w, h, maxval;
    if (!pgm_sniff(d, len))
        return tr_fail(err, TR_EINPUT, "%s: not a PGM image (expected P5 or P2)", path);
    int binary = d[1] == '5' || d[1] == '6';
    size_t channels = d[1] == '6' || d[1] == '3' ? 3 : 1; /* PPM: colour, turned grey */
    if (next_int(d, len, &pos, &w) || next_int(d, len, &pos, &h) || next_int(d, len, &pos, &maxval) ||
        w == 0 || h == 0 || maxval == 0 || maxval > 65535)
        return tr_fail(err, TR_EINPUT, "%s: bad PGM header (need width, height and maxval <= 65535)", path);
    /* Binary pixels take a byte each, text ones at least two: a header
     * promising more than the file holds is refused before allocating. */
    if (w * h * channels > len)
        return tr_fail(err, TR_EINPUT, "%s: PGM header promises %lux%lu pixels, more than the file's %zu bytes",
                       path, w, h, len);
    uint8_t *out = malloc(w * h);
    if (!out)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    if ((binary ? binary_pixels : text_pixels)(path, d, len, pos, w, h, channels, maxval, out, err) != 0) {
        free(out);
        return -1;
    }
    *pixels = out;
    *rows = (uint32_t)h;
    *cols = (uint32_t)w;
    return 0;
}
