#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "config.h"
#include "data.h"
#include "eval.h"
#include "files.h"
#include "idx.h"
#include "network.h"
#include "report_img.h"
#include "runlog.h"
#include "session.h"
#include "svg.h"
#include "timer.h"
#include "train.h"
#include "version.h"

#define FEATURE_IMAGES 3
#define MAX_MISCLASSIFIED 40
#define PATH_LEN (CONFIG_PATH_MAX + 64)

/* ---- gathering ---- */

typedef struct {
    const char *model;
    char metrics_path[PATH_LEN], steps_path[PATH_LEN];
    model_session s; /* the model and its test set */
    metrics m;
    step_log steps;
    eval_result res;
    uint8_t *pred;
    float *conf;
    double eval_secs;
    int model_epoch; /* the metrics row the model file holds (1-based), 0 if unknown */
    const char *tie; /* how the metrics were checked against the model, for the summary */
    struct stat st;
} run_data;

typedef struct {
    const report_options *o;
    run_data runs[REPORT_MAX_RUNS];
    int nruns, nthreads;
    net_workspace *ws;
    report_result *out;
    time_t now;
} report_ctx;

static void warn(report_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(report_ctx *c, const char *fmt, ...)
{
    if (c->out->nwarnings == REPORT_MAX_WARNINGS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->out->warnings[c->out->nwarnings++], sizeof c->out->warnings[0], fmt, ap);
    va_end(ap);
}

void report_find_metrics(const char *model, char *out, size_t size)
{
    char stem[PATH_LEN];
    snprintf(stem, sizeof stem, "%s", model);
    const char *suffixes[] = { ".ckpt", ".model" };
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(stem), k = strlen(suffixes[i]);
        if (n > k && !strcmp(stem + n - k, suffixes[i]))
            stem[n - k] = '\0';
    }
    const char *tries[] = { ".metrics.csv", ".csv" };
    for (int i = 0; i < 2; i++) {
        if ((size_t)snprintf(out, size, "%s%s", stem, tries[i]) < size && access(out, R_OK) == 0)
            return;
    }
    out[0] = '\0';
}

/* Ties the metrics to the model: the model file does not name its run, so
 * the check is what the run recorded against what the model does now: the
 * number of epochs, and the test accuracy of the epoch the file keeps,
 * which the report has just measured on the same test set. */
static void check_tie(report_ctx *c, run_data *r, int data_overridden)
{
    const metrics *m = &r->m;
    if (!m->n)
        return;
    int row = metrics_model_row(m), last = (int)m->col[M_EPOCH][m->n - 1], nwarn = c->out->nwarnings;
    r->model_epoch = (int)m->col[M_EPOCH][row];
    if (c->o->live_epoch == 0 && last != r->s.cfg.epochs)
        warn(c, "%s ends at epoch %d, but %s was configured for %d epochs: another run's metrics, or a run "
                "that stopped early",
             r->metrics_path, last, r->model, r->s.cfg.epochs);
    double measured = (double)r->res.correct / (double)r->res.total, recorded = m->col[M_TEST_ACC][row];
    const int untested = recorded < 0; /* train.test_every skipped that epoch */
    if (!data_overridden && !untested && fabs(measured - recorded) > 1.5e-6)
        warn(c, "%s does not belong to %s: the model scores %.2f%% on its test set, but the metrics record "
                "%.2f%% for epoch %d, the epoch the model file keeps",
             r->metrics_path, r->model, 100 * measured, 100 * recorded, r->model_epoch);
    r->tie = c->out->nwarnings > nwarn ? "they disagree: see the warning above"
             : data_overridden         ? "epochs agree; test accuracy not compared, since --set changed the test set"
             : untested                ? "epochs agree; test accuracy not compared, since the run did not test "
                                         "the epoch the model keeps (train.test_every)"
             : c->o->live_epoch        ? "test accuracy agrees with the model (epochs: the run is still going)"
                                       : "epochs and test accuracy agree with the model";
}

/* Points the test-set error at the way out when the model's own relative
 * paths do not resolve from here. */
static const char test_set_hint[] = " (the test set named in the model's config; give it with "
                                    "--set data.test_images=PATH --set data.test_labels=PATH)";

static int gather_run(report_ctx *c, run_data *r, const char *model, const char *metrics_opt,
                      const char *steps_opt, tr_error *err)
{
    r->model = model;
    if (stat(model, &r->st) != 0)
        return tr_fail(err, TR_EINPUT, "%s: cannot open: %s", model, strerror(errno));
    if (session_open(&r->s, model, c->o->sets, c->o->nsets, NULL, err) != 0)
        return -1;
    if (metrics_opt)
        snprintf(r->metrics_path, sizeof r->metrics_path, "%s", metrics_opt);
    else
        report_find_metrics(model, r->metrics_path, sizeof r->metrics_path);
    if (steps_opt) {
        snprintf(r->steps_path, sizeof r->steps_path, "%s", steps_opt);
    } else {
        runlog_steps_path(r->metrics_path, r->steps_path, sizeof r->steps_path);
        if (r->steps_path[0] && access(r->steps_path, R_OK) != 0)
            r->steps_path[0] = '\0';
    }
    if ((r->metrics_path[0] && read_metrics(r->metrics_path, &r->m, err) != 0) ||
        (r->steps_path[0] && read_steps(r->steps_path, &r->steps, err) != 0))
        return -1;
    if (session_load_test(&r->s, test_set_hint, err) != 0)
        return -1;
    if (r->s.test.count == 0)
        return tr_fail(err, TR_EINPUT, "%s: no test images", r->s.cfg.test_images);
    r->pred = tr_calloc(r->s.test.count, 1, err);
    r->conf = tr_calloc(r->s.test.count, sizeof(float), err);
    net_workspace *ws = r->pred && r->conf ? net_workspaces_create(&r->s.net, c->nthreads, err) : NULL;
    if (!ws)
        return -1;
    double t0 = timer_now();
    int rc = eval_dataset(&r->s.net, &r->s.test, 0, r->s.test.count, r->s.cfg.normalize, ws, c->nthreads, &r->res,
                          r->pred, r->conf, err);
    r->eval_secs = timer_now() - t0;
    if (r == &c->runs[0] && rc == 0)
        c->ws = ws; /* kept for the feature maps */
    else
        net_workspaces_free(ws, c->nthreads);
    if (rc == 0)
        check_tie(c, r, c->o->nsets > 0);
    return rc;
}

static void run_free(run_data *r, net_workspace *ws, int nthreads)
{
    net_workspaces_free(ws, nthreads);
    eval_result_free(&r->res);
    free(r->pred);
    free(r->conf);
    session_close(&r->s);
    metrics_free(&r->m);
    steps_free(&r->steps);
}

/* ---- pictures and charts ---- */

static const char *const palette[REPORT_MAX_RUNS] = { "#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                                      "#ff7f0e", "#8c564b", "#e377c2", "#17becf" };

static int out_path(const report_ctx *c, char *path, const char *name, tr_error *err)
{
    if (snprintf(path, PATH_LEN, "%s/%s", c->o->out_dir, name) >= PATH_LEN)
        return tr_fail(err, TR_EINPUT, "%s: report directory path too long", c->o->out_dir);
    return 0;
}

/* Every file is written as NAME.tmp and renamed into place, so a browser
 * reloading a live report never reads half a picture. */
static int tmp_path(const report_ctx *c, char *path, const char *name, tr_error *err)
{
    if (snprintf(path, PATH_LEN, "%s/%s.tmp", c->o->out_dir, name) >= PATH_LEN)
        return tr_fail(err, TR_EINPUT, "%s: report directory path too long", c->o->out_dir);
    return 0;
}

static int publish(const report_ctx *c, const char *name, tr_error *err)
{
    char tmp[PATH_LEN], final_path[PATH_LEN];
    if (tmp_path(c, tmp, name, err) || out_path(c, final_path, name, err))
        return -1;
    return files_publish(tmp, final_path, err);
}

static int images(report_ctx *c, kernel_sheet *sheets, int *nmis, tr_error *err)
{
    run_data *r = &c->runs[0];
    char name[PATH_LEN], path[PATH_LEN];
    for (int i = 0; i < r->s.net.nlayers; i++) {
        const net_layer *l = &r->s.net.layers[i];
        snprintf(name, sizeof name, "kernels-%s.png", l->name);
        if (l->kind == LAYER_CONV &&
            (tmp_path(c, path, name, err) || report_kernels_png(&r->s.net, l, path, &sheets[i], err) ||
             publish(c, name, err)))
            return -1;
    }
    size_t nfeat = r->s.test.count < FEATURE_IMAGES ? r->s.test.count : FEATURE_IMAGES;
    for (size_t s = 0; s < nfeat; s++) {
        snprintf(name, sizeof name, "input-%zu.png", s);
        if (tmp_path(c, path, name, err) || report_digit_png(&r->s.test, s, 4, path, err) || publish(c, name, err))
            return -1;
        data_sample(c->ws[0].acts[0], &r->s.test, s, r->s.cfg.normalize, 0, 0);
        net_forward(&r->s.net, &c->ws[0]);
        for (int i = 0; i < r->s.net.nlayers; i++) {
            const net_layer *l = &r->s.net.layers[i];
            snprintf(name, sizeof name, "features-%s-%zu.png", l->name, s);
            if (l->kind == LAYER_CONV &&
                (tmp_path(c, path, name, err) ||
                 report_maps_png(c->ws[0].acts[i + 1], l->out_c, l->out_h, l->out_w, l->out_h >= 16 ? 3 : 6, path,
                                 err) ||
                 publish(c, name, err)))
                return -1;
        }
    }
    *nmis = 0;
    for (size_t s = 0; s < r->s.test.count && *nmis < MAX_MISCLASSIFIED; s++) {
        if (r->pred[s] == r->s.test.labels[s])
            continue;
        snprintf(name, sizeof name, "wrong-%zu.png", s);
        if (tmp_path(c, path, name, err) || report_digit_png(&r->s.test, s, 3, path, err) || publish(c, name, err))
            return -1;
        (*nmis)++;
    }
    return 0;
}

/* A metric of every run as one chart: with one run, the given series of
 * it; with several, one colour per run and the series told apart by dashes. */
static int epoch_chart(report_ctx *c, const char *file, const char *title, const char *ylabel, const int *cols,
                       const char *const *names, int ncols, double scale, int logy, tr_error *err)
{
    static const char *const single[] = { "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e" };
    svg_series ss[REPORT_MAX_RUNS * 4];
    double *ys[REPORT_MAX_RUNS * 4];
    char labels[REPORT_MAX_RUNS * 4][96];
    int n = 0, rc = 0;
    for (int ri = 0; ri < c->nruns; ri++) {
        const metrics *m = &c->runs[ri].m;
        for (int k = 0; k < ncols && m->n; k++) {
            int any = 0; /* -1 marks an epoch without that figure (no such set, or not tested) */
            for (int i = 0; i < m->n && !any; i++)
                any = m->col[cols[k]][i] >= 0;
            if (!m->has[cols[k]] || !any)
                continue; /* no such set in this run */
            ys[n] = malloc((size_t)m->n * sizeof(double));
            if (!ys[n]) {
                rc = tr_fail(err, TR_ERUNTIME, "out of memory");
                break;
            }
            for (int i = 0; i < m->n; i++)
                ys[n][i] = m->col[cols[k]][i] >= 0 ? scale * m->col[cols[k]][i] : NAN; /* a gap */
            if (c->nruns == 1)
                snprintf(labels[n], sizeof labels[n], "%s", names[k]);
            else
                snprintf(labels[n], sizeof labels[n], "run %d %s", ri + 1, names[k]);
            ss[n] = (svg_series){ labels[n], c->nruns == 1 ? single[k] : palette[ri], m->col[M_EPOCH], ys[n],
                                  m->n, m->n <= 60, 0, c->nruns > 1 && k > 0 };
            n++;
        }
    }
    char path[PATH_LEN];
    if (rc == 0 && n && tmp_path(c, path, file, err) == 0) {
        svg_chart ch = { title, "epoch", ylabel, ss, n, logy, 0, 0, 0, 0 };
        if (scale == 100) /* accuracy: up to 100% */
            ch.fix_ymax = 1, ch.ymax = 100;
        rc = svg_chart_write(path, &ch, err) || publish(c, file, err) ? -1 : 0;
    } else if (rc == 0 && n) {
        rc = -1;
    }
    for (int i = 0; i < n; i++)
        free(ys[i]);
    return rc;
}

/* Per-step values averaged into at most STEP_POINTS bins, so a long run's
 * chart stays small; the smoothed curve is an exponential moving average,
 * debiased as in Adam (dividing by 1 - EMA^t removes the pull of its zero
 * start), as TensorBoard draws it. */
#define STEP_POINTS 600
#define STEP_EMA 0.95

typedef struct {
    int n;
    size_t per; /* steps per bin */
    double x[STEP_POINTS], mean[STEP_POINTS], smooth[STEP_POINTS], lr[STEP_POINTS];
} step_bins;

static void bin_steps(const step_log *s, step_bins *b)
{
    memset(b, 0, sizeof *b);
    b->per = s->n / STEP_POINTS + 1;
    double ema = 0, decay = 1;
    for (size_t i = 0; i < s->n; i++) {
        ema = STEP_EMA * ema + (1 - STEP_EMA) * s->loss[i];
        decay *= STEP_EMA;
        size_t k = i / b->per;
        b->mean[k] += s->loss[i];
        b->smooth[k] = ema / (1 - decay);
        b->x[k] = s->step[i];
        b->lr[k] = s->lr[i];
        if (i + 1 == s->n || (i + 1) % b->per == 0) {
            b->mean[k] /= (double)(i - k * b->per + 1);
            b->n = (int)k + 1;
        }
    }
}

static int step_charts(report_ctx *c, int *has_lr, tr_error *err)
{
    const step_log *s = &c->runs[0].steps;
    static step_bins b;
    bin_steps(s, &b);
    char raw[64], path[PATH_LEN];
    if (b.per == 1)
        snprintf(raw, sizeof raw, "each step");
    else
        snprintf(raw, sizeof raw, "mean of each %zu steps", b.per);
    svg_series ss[2] = { { raw, "#d62728", b.x, b.mean, b.n, 0, 1, 0 },
                         { "smoothed (EMA 0.95, debiased)", "#d62728", b.x, b.smooth, b.n, 0, 0, 0 } };
    svg_chart ch = { c->nruns > 1 ? "Training loss per step (run 1)" : "Training loss per step", "step",
                     "cross-entropy", ss, 2, 1, 0, 0, 0, 0 };
    if (tmp_path(c, path, "loss-steps.svg", err) || svg_chart_write(path, &ch, err) ||
        publish(c, "loss-steps.svg", err))
        return -1;
    *has_lr = s->has_lr;
    if (!s->has_lr)
        return 0;
    svg_series lr = { "learning rate", "#9467bd", b.x, b.lr, b.n, 0, 0, 0 };
    svg_chart lc = { c->nruns > 1 ? "Learning rate per step (run 1)" : "Learning rate per step", "step",
                     "learning rate", &lr, 1, 0, 1, 0, 0, 0 };
    return tmp_path(c, path, "lr-steps.svg", err) || svg_chart_write(path, &lc, err) ||
                   publish(c, "lr-steps.svg", err)
               ? -1
               : 0;
}

/* ---- the page: one function per section ---- */

#define esc svg_escape

/* The shortest decimal that reads back as the same double: 0.05, not
 * 0.050000000000000003. */
static void shortest(double v, char *buf, size_t size)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void utc_time(time_t t, char *buf, size_t size)
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(buf, size, "?");
}

static void page_head(FILE *f, const report_ctx *c)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
          f);
    if (c->o->live_epoch > 0)
        fputs("<meta http-equiv=\"refresh\" content=\"10\">\n", f);
    fputs("<title>trainer report: ", f);
    esc(f, c->runs[0].model);
    fputs("</title>\n<style>\n"
          ":root{color-scheme:light dark}\n"
          "body{font-family:sans-serif;margin:1em auto;padding:0 1em;max-width:70em;color:#222;background:#fff}\n"
          "img,svg.sheet{max-width:100%;height:auto}\nimg{image-rendering:pixelated}\n"
          ".scroll{overflow-x:auto;max-width:100%}\n"
          "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;"
          "text-align:right}\nth{background:#f4f4f4}\n.summary td{text-align:left;overflow-wrap:anywhere}\n"
          ".cm td{min-width:2.6em}\n.charts{display:flex;flex-wrap:wrap;gap:10px}\n.charts img{flex:1 1 400px;max-width:560px;min-width:0}\n"
          ".grid{display:flex;flex-wrap:wrap;gap:10px}\n.grid figure{margin:0;text-align:center;font-size:12px}\n"
          ".sample{margin:0 0 1em;border-top:1px solid #ccc}\n.sample h3{font-size:1em;margin:0.4em 0}\n"
          ".maps{display:flex;gap:10px;align-items:flex-start}\n"
          ".maps figure{margin:0;min-width:0;flex:0 1 auto;font-size:12px;text-align:center}\n"
          ".kernels{margin:0 0 1em}\n.kernels text{font-size:11px;fill:currentColor}\n"
          ".warn{border:2px solid #c00;background:#fee;color:#600;padding:0.5em 1em;font-weight:bold}\n"
          ".live{border:2px solid #06c;background:#eef5ff;color:#024;padding:0.5em 1em}\n"
          "pre{background:#f8f8f8;padding:1em;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere}\n"
          "@media (max-width:700px){body{padding:0 0.5em}table{font-size:13px}td,th{padding:2px 4px}.maps{flex-wrap:wrap}.cm{font-size:10px}"
          ".cm td,.cm th{padding:1px 2px;min-width:0}}\n"
          "@media (prefers-color-scheme:dark){body{background:#1d1f21;color:#ddd}th{background:#2a2d30}"
          "td,th{border-color:#555}pre{background:#25282b}.warn{background:#401;color:#fcc}"
          ".live{background:#123;color:#cdf}.sample{border-color:#555}}\n"
          "@media print{body{max-width:none;margin:0;color:#000;background:#fff}.scroll{overflow:visible}"
          "table,figure,.sample,.kernels,.charts img,pre{break-inside:avoid}h2,h3,h2+p,h3+p{break-after:avoid}"
          ".live{display:none}}\n"
          "</style></head><body>\n<h1>trainer report</h1>\n",
          f);
}

static void section_banners(FILE *f, const report_ctx *c)
{
    if (c->o->live_epoch > 0)
        fprintf(f, "<p class=\"live\">Training in progress: epoch %d of %d done. This page reloads every 10 s "
                   "until the run ends.</p>\n",
                c->o->live_epoch, c->runs[0].s.cfg.epochs);
    for (int i = 0; i < c->out->nwarnings; i++) {
        fputs("<p class=\"warn\" role=\"alert\">Warning: ", f);
        esc(f, c->out->warnings[i]);
        fputs("</p>\n", f);
    }
}

static void row_text(FILE *f, const char *name, const char *value)
{
    fprintf(f, "<tr><th>%s</th><td>", name);
    esc(f, value);
    fputs("</td></tr>\n", f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summary_training(FILE *f, const run_data *r)
{
    const metrics *m = &r->m;
    double secs = 0, rates[4096];
    int nr = 0;
    for (int i = 0; i < m->n; i++) {
        secs += m->col[M_SECS][i];
        if (nr < 4096 && m->col[M_RATE][i] > 0)
            rates[nr++] = m->col[M_RATE][i];
    }
    qsort(rates, (size_t)nr, sizeof rates[0], cmp_double);
    fprintf(f, "<tr><th>epochs</th><td>%d</td></tr>\n<tr><th>training time</th><td>%.1f s</td></tr>\n",
            (int)m->col[M_EPOCH][m->n - 1], secs);
    if (nr)
        fprintf(f, "<tr><th>throughput</th><td>%.0f samples/s median over %d epochs (%.0f to %.0f)</td></tr>\n",
                nr % 2 ? rates[nr / 2] : (rates[nr / 2 - 1] + rates[nr / 2]) / 2, nr, rates[0], rates[nr - 1]);
    int row = metrics_model_row(m);
    int has_val = m->has[M_VAL_ACC] && m->col[M_VAL_ACC][0] >= 0;
    char then[48] = "test set not evaluated then"; /* train.test_every */
    if (m->col[M_TEST_ACC][row] >= 0)
        snprintf(then, sizeof then, "test accuracy then %.2f%%", 100 * m->col[M_TEST_ACC][row]);
    fprintf(f, "<tr><th>model's epoch</th><td>%d (%s; %s)</td></tr>\n", (int)m->col[M_EPOCH][row],
            has_val ? "best validation accuracy" : "the last", then);
    int best = 0, tested = 0;
    for (int i = 0; i < m->n; i++) {
        tested += m->col[M_TEST_ACC][i] >= 0;
        if (m->col[M_TEST_ACC][i] > m->col[M_TEST_ACC][best])
            best = i;
    }
    const char *of = tested == m->n ? "" : tested == 1 ? "; the only epoch tested" : "; of the epochs tested";
    if (tested)
        fprintf(f, "<tr><th>best test epoch</th><td>%d (%.2f%%%s)</td></tr>\n", (int)m->col[M_EPOCH][best],
                100 * m->col[M_TEST_ACC][best], of);
}

static void section_summary(FILE *f, const report_ctx *c)
{
    const run_data *r = &c->runs[0];
    char buf[256];
    fputs("<h2>Summary</h2>\n<div class=\"scroll\"><table class=\"summary\">\n", f);
    row_text(f, "model", r->model);
    utc_time(r->st.st_mtime, buf, sizeof buf);
    row_text(f, "model written", buf);
    fprintf(f, "<tr><th>test accuracy</th><td>%.2f%% (%zu/%zu)</td></tr>\n", 100.0 * r->res.correct / r->res.total,
            r->res.correct, r->res.total);
    row_text(f, "test set", r->s.cfg.test_images);
    fprintf(f, "<tr><th>mean test loss</th><td>%.4f</td></tr>\n", r->res.loss);
    fprintf(f, "<tr><th>parameters</th><td>%zu</td></tr>\n", r->s.net.nparams);
    if (r->m.n) {
        row_text(f, "metrics", r->metrics_path);
        row_text(f, "metrics check", r->tie ? r->tie : "");
        summary_training(f, r);
    } else if (r->metrics_path[0]) {
        row_text(f, "metrics", r->metrics_path);
        row_text(f, "metrics check", "no epoch recorded yet");
    } else {
        row_text(f, "metrics", "none found (no curves): name them with --metrics CSV");
    }
    if (c->o->train_threads > 0)
        fprintf(f, "<tr><th>training threads</th><td>%d</td></tr>\n", c->o->train_threads);
    fprintf(f, "<tr><th>evaluation</th><td>%.3f s on %d thread%s</td></tr>\n", r->eval_secs, c->nthreads,
            c->nthreads == 1 ? "" : "s");
    if (gethostname(buf, sizeof buf) == 0) {
        buf[sizeof buf - 1] = '\0';
        row_text(f, "host", buf);
    }
    if (c->o->command)
        row_text(f, "command", c->o->command);
    utc_time(c->now, buf, sizeof buf);
    row_text(f, "report written", buf);
    row_text(f, "trainer version", TRAINER_VERSION);
    fputs("</table></div>\n", f);
}

static void section_architecture(FILE *f, const report_ctx *c)
{
    const run_data *r = &c->runs[0];
    fputs("<h2>Architecture</h2>\n<div class=\"scroll\"><table><tr><th>layer</th><th>type</th><th>output</th>"
          "<th>activation</th><th>parameters</th></tr>\n",
          f);
    fprintf(f, "<tr><td>input</td><td></td><td>1x%dx%d</td><td></td><td>0</td></tr>\n", r->s.cfg.input_size,
            r->s.cfg.input_size);
    for (int i = 0; i < r->s.net.nlayers; i++) {
        const net_layer *l = &r->s.net.layers[i];
        fputs("<tr><td>", f);
        esc(f, l->name);
        fprintf(f, "</td><td>%s", config_layer_kind_name(l->kind));
        if (l->kind != LAYER_DENSE)
            fprintf(f, " %dx%d", l->k, l->k);
        fprintf(f, "</td><td>%dx%dx%d</td><td>%s</td><td>%zu</td></tr>\n", l->out_c, l->out_h, l->out_w,
                l->kind == LAYER_MAXPOOL ? "" : config_activation_name(l->act), l->nweights + l->nbias);
    }
    fputs("</table></div>\n", f);
}

static void section_curves(FILE *f, const report_ctx *c, int has_steps, int has_lr)
{
    int any_metrics = 0, any_loss = 0;
    for (int i = 0; i < c->nruns; i++) {
        any_metrics |= c->runs[i].m.n > 0;
        any_loss |= c->runs[i].m.has[M_TEST_LOSS];
    }
    if (!any_metrics && !has_steps)
        return;
    fputs("<h2>Training curves</h2>\n<div class=\"charts\">\n", f);
    if (has_steps)
        fputs("<img src=\"loss-steps.svg\" alt=\"training loss per step, log scale, raw and smoothed\">\n", f);
    if (has_lr)
        fputs("<img src=\"lr-steps.svg\" alt=\"learning rate per step\">\n", f);
    if (any_metrics)
        fprintf(f, "<img src=\"loss.svg\" alt=\"%s per epoch\">\n<img src=\"accuracy.svg\" alt=\"train, "
                   "validation and test accuracy per epoch\">\n",
                any_loss ? "training and test loss" : "training loss");
    fputs("</div>\n", f);
}

/* Kernels as an inline SVG around the PNG: filter indices beside the rows,
 * input channels above the columns, and a colour bar with the value range. */
static void kernel_sheet_svg(FILE *f, const net_layer *l, const kernel_sheet *ks)
{
    const int left = 34, top = 18, bar = 28, one_row = l->in_c == 1;
    const int vw = left + ks->w + 6, vh = top + ks->h + (one_row ? 16 : 0) + bar + 20;
    fprintf(f, "<figure class=\"kernels\"><svg class=\"sheet\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "role=\"img\" aria-label=\"%s kernels: %d filters x %d input channels\">\n",
            vw, vh, vw, vh, l->name, l->out_c, l->in_c);
    fprintf(f, "<image href=\"kernels-%s.png\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
               "style=\"image-rendering:pixelated\"/>\n",
            l->name, left, top, ks->w, ks->h);
    double mid = (ks->cell - ks->gap) / 2.0;
    for (int col = 0; col < ks->cols; col++)
        fprintf(f, "<text x=\"%.0f\" y=\"%d\" text-anchor=\"middle\">%s%d</text>\n",
                left + ks->pad + col * ks->cell + mid, one_row ? top + ks->h + 13 : top - 5, one_row ? "f" : "in",
                col);
    for (int row = 0; !one_row && row < ks->rows; row++)
        fprintf(f, "<text x=\"%d\" y=\"%.0f\" text-anchor=\"end\">f%d</text>\n", left - 4,
                top + ks->pad + row * ks->cell + mid + 4, row);
    int by = vh - bar - 6, bw = ks->w < 300 ? ks->w : 300;
    fprintf(f, "<defs><linearGradient id=\"cbar-%s\"><stop offset=\"0\" stop-color=\"rgb(0,0,255)\"/>"
               "<stop offset=\"0.5\" stop-color=\"#fff\"/><stop offset=\"1\" stop-color=\"rgb(255,0,0)\"/>"
               "</linearGradient></defs>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"10\" fill=\"url(#cbar-%s)\" "
               "stroke=\"#888\"/>\n",
            l->name, left, by, bw, l->name);
    fprintf(f, "<text class=\"cbar-lo\" x=\"%d\" y=\"%d\">%.3g</text><text x=\"%.0f\" y=\"%d\" "
               "text-anchor=\"middle\">0</text><text class=\"cbar-hi\" x=\"%d\" y=\"%d\" text-anchor=\"end\">+%.3g"
               "</text>\n</svg></figure>\n",
            left, by + 24, -ks->vmax, left + bw / 2.0, by + 24, left + bw, by + 24, ks->vmax);
}

static void section_kernels(FILE *f, const report_ctx *c, const kernel_sheet *sheets)
{
    const network *net = &c->runs[0].s.net;
    fputs("<h2>Learned kernels</h2>\n<p>Blue is negative, white zero, red positive, on one colour scale per layer "
          "(the bar gives its range); grey separates the kernels. A layer with one input channel shows one kernel "
          "per filter (f0, f1, ...); deeper layers one row per filter and one column per input channel (in0, "
          "in1, ...).</p>\n",
          f);
    for (int i = 0; i < net->nlayers; i++)
        if (net->layers[i].kind == LAYER_CONV) {
            fputs("<h3>", f);
            esc(f, net->layers[i].name);
            fputs("</h3>\n", f);
            kernel_sheet_svg(f, &net->layers[i], &sheets[i]);
        }
}

static void section_features(FILE *f, const report_ctx *c)
{
    const run_data *r = &c->runs[0];
    size_t nfeat = r->s.test.count < FEATURE_IMAGES ? r->s.test.count : FEATURE_IMAGES;
    fputs("<h2>Feature maps</h2>\n<p>The first test images and the ReLU outputs of each conv layer "
          "(dark = strong activation, each map on its own scale).</p>\n",
          f);
    for (size_t s = 0; s < nfeat; s++) {
        fprintf(f, "<section class=\"sample\"><h3>Test image %zu: label %d, predicted %d (p = %.2f)</h3>\n"
                   "<div class=\"maps\"><figure><img src=\"input-%zu.png\" alt=\"test image %zu\">"
                   "<figcaption>input</figcaption></figure>\n",
                s, r->s.test.labels[s], r->pred[s], r->conf[s], s, s);
        for (int i = 0; i < r->s.net.nlayers; i++) {
            const net_layer *l = &r->s.net.layers[i];
            if (l->kind != LAYER_CONV)
                continue;
            fprintf(f, "<figure><img src=\"features-%s-%zu.png\" alt=\"%s feature maps of test image %zu\">"
                       "<figcaption>%s: %d maps</figcaption></figure>\n",
                    l->name, s, l->name, s, l->name, l->out_c);
        }
        fputs("</div></section>\n", f);
    }
}

static void section_confusion(FILE *f, const report_ctx *c)
{
    const run_data *r = &c->runs[0];
    const uint64_t *cm = r->res.confusion;
    int k = r->s.cfg.classes;
    uint64_t cmax = 1;
    for (int i = 0; i < k * k; i++)
        cmax = cm[i] > cmax ? cm[i] : cmax;
    fputs("<h2>Confusion matrix</h2>\n<p>Rows: true class; columns: predicted class; shade: log count. Recall and precision in percent.</p>\n"
          "<div class=\"scroll\"><table class=\"cm\"><tr><th></th>",
          f);
    for (int j = 0; j < k; j++)
        fprintf(f, "<th>%d</th>", j);
    fputs("<th>recall %</th></tr>\n", f);
    for (int i = 0; i < k; i++) {
        uint64_t actual = 0;
        for (int j = 0; j < k; j++)
            actual += cm[(size_t)i * k + j];
        fprintf(f, "<tr><th>%d</th>", i);
        for (int j = 0; j < k; j++) {
            uint64_t v = cm[(size_t)i * k + j];
            double t = v ? log1p((double)v) / log1p((double)cmax) : 0;
            int shade = (int)lrint(255 * (1 - 0.75 * t));
            fprintf(f, "<td style=\"background:rgb(%d,%d,255);color:%s\">%llu</td>", shade, shade,
                    t > 0.6 ? "white" : "black", (unsigned long long)v);
        }
        fprintf(f, "<td>%.1f</td></tr>\n", actual ? 100.0 * cm[(size_t)i * k + i] / actual : 0.0);
    }
    fputs("<tr><th>precision %</th>", f);
    for (int j = 0; j < k; j++) {
        uint64_t predicted = 0;
        for (int i = 0; i < k; i++)
            predicted += cm[(size_t)i * k + j];
        fprintf(f, "<td>%.1f</td>", predicted ? 100.0 * cm[(size_t)j * k + j] / predicted : 0.0);
    }
    fputs("<td></td></tr>\n</table></div>\n", f);
}

static void section_misclassified(FILE *f, const report_ctx *c, int nmis)
{
    const run_data *r = &c->runs[0];
    fprintf(f, "<h2>Misclassified test images</h2>\n<p>The first %d of %zu, as 'true -&gt; predicted (p)'.</p>\n"
               "<div class=\"grid\">\n",
            nmis, r->res.total - r->res.correct);
    int shown = 0;
    for (size_t s = 0; s < r->s.test.count && shown < nmis; s++) {
        if (r->pred[s] == r->s.test.labels[s])
            continue;
        fprintf(f, "<figure><img src=\"wrong-%zu.png\" alt=\"test image %zu\"><figcaption>#%zu: %d -&gt; %d "
                   "(%.2f)</figcaption></figure>\n",
                s, s, s, r->s.test.labels[s], r->pred[s], r->conf[s]);
        shown++;
    }
    fputs("</div>\n", f);
}

/* The config as config_write puts it, with each number in its shortest
 * exact form. Returns malloc'd text, or NULL when out of memory. */
static char *config_text(const config *cfg)
{
    char *raw = NULL, *text = NULL;
    size_t raw_len = 0, text_len = 0;
    FILE *mem = open_memstream(&raw, &raw_len);
    if (!mem)
        return NULL;
    config_write(cfg, mem, 0);
    if (fclose(mem) != 0 || !raw)
        return NULL;
    FILE *out = open_memstream(&text, &text_len);
    if (!out) {
        free(raw);
        return NULL;
    }
    for (char *line = strtok(raw, "\n"); line; line = strtok(NULL, "\n")) {
        char *eq = strstr(line, " = "), *end;
        double v = eq ? strtod(eq + 3, &end) : 0;
        char num[32];
        if (eq && end != eq + 3 && !*end && strchr(eq + 3, '.')) {
            shortest(v, num, sizeof num);
            fprintf(out, "%.*s = %s\n", (int)(eq - line), line, num);
        } else {
            fprintf(out, "%s\n", line);
        }
    }
    free(raw);
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void section_config(FILE *f, const report_ctx *c)
{
    char *text = config_text(&c->runs[0].s.cfg);
    fputs("<h2>Config</h2>\n<pre>", f);
    esc(f, text ? text : "(out of memory)");
    fputs("</pre>\n", f);
    free(text);
}

/* Several runs: one row each, with the final figures and every config line
 * whose value is not the same in all of them. */
static void section_compare(FILE *f, const report_ctx *c)
{
    char *texts[REPORT_MAX_RUNS];
    for (int i = 0; i < c->nruns; i++)
        texts[i] = config_text(&c->runs[i].s.cfg);
    fputs("<h2>Runs compared</h2>\n<div class=\"scroll\"><table><tr><th>run</th><th>model</th><th>epochs</th>"
          "<th>test accuracy</th><th>mean test loss</th><th>differs from run 1</th></tr>\n",
          f);
    for (int i = 0; i < c->nruns; i++) {
        const run_data *r = &c->runs[i];
        fprintf(f, "<tr><td style=\"color:%s;font-weight:bold\">%d</td><td style=\"text-align:left\">", palette[i],
                i + 1);
        esc(f, r->model);
        fprintf(f, "</td><td>%d</td><td>%.2f%% (%zu/%zu)</td><td>%.4f</td><td style=\"text-align:left\">",
                r->m.n ? (int)r->m.col[M_EPOCH][r->m.n - 1] : r->s.cfg.epochs, 100.0 * r->res.correct / r->res.total,
                r->res.correct, r->res.total, r->res.loss);
        /* the lines of this run's config that run 1's config lacks */
        int ndiff = 0;
        char section[64] = "";
        for (const char *line = texts[i]; i > 0 && line && *line;) {
            const char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            if (line[0] == '[' && len < sizeof section)
                snprintf(section, sizeof section, "%.*s", (int)len, line);
            else if (len && texts[0]) {
                char needle[512];
                snprintf(needle, sizeof needle, "\n%.*s\n", (int)len, line);
                if (!strstr(texts[0], needle) && strncmp(texts[0], needle + 1, len + 1) != 0) {
                    fputs(ndiff++ ? "<br>" : "", f);
                    esc(f, section);
                    fputc(' ', f);
                    char piece[512];
                    snprintf(piece, sizeof piece, "%.*s", (int)len, line);
                    esc(f, piece);
                }
            }
            line = nl ? nl + 1 : NULL;
        }
        fputs(i == 0 ? "(reference)" : ndiff ? "" : "nothing", f);
        fputs("</td></tr>\n", f);
    }
    fputs("</table></div>\n", f);
    for (int i = 0; i < c->nruns; i++)
        free(texts[i]);
}

static int render(report_ctx *c, const kernel_sheet *sheets, int nmis, int has_steps, int has_lr, tr_error *err)
{
    char tmp[PATH_LEN];
    if (tmp_path(c, tmp, "report.html", err))
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return tr_fail(err, TR_ERUNTIME, "%s: cannot create: %s", tmp, strerror(errno));
    page_head(f, c);
    section_banners(f, c);
    section_summary(f, c);
    if (c->nruns > 1)
        section_compare(f, c);
    section_curves(f, c, has_steps, has_lr);
    section_architecture(f, c);
    section_kernels(f, c, sheets);
    section_features(f, c);
    section_confusion(f, c);
    section_misclassified(f, c, nmis);
    section_config(f, c);
    fputs("</body></html>\n", f);
    if (ferror(f) | fclose(f))
        return tr_fail(err, TR_ERUNTIME, "%s: write failed", tmp);
    return publish(c, "report.html", err);
}

int report_write(const report_options *o, report_result *res, tr_error *err)
{
    static report_ctx c; /* eight runs' configs and layer tables: too big for the stack */
    memset(&c, 0, sizeof c);
    memset(res, 0, sizeof *res);
    c.o = o;
    c.out = res;
    c.now = time(NULL);
    c.nthreads = o->nthreads;
    char mk[PATH_LEN];
    snprintf(mk, sizeof mk, "%s/x", o->out_dir);
    if (o->nothers >= REPORT_MAX_RUNS)
        return tr_fail(err, TR_EINPUT, "at most %d models in one report", REPORT_MAX_RUNS);
    if (make_parent_dirs(mk, err) != 0)
        return -1;
    int rc = -1, nmis = 0, has_lr = 0;
    kernel_sheet sheets[CONFIG_MAX_LAYERS];
    memset(sheets, 0, sizeof sheets);
    if (gather_run(&c, &c.runs[c.nruns++], o->model, o->metrics, o->steps, err))
        goto out;
    for (int i = 0; i < o->nothers; i++)
        if (gather_run(&c, &c.runs[c.nruns++], o->others[i], NULL, NULL, err) != 0)
            goto out;
    if (images(&c, sheets, &nmis, err) != 0)
        goto out;
    static const int loss_cols[] = { M_TRAIN_LOSS, M_TEST_LOSS, M_VAL_LOSS };
    static const int acc_cols[] = { M_TRAIN_ACC, M_TEST_ACC, M_VAL_ACC };
    static const char *const loss_names[] = { "train", "test", "validation" };
    if (epoch_chart(&c, "loss.svg", "Loss per epoch", "cross-entropy", loss_cols, loss_names, 3, 1, 1, err) ||
        epoch_chart(&c, "accuracy.svg", "Accuracy per epoch", "accuracy (%)", acc_cols, loss_names, 3, 100, 0, err))
        goto out;
    if (c.runs[0].steps.n && step_charts(&c, &has_lr, err) != 0)
        goto out;
    rc = render(&c, sheets, nmis, c.runs[0].steps.n > 0, has_lr, err);
out:
    for (int i = 0; i < c.nruns; i++)
        run_free(&c.runs[i], i == 0 ? c.ws : NULL, c.nthreads);
    return rc;
}
