#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "config.h"
#include "data.h"
#include "eval.h"
#include "idx.h"
#include "network.h"
#include "pngout.h"
#include "threads.h"
#include "timer.h"
#include "version.h"

#define FEATURE_IMAGES 3
#define MAX_MISCLASSIFIED 40

/* ---- images ---- */

typedef struct {
    int w, h;
    uint8_t *rgb;
} canvas;

static int canvas_init(canvas *c, int w, int h, tr_error *err)
{
    c->w = w;
    c->h = h;
    c->rgb = tr_calloc((size_t)w * h, 3, err);
    if (c->rgb)
        memset(c->rgb, 255, (size_t)w * h * 3);
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

static int save(canvas *c, const char *dir, const char *name, tr_error *err)
{
    char path[CONFIG_PATH_MAX + 64];
    int rc = snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path
                 ? png_write_rgb(path, c->rgb, c->w, c->h, err)
                 : tr_fail(err, TR_EINPUT, "%s: report directory path too long", dir);
    free(c->rgb);
    c->rgb = NULL;
    return rc;
}

/* A conv layer's kernels: one row per filter, one column per input channel
 * (a single row when there is one input channel), shared colour scale. */
static int kernels_png(const network *net, const net_layer *l, const char *dir, const char *name,
                       tr_error *err)
{
    const float *w = net->params + l->w_off;
    int k = l->k, s = k <= 5 ? 10 : 4, cell = k * s + 4;
    int rows = l->in_c == 1 ? 1 : l->out_c, cols = l->in_c == 1 ? l->out_c : l->in_c;
    canvas c;
    if (canvas_init(&c, cols * cell + 4, rows * cell + 4, err) != 0)
        return -1;
    float vmax = max_abs(w, l->nweights);
    for (int o = 0; o < l->out_c; o++)
        for (int i = 0; i < l->in_c; i++) {
            int r = l->in_c == 1 ? 0 : o, col = l->in_c == 1 ? o : i;
            draw_map(&c, 4 + col * cell, 4 + r * cell, w + ((size_t)o * l->in_c + i) * k * k, k, k, s, vmax,
                     diverging);
        }
    return save(&c, dir, name, err);
}

/* All channels of one activation tensor side by side, each on its own scale. */
static int maps_png(const float *a, int channels, int h, int w, int scale, const char *dir, const char *name,
                    tr_error *err)
{
    int cellw = w * scale + 3, per_row = channels > 8 ? 8 : channels;
    int rows = (channels + per_row - 1) / per_row;
    canvas c;
    if (canvas_init(&c, per_row * cellw + 3, rows * (h * scale + 3) + 3, err) != 0)
        return -1;
    for (int ch = 0; ch < channels; ch++) {
        const float *m = a + (size_t)ch * h * w;
        draw_map(&c, 3 + (ch % per_row) * cellw, 3 + (ch / per_row) * (h * scale + 3), m, h, w, scale,
                 max_abs(m, (size_t)h * w), sequential);
    }
    return save(&c, dir, name, err);
}

static int digit_png(const dataset *ds, size_t index, int scale, const char *dir, const char *name,
                     tr_error *err)
{
    size_t n = (size_t)ds->rows * ds->cols;
    float *v = tr_calloc(n, sizeof(float), err);
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++)
        v[i] = ds->pixels[index * n + i] / 255.0f;
    canvas c;
    int rc = canvas_init(&c, (int)ds->cols * scale, (int)ds->rows * scale, err);
    if (rc == 0) {
        draw_map(&c, 0, 0, v, (int)ds->rows, (int)ds->cols, scale, 1.0f, sequential);
        rc = save(&c, dir, name, err);
    }
    free(v);
    return rc;
}

/* ---- metrics and curves ---- */

typedef struct {
    int n;
    double epoch[1024], loss[1024], train[1024], val[1024], test[1024], rate[1024], secs[1024];
} metrics;

static int read_metrics(const char *path, metrics *m, tr_error *err)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f)
        return tr_fail(err, TR_EINPUT, "%s: cannot open metrics: %s", path, strerror(errno));
    char line[512];
    int lineno = 0;
    while (fgets(line, sizeof line, f) && m->n < 1024) {
        lineno++;
        if (lineno == 1 && !strncmp(line, "epoch,", 6))
            continue;
        double lr;
        int i = m->n;
        if (sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &m->epoch[i], &m->loss[i], &m->train[i], &m->val[i],
                   &m->test[i], &lr, &m->rate[i], &m->secs[i]) != 8) {
            fclose(f);
            return tr_fail(err, TR_EINPUT, "%s:%d: not a trainer metrics line", path, lineno);
        }
        m->n++;
    }
    fclose(f);
    return 0;
}

/* The per-step losses, averaged into at most STEP_POINTS bins for the
 * chart, with an exponential moving average (the smoothed curve). */
#define STEP_POINTS 600
#define STEP_EMA 0.95

typedef struct {
    int n;
    double step[STEP_POINTS], loss[STEP_POINTS], smooth[STEP_POINTS];
} step_curve;

static int read_steps(const char *path, step_curve *sc, tr_error *err)
{
    memset(sc, 0, sizeof *sc);
    FILE *f = fopen(path, "r");
    if (!f)
        return tr_fail(err, TR_EINPUT, "%s: cannot open step log: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    double *loss = malloc(cap * sizeof *loss);
    char line[256];
    int lineno = 0, rc = 0;
    while (loss && fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1 && !strncmp(line, "step,", 5))
            continue;
        unsigned long long st, ep;
        double v;
        if (sscanf(line, "%llu,%llu,%lf", &st, &ep, &v) != 3) {
            rc = tr_fail(err, TR_EINPUT, "%s:%d: not a trainer step line", path, lineno);
            break;
        }
        if (n == cap) {
            double *grown = realloc(loss, 2 * cap * sizeof *loss);
            if (!grown) {
                free(loss);
                loss = NULL;
                break;
            }
            loss = grown;
            cap *= 2;
        }
        loss[n++] = v;
    }
    fclose(f);
    if (!loss)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    size_t per = n / STEP_POINTS + 1;
    /* Debiased as in Adam: the average starts at zero, and dividing by
     * 1 - EMA^t removes the pull towards that start. */
    double ema = 0, decay = 1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        ema = STEP_EMA * ema + (1 - STEP_EMA) * loss[i];
        decay *= STEP_EMA;
        size_t b = i / per;
        sc->loss[b] += loss[i];
        sc->smooth[b] = ema / (1 - decay);
        sc->step[b] = (double)(i + 1);
        if (i + 1 == n || (i + 1) % per == 0) {
            sc->loss[b] /= (double)(i - b * per + 1);
            sc->n = (int)b + 1;
        }
    }
    free(loss);
    return rc;
}

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

typedef struct {
    const char *name, *color;
    const double *y;
} series;

typedef struct {
    const char *title, *xlabel, *ylabel;
    const double *x;
    int n;
    const series *ss;
    int nseries;
    double ymin, ymax;
    int markers; /* a dot per point: for a few epochs, not for thousands of steps */
} chart;

/* A line chart with labelled axes, ticks and a legend, as standalone SVG. */
static int line_chart(const char *path, const chart *c, tr_error *err)
{
    const double *x = c->x;
    const series *ss = c->ss;
    const int n = c->n;
    double ymin = c->ymin, ymax = c->ymax;
    FILE *f = fopen(path, "w");
    if (!f)
        return tr_fail(err, TR_ERUNTIME, "%s: cannot create: %s", path, strerror(errno));
    const double W = 560, H = 340, L = 70, R = 20, T = 40, B = 50;
    double xmin = n ? x[0] : 0, xmax = n ? x[n - 1] : 1;
    if (xmax <= xmin)
        xmax = xmin + 1;
    if (ymax <= ymin)
        ymax = ymin + 1;
    /* Round the y range out to a 1-2-5 step, so the ticks read well. */
    double raw = (ymax - ymin) / 5, mag = pow(10, floor(log10(raw))), frac = raw / mag;
    double ystep = (frac <= 1 ? 1 : frac <= 2 ? 2 : frac <= 5 ? 5 : 10) * mag;
    ymin = floor(ymin / ystep + 1e-9) * ystep;
    ymax = ceil(ymax / ystep - 1e-9) * ystep;
    int nticks = (int)lround((ymax - ymin) / ystep);
#define PX(v) (L + ((v) - xmin) / (xmax - xmin) * (W - L - R))
#define PY(v) (H - B - ((v) - ymin) / (ymax - ymin) * (H - T - B))
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%.0f\" y=\"22\" "
               "text-anchor=\"middle\" font-size=\"15\">", W / 2);
    xml_text(f, c->title);
    fputs("</text>\n", f);
    for (int t = 0; t <= nticks; t++) {
        double v = ymin + ystep * t;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, PY(v), W - R, PY(v));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n", L - 6, PY(v) + 4, v);
    }
    int step = n > 10 ? (n + 9) / 10 : 1;
    for (int i = 0; i < n; i += step)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", PX(x[i]), H - B + 18, x[i]);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, H - B, W - R, H - B);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, T, L, H - B);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">", (L + W - R) / 2, H - 12);
    xml_text(f, c->xlabel);
    fprintf(f, "</text>\n<text transform=\"translate(18 %.0f) rotate(-90)\" text-anchor=\"middle\">",
            (T + H - B) / 2);
    xml_text(f, c->ylabel);
    fputs("</text>\n", f);
    for (int s = 0; s < c->nseries; s++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%d\" points=\"", ss[s].color,
                c->markers ? 2 : 1);
        for (int i = 0; i < n; i++)
            fprintf(f, "%.1f,%.1f ", PX(x[i]), PY(ss[s].y[i]));
        fputs("\"/>\n", f);
        for (int i = 0; c->markers && i < n; i++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", PX(x[i]), PY(ss[s].y[i]), ss[s].color);
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"3\" fill=\"%s\"/>"
                   "<text x=\"%.0f\" y=\"%.0f\">", W - R - 120, T + 8 + 16.0 * s, ss[s].color, W - R - 102, T + 13 + 16.0 * s);
        xml_text(f, ss[s].name);
        fputs("</text>\n", f);
    }
#undef PX
#undef PY
    fputs("</svg>\n", f);
    if (fclose(f) != 0)
        return tr_fail(err, TR_ERUNTIME, "%s: write failed", path);
    return 0;
}

static int step_chart(const step_curve *sc, const char *dir, tr_error *err)
{
    char path[CONFIG_PATH_MAX + 64];
    double hi = 0;
    for (int i = 0; i < sc->n; i++)
        hi = sc->loss[i] > hi ? sc->loss[i] : hi;
    series ss[2] = { { "per step", "#f2b8b8", sc->loss }, { "smoothed", "#d62728", sc->smooth } };
    snprintf(path, sizeof path, "%s/loss-steps.svg", dir);
    chart c = { "Training loss per step", "step", "cross-entropy", sc->step, sc->n, ss, 2, 0, hi, 0 };
    return line_chart(path, &c, err);
}

static int curves(const metrics *m, const char *dir, tr_error *err)
{
    char path[CONFIG_PATH_MAX + 64];
    double hi = 0;
    for (int i = 0; i < m->n; i++)
        hi = m->loss[i] > hi ? m->loss[i] : hi;
    series loss = { "train loss", "#d62728", m->loss };
    snprintf(path, sizeof path, "%s/loss.svg", dir);
    chart lc = { "Training loss per epoch", "epoch", "cross-entropy", m->epoch, m->n, &loss, 1, 0, hi, 1 };
    if (line_chart(path, &lc, err))
        return -1;
    static double tr[1024], va[1024], te[1024];
    double amin = 100;
    int has_val = 0;
    for (int i = 0; i < m->n; i++) {
        tr[i] = 100 * m->train[i];
        te[i] = 100 * m->test[i];
        va[i] = 100 * m->val[i];
        has_val |= m->val[i] >= 0;
        amin = tr[i] < amin ? tr[i] : amin;
        amin = te[i] < amin ? te[i] : amin;
        if (m->val[i] >= 0)
            amin = va[i] < amin ? va[i] : amin;
    }
    series acc[3] = { { "train", "#1f77b4", tr }, { "test", "#2ca02c", te }, { "validation", "#ff7f0e", va } };
    snprintf(path, sizeof path, "%s/accuracy.svg", dir);
    chart ac = { "Accuracy per epoch", "epoch", "accuracy (%)", m->epoch, m->n, acc, has_val ? 3 : 2, amin, 100, 1 };
    return line_chart(path, &ac, err);
}

/* ---- the page ---- */

static void html_head(FILE *f, const char *model)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>trainer report: ", f);
    xml_text(f, model);
    fputs("</title>\n<style>\n"
          "body{font-family:sans-serif;margin:2em auto;max-width:70em;color:#222}\n"
          "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}\n"
          "th{background:#f4f4f4}.cm td{width:3.2em}\n.grid{display:flex;flex-wrap:wrap;gap:10px}\n"
          ".grid figure{margin:0;text-align:center;font-size:12px}\nimg{image-rendering:pixelated}\n"
          "pre{background:#f8f8f8;padding:1em;font-size:12px;max-height:30em;overflow:auto}\n"
          "</style></head><body>\n",
          f);
}

int report_write(const report_options *o, tr_error *err)
{
    config cfg;
    network net;
    dataset test;
    memset(&test, 0, sizeof test);
    char mk[CONFIG_PATH_MAX + 8], path[CONFIG_PATH_MAX + 64];
    snprintf(mk, sizeof mk, "%s/x", o->out_dir);
    if (make_parent_dirs(mk, err) != 0)
        return -1;
    if (checkpoint_load(o->model, &cfg, &net, NULL, NULL, err) != 0)
        return -1;
    int rc = -1, nthreads = threads_resolve(o->nthreads);
    net_workspace *ws = NULL;
    eval_result res = { 0 };
    uint8_t *pred = NULL;
    float *conf = NULL;
    FILE *f = NULL;
    static metrics m;
    m.n = 0;
    for (int i = 0; i < o->nsets; i++)
        if (strncmp(o->sets[i], "data.", 5) != 0) {
            tr_fail(err, TR_EINPUT, "--set %s: only data.* keys apply to a trained model", o->sets[i]);
            goto out;
        } else if (config_set(&cfg, o->sets[i], err) != 0)
            goto out;
    static step_curve sc;
    sc.n = 0;
    if ((o->metrics && read_metrics(o->metrics, &m, err) != 0) || (o->steps && read_steps(o->steps, &sc, err) != 0))
        goto out;
    if (dataset_load(&test, cfg.test_images, cfg.test_labels, (unsigned)cfg.classes, (size_t)cfg.test_limit, err))
        goto out;
    if (test.rows != (uint32_t)cfg.input_size || test.cols != (uint32_t)cfg.input_size) {
        tr_fail(err, TR_EINPUT, "%s: images are %ux%u but the model takes %dx%d", cfg.test_images, test.rows,
                test.cols, cfg.input_size, cfg.input_size);
        goto out;
    }
    pred = tr_calloc(test.count, 1, err);
    conf = tr_calloc(test.count, sizeof(float), err);
    ws = pred && conf ? net_workspaces_create(&net, nthreads, err) : NULL;
    double t0 = timer_now();
    if (!ws || eval_dataset(&net, &test, 0, test.count, cfg.normalize, ws, nthreads, &res, pred, conf, err) != 0)
        goto out;
    double eval_secs = timer_now() - t0;

    /* images */
    for (int i = 0; i < net.nlayers; i++) {
        const net_layer *l = &net.layers[i];
        if (l->kind != LAYER_CONV)
            continue;
        snprintf(path, sizeof path, "kernels-%s.png", l->name);
        if (kernels_png(&net, l, o->out_dir, path, err) != 0)
            goto out;
    }
    size_t nfeat = test.count < FEATURE_IMAGES ? test.count : FEATURE_IMAGES;
    for (size_t s = 0; s < nfeat; s++) {
        snprintf(path, sizeof path, "input-%zu.png", s);
        if (digit_png(&test, s, 4, o->out_dir, path, err) != 0)
            goto out;
        data_sample(ws[0].acts[0], &test, s, cfg.normalize, 0, 0);
        net_forward(&net, &ws[0]);
        for (int i = 0; i < net.nlayers; i++) {
            const net_layer *l = &net.layers[i];
            if (l->kind != LAYER_CONV)
                continue;
            snprintf(path, sizeof path, "features-%s-%zu.png", l->name, s);
            int scale = l->out_h >= 16 ? 3 : 6;
            if (maps_png(ws[0].acts[i + 1], l->out_c, l->out_h, l->out_w, scale, o->out_dir, path, err) != 0)
                goto out;
        }
    }
    int nmis = 0;
    for (size_t s = 0; s < test.count && nmis < MAX_MISCLASSIFIED; s++) {
        if (pred[s] == test.labels[s])
            continue;
        snprintf(path, sizeof path, "wrong-%zu.png", s);
        if (digit_png(&test, s, 3, o->out_dir, path, err) != 0)
            goto out;
        nmis++;
    }
    if ((m.n && curves(&m, o->out_dir, err) != 0) || (sc.n && step_chart(&sc, o->out_dir, err) != 0))
        goto out;

    /* the page, written beside and renamed into place */
    char tmp[CONFIG_PATH_MAX + 64], final_path[CONFIG_PATH_MAX + 64];
    snprintf(final_path, sizeof final_path, "%s/report.html", o->out_dir);
    snprintf(tmp, sizeof tmp, "%s/report.html.tmp", o->out_dir);
    f = fopen(tmp, "w");
    if (!f) {
        tr_fail(err, TR_ERUNTIME, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    html_head(f, o->model);
    fputs("<h1>trainer report</h1>\n<h2>Summary</h2>\n<table>\n", f);
    fprintf(f, "<tr><th>model</th><td>");
    xml_text(f, o->model);
    fprintf(f, "</td></tr>\n<tr><th>test accuracy</th><td>%.2f%% (%zu/%zu)</td></tr>\n",
            100.0 * res.correct / res.total, res.correct, res.total);
    fprintf(f, "<tr><th>test set</th><td>");
    xml_text(f, cfg.test_images);
    fprintf(f, "</td></tr>\n<tr><th>mean test loss</th><td>%.4f</td></tr>\n", res.loss);
    fprintf(f, "<tr><th>parameters</th><td>%zu</td></tr>\n", net.nparams);
    if (m.n) {
        double secs = 0;
        for (int i = 0; i < m.n; i++)
            secs += m.secs[i];
        fprintf(f, "<tr><th>epochs</th><td>%d</td></tr>\n<tr><th>training time</th><td>%.1f s</td></tr>\n",
                m.n, secs);
        fprintf(f, "<tr><th>throughput (last epoch)</th><td>%.0f samples/s</td></tr>\n", m.rate[m.n - 1]);
    }
    fprintf(f, "<tr><th>evaluation</th><td>%.3f s on %d thread%s</td></tr>\n", eval_secs, nthreads,
            nthreads == 1 ? "" : "s");
    fprintf(f, "<tr><th>trainer version</th><td>%s</td></tr>\n</table>\n", TRAINER_VERSION);

    fputs("<h2>Architecture</h2>\n<table><tr><th>layer</th><th>type</th><th>output</th><th>activation</th>"
          "<th>parameters</th></tr>\n", f);
    fprintf(f, "<tr><td>input</td><td></td><td>1x%dx%d</td><td></td><td>0</td></tr>\n", cfg.input_size,
            cfg.input_size);
    for (int i = 0; i < net.nlayers; i++) {
        const net_layer *l = &net.layers[i];
        fputs("<tr><td>", f);
        xml_text(f, l->name);
        fprintf(f, "</td><td>%s", config_layer_kind_name(l->kind));
        if (l->kind != LAYER_DENSE)
            fprintf(f, " %dx%d", l->k, l->k);
        fprintf(f, "</td><td>%dx%dx%d</td><td>%s</td><td>%zu</td></tr>\n", l->out_c, l->out_h, l->out_w,
                l->kind == LAYER_MAXPOOL ? "" : config_activation_name(l->act), l->nweights + l->nbias);
    }
    fputs("</table>\n", f);

    if (m.n || sc.n)
        fputs("<h2>Training curves</h2>\n", f);
    if (sc.n)
        fprintf(f, "<img src=\"loss-steps.svg\" alt=\"training loss per step\">\n");
    if (m.n)
        fputs("<img src=\"loss.svg\" alt=\"training loss per epoch\">\n"
              "<img src=\"accuracy.svg\" alt=\"accuracy per epoch\">\n",
              f);

    fputs("<h2>Learned kernels</h2>\n<p>Blue is negative, white zero, red positive; one colour scale per "
          "layer. conv1: one kernel per filter; deeper layers: one row per filter, one column per input "
          "channel.</p>\n",
          f);
    for (int i = 0; i < net.nlayers; i++)
        if (net.layers[i].kind == LAYER_CONV) {
            fprintf(f, "<h3>%s</h3>\n<img src=\"kernels-%s.png\" alt=\"%s kernels\">\n", net.layers[i].name,
                    net.layers[i].name, net.layers[i].name);
        }

    fputs("<h2>Feature maps</h2>\n<p>The first test images and the ReLU outputs of each conv layer "
          "(dark = strong activation, each map on its own scale).</p>\n",
          f);
    for (size_t s = 0; s < nfeat; s++) {
        fprintf(f, "<div class=\"grid\"><figure><img src=\"input-%zu.png\" alt=\"test image %zu\">"
                   "<figcaption>test image %zu (label %d, predicted %d)</figcaption></figure>\n",
                s, s, s, test.labels[s], pred[s]);
        for (int i = 0; i < net.nlayers; i++)
            if (net.layers[i].kind == LAYER_CONV)
                fprintf(f, "<figure><img src=\"features-%s-%zu.png\" alt=\"%s feature maps\"><figcaption>%s"
                           "</figcaption></figure>\n",
                        net.layers[i].name, s, net.layers[i].name, net.layers[i].name);
        fputs("</div>\n", f);
    }

    int k = cfg.classes;
    uint64_t cmax = 1;
    for (int i = 0; i < k * k; i++)
        cmax = res.confusion[i] > cmax ? res.confusion[i] : cmax;
    fputs("<h2>Confusion matrix</h2>\n<p>Rows: true class; columns: predicted class; shade: log count.</p>\n"
          "<table class=\"cm\"><tr><th></th>",
          f);
    for (int c = 0; c < k; c++)
        fprintf(f, "<th>%d</th>", c);
    fputs("<th>recall</th></tr>\n", f);
    for (int r = 0; r < k; r++) {
        uint64_t actual = 0;
        for (int c = 0; c < k; c++)
            actual += res.confusion[(size_t)r * k + c];
        fprintf(f, "<tr><th>%d</th>", r);
        for (int c = 0; c < k; c++) {
            uint64_t v = res.confusion[(size_t)r * k + c];
            double t = v ? log1p((double)v) / log1p((double)cmax) : 0;
            int shade = (int)lrint(255 * (1 - 0.75 * t));
            fprintf(f, "<td style=\"background:rgb(%d,%d,255);color:%s\">%llu</td>", shade, shade,
                    t > 0.6 ? "white" : "black", (unsigned long long)v);
        }
        fprintf(f, "<td>%.2f%%</td></tr>\n",
                actual ? 100.0 * res.confusion[(size_t)r * k + r] / actual : 0.0);
    }
    fputs("<tr><th>precision</th>", f);
    for (int c = 0; c < k; c++) {
        uint64_t predicted = 0;
        for (int r = 0; r < k; r++)
            predicted += res.confusion[(size_t)r * k + c];
        fprintf(f, "<td>%.2f%%</td>", predicted ? 100.0 * res.confusion[(size_t)c * k + c] / predicted : 0.0);
    }
    fputs("<td></td></tr>\n</table>\n", f);

    fprintf(f, "<h2>Misclassified test images</h2>\n<p>The first %d of %zu, as 'true -> predicted (p)'.</p>\n"
               "<div class=\"grid\">\n",
            nmis, res.total - res.correct);
    nmis = 0;
    for (size_t s = 0; s < test.count && nmis < MAX_MISCLASSIFIED; s++) {
        if (pred[s] == test.labels[s])
            continue;
        fprintf(f, "<figure><img src=\"wrong-%zu.png\" alt=\"test image %zu\"><figcaption>#%zu: %d -&gt; %d "
                   "(%.2f)</figcaption></figure>\n",
                s, s, s, test.labels[s], pred[s], conf[s]);
        nmis++;
    }
    fputs("</div>\n<h2>Config</h2>\n<pre>", f);
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = open_memstream(&text, &text_len);
    if (mem) {
        config_write(&cfg, mem, 0);
        fclose(mem);
        xml_text(f, text ? text : "");
        free(text);
    }
    fputs("</pre>\n</body></html>\n", f);
    if (ferror(f) | fclose(f)) {
        f = NULL;
        tr_fail(err, TR_ERUNTIME, "%s: write failed", tmp);
        goto out;
    }
    f = NULL;
    if (rename(tmp, final_path) != 0) {
        tr_fail(err, TR_ERUNTIME, "%s: cannot rename into place: %s", final_path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (f)
        fclose(f);
    eval_result_free(&res);
    net_workspaces_free(ws, nthreads);
    free(pred);
    free(conf);
    dataset_free(&test);
    net_free(&net);
    return rc;
}
