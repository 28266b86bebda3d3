#include "preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Below this spread between background and the brightest ink (a sixth of
 * the range) an image is taken as blank. */
#define MIN_CONTRAST 42
/* Images at least this large on both sides get the 3x3 median: their
 * strokes are several pixels wide and survive it; speckle does not. */
#define MEDIAN_MIN_SIDE 48

static uint8_t border_median(const uint8_t *g, size_t w, size_t h)
{
    size_t hist[256] = { 0 }, n = 0;
    for (size_t x = 0; x < w; x++) {
        hist[g[x]]++;
        hist[g[(h - 1) * w + x]]++;
        n += 2;
    }
    for (size_t y = 1; y + 1 < h; y++) {
        hist[g[y * w]]++;
        hist[g[y * w + w - 1]]++;
        n += 2;
    }
    size_t seen = 0;
    for (int v = 0; v < 256; v++) {
        seen += hist[v];
        if (2 * seen >= n)
            return (uint8_t)v;
    }
    return 255;
}

static void sort9(uint8_t *v)
{
    for (int i = 1; i < 9; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint8_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
}

/* OUT = the 3x3 median of IN; the outermost pixels are copied. */
static void median3(const uint8_t *in, uint8_t *out, size_t w, size_t h)
{
    memcpy(out, in, w * h);
    for (size_t y = 1; y + 1 < h; y++)
        for (size_t x = 1; x + 1 < w; x++) {
            uint8_t v[9];
            for (int k = 0; k < 9; k++)
                v[k] = in[(y + (size_t)(k / 3) - 1) * w + x + (size_t)(k % 3) - 1];
            sort9(v);
            out[y * w + x] = v[4];
        }
}

/* Area averaging along one axis: output pixel o covers input span
 * [o*step, (o+1)*step) and is the mean of the input over it, partly
 * covered pixels weighted by how much of them it covers. */
static void area_1d(const float *in, size_t in_stride, size_t n_in, float *out, size_t out_stride, size_t n_out)
{
    double step = (double)n_in / (double)n_out;
    for (size_t o = 0; o < n_out; o++) {
        double a = (double)o * step, b = (double)(o + 1) * step, sum = 0;
        size_t last = (size_t)ceil(b);
        if (last > n_in)
            last = n_in;
        for (size_t i = (size_t)a; i < last; i++) {
            double lo = a > (double)i ? a : (double)i, hi = b < (double)(i + 1) ? b : (double)(i + 1);
            if (hi > lo)
                sum += in[i * in_stride] * (hi - lo);
        }
        out[o * out_stride] = (float)(sum / step);
    }
}

/* IMG (W x H, a copy of the picture) made white ink on black as MNIST is:
 * inverted when its border is light, speckle removed, the background to
 * 0 and the ink's core to 255. *BOX gets the ink's bounds {x0, y0, x1, y1}. */
static int clean_ink(const char *path, const uint8_t *gray, uint8_t *img, size_t w, size_t h, size_t *box,
                     tr_error *err)
{
    size_t n = w * h;
    uint8_t flip = border_median(gray, w, h) > 127 ? 255 : 0;
    for (size_t i = 0; i < n; i++)
        img[i] = gray[i] ^ flip;
    if (w >= MEDIAN_MIN_SIDE && h >= MEDIAN_MIN_SIDE) {
        uint8_t *tmp = malloc(n);
        if (!tmp)
            return tr_fail(err, TR_ERUNTIME, "%s: out of memory for a %zux%zu image", path, w, h);
        median3(img, tmp, w, h);
        memcpy(img, tmp, n);
        free(tmp);
    }

    /* Background to 0, the ink's core to 255: faint backgrounds, JPEG
     * ringing and grey ink all become what MNIST has. */
    int bg = border_median(img, w, h), top = 0;
    for (size_t i = 0; i < n; i++)
        if (img[i] > top)
            top = img[i];
    if (top - bg < MIN_CONTRAST)
        return tr_fail(err, TR_EINPUT, "%s: no digit found: the image is blank (ink contrast %d of 255, need %d)",
                       path, top - bg < 0 ? 0 : top - bg, MIN_CONTRAST);
    int lo = bg + (top - bg) / 4, hi = bg + 3 * (top - bg) / 4;
    size_t x0 = w, x1 = 0, y0 = h, y1 = 0;
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++) {
            int v = img[y * w + x];
            v = v <= lo ? 0 : v >= hi ? 255 : (v - lo) * 255 / (hi - lo);
            img[y * w + x] = (uint8_t)v;
            if (v) {
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
        }
    box[0] = x0, box[1] = y0, box[2] = x1, box[3] = y1; /* the top pixel is ink: the box is not empty */
    return 0;
}

/* PATCH (OW x OH) into OUT (SIDE x SIDE) with its centre of mass at the
 * centre (whole pixels, as MNIST did), kept inside the frame. */
static void place_centred(const float *patch, size_t ow, size_t oh, int side, uint8_t *out)
{
    double mass = 0, mx = 0, my = 0;
    for (size_t y = 0; y < oh; y++)
        for (size_t x = 0; x < ow; x++) {
            double v = patch[y * ow + x];
            mass += v;
            mx += v * ((double)x + 0.5);
            my += v * ((double)y + 0.5);
        }
    long ox = lround(side / 2.0 - (mass > 0 ? mx / mass : ow / 2.0));
    long oy = lround(side / 2.0 - (mass > 0 ? my / mass : oh / 2.0));
    ox = ox < 0 ? 0 : ox > side - (long)ow ? side - (long)ow : ox;
    oy = oy < 0 ? 0 : oy > side - (long)oh ? side - (long)oh : oy;
    memset(out, 0, (size_t)side * side);
    for (size_t y = 0; y < oh; y++)
        for (size_t x = 0; x < ow; x++) {
            float v = patch[y * ow + x];
            v = v < 0 ? 0 : v > 255 ? 255 : v;
            out[((size_t)oy + y) * side + (size_t)ox + x] = (uint8_t)lrintf(v);
        }
}

int preprocess_mnist(const char *path, const uint8_t *gray, uint32_t w32, uint32_t h32, int side, uint8_t *out,
                     tr_error *err)
{
    size_t w = w32, h = h32, n = w * h, box[4] = { 0 };
    if (n == 0)
        return tr_fail(err, TR_EINPUT, "%s: the image is empty (%zux%zu)", path, w, h);
    int rc = -1;
    uint8_t *img = malloc(n);
    float *row = NULL, *half = NULL, *patch = NULL;
    if (!img)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory for a %zux%zu image", path, w, h);
    if (clean_ink(path, gray, img, w, h, box, err) != 0)
        goto out;
    size_t x0 = box[0], y0 = box[1], cw = box[2] - x0 + 1, ch = box[3] - y0 + 1;

    /* Fit the longer side to the box, keeping the aspect ratio. */
    double fit = side * 20.0 / 28.0;
    double scale = fit / (double)(cw > ch ? cw : ch);
    size_t ow = (size_t)lround((double)cw * scale), oh = (size_t)lround((double)ch * scale);
    ow = ow < 1 ? 1 : ow;
    oh = oh < 1 ? 1 : oh;
    row = malloc(cw * sizeof *row);
    half = malloc(ch * ow * sizeof *half);
    patch = malloc(oh * ow * sizeof *patch);
    if (!row || !half || !patch) {
        tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
        goto out;
    }
    for (size_t y = 0; y < ch; y++) {
        for (size_t x = 0; x < cw; x++)
            row[x] = img[(y0 + y) * w + x0 + x];
        area_1d(row, 1, cw, half + y * ow, 1, ow);
    }
    for (size_t x = 0; x < ow; x++)
        area_1d(half + x, ow, ch, patch + x, ow, oh);
    place_centred(patch, ow, oh, side, out);
    rc = 0;
out:
    free(img);
    free(row);
    free(half);
    free(patch);
    return rc;
}
