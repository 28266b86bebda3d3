#include "report_img.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pngout.h"

typedef struct {
    int w, h;
    uint8_t *rgb;
} canvas;

static int canvas_init(canvas *c, int w, int h, uint8_t fill, tr_error *err)
{
    c->w = w;
    c->h = h;
    c->rgb = tr_calloc((size_t)w * h, 3, err);
    if (c->rgb)
        memset(c->rgb, fill, (size_t)w * h * 3);
    return c->rgb ? 0 : -1;
}

/* Diverging scale for weights: blue below zero, white at zero, red above. */
static void diverging(float v, uint8_t *px)
{
    v = v < -1 ? -1 : v > 1 ? 1 : v;
    uint8_t fade = (uint8_t)lrintf(255.0f * (1.0f - fabsf(v)));
    px[0] = v < 0 ? fade : 255;
    px[1] = fade;
    px[2] = v < 0 ? 255 : fade;
}

/* Sequential scale for activations and pixels: white (0) to near black (1). */
static void sequential(float v, uint8_t *px)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    uint8_t g = (uint8_t)lrintf(255.0f * (1.0f - 0.92f * v));
    px[0] = px[1] = px[2] = g;
}

/* Draws a rows x cols map scaled by S at (x0, y0); values are divided by VMAX. */
static void draw_map(canvas *c, int x0, int y0, const float *v, int rows, int cols, int s, float vmax,
                     void (*color)(float, uint8_t *))
{
    float inv = vmax > 0 ? 1.0f / vmax : 0.0f;
    for (int y = 0; y < rows * s; y++)
        for (int x = 0; x < cols * s; x++) {
            int cx = x0 + x, cy = y0 + y;
            if (cx < c->w && cy < c->h)
                color(v[(y / s) * cols + x / s] * inv, c->rgb + ((size_t)cy * c->w + cx) * 3);
        }
}

static float max_abs(const float *v, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++)
        m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
    return m;
}

static int save(canvas *c, const char *path, tr_error *err)
{
    int rc = png_write_rgb(path, c->rgb, c->w, c->h, err);
    free(c->rgb);
    c->rgb = NULL;
    return rc;
}

int report_kernels_png(const network *net, const net_layer *l, const char *path, kernel_sheet *ks, tr_error *err)
{
    const float *w = net->params + l->w_off;
    int k = l->k, s = k <= 5 ? 10 : 4;
    ks->gap = 4;
    ks->pad = 4;
    ks->cell = k * s + ks->gap;
    ks->rows = l->in_c == 1 ? 1 : l->out_c;
    ks->cols = l->in_c == 1 ? l->out_c : l->in_c;
    ks->w = ks->cols * ks->cell + ks->pad;
    ks->h = ks->rows * ks->cell + ks->pad;
    ks->vmax = max_abs(w, l->nweights);
    canvas c;
    if (canvas_init(&c, ks->w, ks->h, REPORT_GUTTER_GREY, err) != 0)
        return -1;
    for (int o = 0; o < l->out_c; o++)
        for (int i = 0; i < l->in_c; i++) {
            int r = l->in_c == 1 ? 0 : o, col = l->in_c == 1 ? o : i;
            draw_map(&c, ks->pad + col * ks->cell, ks->pad + r * ks->cell, w + ((size_t)o * l->in_c + i) * k * k,
                     k, k, s, ks->vmax, diverging);
        }
    return save(&c, path, err);
}

int report_maps_png(const float *a, int channels, int h, int w, int scale, const char *path, tr_error *err)
{
    int cellw = w * scale + 3, per_row = channels > 8 ? 8 : channels;
    int rows = (channels + per_row - 1) / per_row;
    canvas c;
    if (canvas_init(&c, per_row * cellw + 3, rows * (h * scale + 3) + 3, REPORT_GUTTER_GREY, err) != 0)
        return -1;
    for (int ch = 0; ch < channels; ch++) {
        const float *m = a + (size_t)ch * h * w;
        draw_map(&c, 3 + (ch % per_row) * cellw, 3 + (ch / per_row) * (h * scale + 3), m, h, w, scale,
                 max_abs(m, (size_t)h * w), sequential);
    }
    return save(&c, path, err);
}

int report_digit_png(const dataset *ds, size_t index, int scale, const char *path, tr_error *err)
{
    size_t n = (size_t)ds->rows * ds->cols;
    float *v = tr_calloc(n, sizeof(float), err);
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++)
        v[i] = ds->pixels[index * n + i] / 255.0f;
    canvas c;
    int rc = canvas_init(&c, (int)ds->cols * scale, (int)ds->rows * scale, 255, err);
    if (rc == 0) {
        draw_map(&c, 0, 0, v, (int)ds->rows, (int)ds->cols, scale, 1.0f, sequential);
        rc = save(&c, path, err);
    }
    free(v);
    return rc;
}
