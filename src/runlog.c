#include "runlog.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

static const char *const metric_names[M_NCOL] = { "epoch", "train_loss", "train_acc", "val_acc", "test_acc",
                                                  "lr", "samples_per_s", "seconds", "test_loss", "val_loss" };
/* How each column is written: places after the point (%f), or significant
 * digits for the learning rate (%g). The epoch is whole. */
static const int metric_places[M_NCOL] = { 0, 6, 6, 6, 6, 6, 1, 3, 6, 6 };
#define STEPS_HEADER "step,epoch,loss,lr\n"

void metrics_free(metrics *m)
{
    for (int c = 0; c < M_NCOL; c++)
        free(m->col[c]);
    memset(m, 0, sizeof *m);
}

static int grow(double **v, size_t cap)
{
    double *g = realloc(*v, cap * sizeof **v);
    if (!g)
        return -1;
    *v = g;
    return 0;
}

/* Splits LINE at commas into at most MAX numbers; returns the count, or -1
 * when a field is not a number. */
static int split_numbers(char *line, double *out, int max)
{
    int n = 0;
    for (char *tok = strtok(line, ",\r\n"); tok; tok = strtok(NULL, ",\r\n")) {
        char *end;
        if (n == max)
            return -1;
        out[n] = strtod(tok, &end);
        if (end == tok || (*end && *end != ' '))
            return -1;
        n++;
    }
    return n;
}

int read_metrics(const char *path, metrics *m, tr_error *err)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f)
        return tr_fail(err, TR_EINPUT, "%s: cannot open metrics: %s", path, strerror(errno));
    int map[32], ncols = 8, lineno = 0, rc = 0;
    for (int c = 0; c < 8; c++) /* no header: the first eight columns, as trainer always wrote them */
        map[c] = c;
    char line[1024];
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1 && !strncmp(line, "epoch,", 6)) {
            ncols = 0;
            for (char *tok = strtok(line, ",\r\n"); tok && ncols < 32; tok = strtok(NULL, ",\r\n")) {
                map[ncols] = -1;
                for (int c = 0; c < M_NCOL; c++)
                    if (!strcmp(tok, metric_names[c]))
                        map[ncols] = c;
                ncols++;
            }
            continue;
        }
        double v[32];
        if (split_numbers(line, v, 32) != ncols) {
            rc = tr_fail(err, TR_EINPUT, "%s:%d: not a trainer metrics line (want %d numbers)", path, lineno, ncols);
            break;
        }
        if (m->n == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 64;
            for (int c = 0; c < M_NCOL && rc == 0; c++)
                if (grow(&m->col[c], (size_t)m->cap) != 0)
                    rc = tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
            if (rc)
                break;
        }
        for (int c = 0; c < M_NCOL; c++)
            m->col[c][m->n] = c == M_VAL_ACC || c == M_VAL_LOSS || c == M_TEST_LOSS ? -1 : NAN;
        for (int c = 0; c < ncols; c++)
            if (map[c] >= 0) {
                m->col[map[c]][m->n] = v[c];
                m->has[map[c]] = 1;
            }
        m->n++;
    }
    fclose(f);
    if (rc == 0 && m->n && (!m->has[M_EPOCH] || !m->has[M_TEST_ACC]))
        rc = tr_fail(err, TR_EINPUT, "%s: no epoch or test_acc column", path);
    if (rc)
        metrics_free(m);
    return rc;
}

void steps_free(step_log *s)
{
    free(s->step);
    free(s->loss);
    free(s->lr);
    memset(s, 0, sizeof *s);
}

int read_steps(const char *path, step_log *s, tr_error *err)
{
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "r");
    if (!f)
        return tr_fail(err, TR_EINPUT, "%s: cannot open step log: %s", path, strerror(errno));
    char line[256];
    int lineno = 0, rc = 0, ncols = 3;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1 && !strncmp(line, "step,", 5)) {
            s->has_lr = strstr(line, ",lr") != NULL;
            ncols = s->has_lr ? 4 : 3;
            continue;
        }
        double v[4];
        if (split_numbers(line, v, 4) != ncols) {
            rc = tr_fail(err, TR_EINPUT, "%s:%d: not a trainer step line", path, lineno);
            break;
        }
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 4096;
            if (grow(&s->step, s->cap) || grow(&s->loss, s->cap) || grow(&s->lr, s->cap)) {
                rc = tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
                break;
            }
        }
        s->step[s->n] = v[0];
        s->loss[s->n] = v[2];
        s->lr[s->n] = s->has_lr ? v[3] : NAN;
        s->n++;
    }
    fclose(f);
    if (rc)
        steps_free(s);
    return rc;
}

/* The row of the metrics that the model file holds: with a validation set
 * the run keeps its best epoch (the first with the highest val_acc), else
 * its last. */
int metrics_model_row(const metrics *m)
{
    int best = m->n - 1;
    if (m->has[M_VAL_ACC] && m->n && m->col[M_VAL_ACC][0] >= 0) {
        best = 0;
        for (int i = 1; i < m->n; i++)
            if (m->col[M_VAL_ACC][i] > m->col[M_VAL_ACC][best])
                best = i;
    }
    return best;
}

/* ---- writing ---- */

void runlog_steps_path(const char *metrics_path, char *out, size_t size)
{
    size_t n = strlen(metrics_path);
    if (n == 0)
        snprintf(out, size, "%s", "");
    else if (n > 4 && !strcmp(metrics_path + n - 4, ".csv"))
        snprintf(out, size, "%.*s.steps.csv", (int)(n - 4), metrics_path);
    else
        snprintf(out, size, "%s.steps.csv", metrics_path);
}

/* Keeps the rows of the old file whose counter is 1..KEEP. */
static int writer_start(runlog_writer *w, const char *path, const char *header, uint64_t keep, int resuming,
                        tr_error *err)
{
    memset(w, 0, sizeof *w);
    if (!path[0])
        return 0;
    w->mem = open_memstream(&w->text, &w->len);
    if (!w->mem)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    w->path = path;
    fputs(header, w->mem);
    FILE *old = resuming ? fopen(path, "r") : NULL;
    if (old) {
        char line[512];
        while (fgets(line, sizeof line, old)) {
            unsigned long long e;
            if (sscanf(line, "%llu,", &e) == 1 && e >= 1 && e <= keep)
                fputs(line, w->mem);
        }
        fclose(old);
    }
    return 0;
}

int runlog_start_metrics(runlog_writer *w, const char *path, uint64_t keep_epochs, int resuming, tr_error *err)
{
    char header[256];
    size_t n = 0;
    for (int c = 0; c < M_NCOL; c++)
        n += (size_t)snprintf(header + n, sizeof header - n, c ? ",%s" : "%s", metric_names[c]);
    snprintf(header + n, sizeof header - n, "\n");
    return writer_start(w, path, header, keep_epochs, resuming, err);
}

int runlog_start_steps(runlog_writer *w, const char *path, uint64_t keep_steps, int resuming, tr_error *err)
{
    return writer_start(w, path, STEPS_HEADER, keep_steps, resuming, err);
}

void runlog_add_epoch(runlog_writer *w, const double row[M_NCOL])
{
    if (!w->mem)
        return;
    for (int c = 0; c < M_NCOL; c++) {
        if (c)
            fputc(',', w->mem);
        fprintf(w->mem, c == M_LR ? "%.*g" : "%.*f", metric_places[c], row[c]);
    }
    fputc('\n', w->mem);
}

void runlog_add_step(runlog_writer *w, uint64_t step, uint64_t epoch, double loss, double lr)
{
    if (w->mem)
        fprintf(w->mem, "%llu,%llu,%.6f,%.6g\n", (unsigned long long)step, (unsigned long long)epoch, loss, lr);
}

int runlog_publish(runlog_writer *w, tr_error *err)
{
    if (!w->path)
        return 0;
    if (fflush(w->mem) != 0)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", w->path);
    return atomic_write_file(w->path, w->text, w->len, err);
}

void runlog_free(runlog_writer *w)
{
    if (w->mem)
        fclose(w->mem);
    free(w->text);
    memset(w, 0, sizeof *w);
}
