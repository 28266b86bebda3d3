#include "svg.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* Width, and the plot's left and right margins; heights below. */
#define W 560
#define L 70
#define R 20
#define PLOT_H 250.0
#define B 50.0
#define LEGEND_TOP 34.0
#define LEGEND_ROW 18.0

void svg_escape(FILE *f, const char *s)
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

int svg_nice_ticks(double lo, double hi, int want, double *first, double *step)
{
    if (!(hi > lo))
        hi = lo + 1;
    double raw = (hi - lo) / (want > 1 ? want : 1), mag = pow(10, floor(log10(raw))), frac = raw / mag;
    *step = (frac <= 1 ? 1 : frac <= 2 ? 2 : frac <= 5 ? 5 : 10) * mag;
    *first = ceil(lo / *step - 1e-9) * *step;
    return (int)floor((hi - *first) / *step + 1e-9) + 1;
}

/* The 1-2-5 value at or below V (down) or at or above it (up), V > 0. */
static double round125(double v, int up)
{
    double mag = pow(10, floor(log10(v))), steps[] = { 1, 2, 5, 10 };
    if (up) {
        for (int i = 0; i < 4; i++)
            if (steps[i] * mag >= v * (1 - 1e-9))
                return steps[i] * mag;
        return 10 * mag;
    }
    for (int i = 3; i >= 0; i--)
        if (steps[i] * mag <= v * (1 + 1e-9))
            return steps[i] * mag;
    return mag;
}

typedef struct {
    double xmin, xmax, ymin, ymax, top; /* data ranges (log10 for a log axis) and the plot's top edge */
    int logy;
} frame;

static double px(const frame *fr, double x)
{
    return L + (x - fr->xmin) / (fr->xmax - fr->xmin) * (W - L - R);
}

static double py(const frame *fr, double y)
{
    double v = fr->logy ? log10(y) : y;
    return fr->top + PLOT_H - (v - fr->ymin) / (fr->ymax - fr->ymin) * PLOT_H;
}

static int usable(const svg_chart *c, double y)
{
    return isfinite(y) && (!c->logy || y > 0);
}

/* The data ranges, rounded out to ticks on y. */
static void ranges(const svg_chart *c, frame *fr)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < c->nseries; s++)
        for (int i = 0; i < c->series[s].n; i++) {
            const double x = c->series[s].x[i], y = c->series[s].y[i];
            if (!isfinite(x) || !usable(c, y))
                continue;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        }
    if (!isfinite(xlo))
        xlo = 0, xhi = 1, ylo = c->logy ? 0.1 : 0, yhi = 1;
    if (c->fix_ymin)
        ylo = c->ymin;
    if (c->fix_ymax)
        yhi = c->ymax;
    fr->xmin = xlo;
    fr->xmax = xhi > xlo ? xhi : xlo + 1;
    fr->logy = c->logy;
    if (c->logy) {
        fr->ymin = log10(round125(ylo, 0));
        fr->ymax = log10(round125(yhi > ylo ? yhi : ylo * 10, 1));
        if (fr->ymax - fr->ymin > 2) { /* ticks at decades only: end on decades too */
            fr->ymin = floor(fr->ymin + 1e-9);
            fr->ymax = ceil(fr->ymax - 1e-9);
        }
        return;
    }
    if (!(yhi > ylo))
        yhi = ylo + 1;
    double first, step;
    svg_nice_ticks(ylo, yhi, 5, &first, &step);
    fr->ymin = floor(ylo / step + 1e-9) * step;
    fr->ymax = ceil(yhi / step - 1e-9) * step;
}

/* One legend entry per series, left to right, wrapping into rows; returns
 * the number of rows (or draws nothing with F NULL). */
static int legend(FILE *f, const svg_chart *c)
{
    double x = L;
    int row = 0;
    for (int s = 0; s < c->nseries; s++) {
        double w = 24 + 7.0 * (double)strlen(c->series[s].name) + 16;
        if (x > L && x + w > W - R) {
            x = L;
            row++;
        }
        if (f) {
            double y = LEGEND_TOP + LEGEND_ROW * row;
            fprintf(f, "<g class=\"legend\"><line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
                       "stroke-width=\"3\"%s%s/>",
                    x, y - 4, x + 18, y - 4, c->series[s].color, c->series[s].faint ? " stroke-opacity=\"0.45\"" : "",
                    c->series[s].dashed ? " stroke-dasharray=\"5 3\"" : "");
            fprintf(f, "<text class=\"fg\" x=\"%.0f\" y=\"%.0f\">", x + 24, y);
            svg_escape(f, c->series[s].name);
            fputs("</text></g>\n", f);
        }
        x += w;
    }
    return c->nseries ? row + 1 : 0;
}

static void tick_label(FILE *f, double x, double y, const char *anchor, double v)
{
    fprintf(f, "<text class=\"fg\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%.6g</text>\n", x, y, anchor,
            fabs(v) < 1e-12 ? 0.0 : v);
}

static void axes(FILE *f, const svg_chart *c, const frame *fr, double H)
{
    double bottom = fr->top + PLOT_H;
    if (fr->logy) {
        /* 1, 2, 5 in each decade over short ranges, decades over long ones. */
        int span = (int)lround(fr->ymax - fr->ymin);
        for (int d = (int)lround(fr->ymin); d <= (int)lround(fr->ymax); d++)
            for (int m = 1; m <= 5; m = m == 1 ? 2 : m + 3) {
                double v = m * pow(10, d);
                if ((span > 2 && m != 1) || log10(v) < fr->ymin - 1e-9 || log10(v) > fr->ymax + 1e-9)
                    continue;
                fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", L, py(fr, v),
                        W - R, py(fr, v));
                tick_label(f, L - 6, py(fr, v) + 4, "end", v);
            }
    } else {
        double first, step;
        int n = svg_nice_ticks(fr->ymin, fr->ymax, 5, &first, &step);
        for (int t = 0; t < n; t++) {
            double v = first + step * t;
            fprintf(f, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", L, py(fr, v), W - R,
                    py(fr, v));
            tick_label(f, L - 6, py(fr, v) + 4, "end", v);
        }
    }
    double first, step;
    int n = svg_nice_ticks(fr->xmin, fr->xmax, 7, &first, &step);
    if (step < 1 && fr->xmax - fr->xmin >= 1) /* epochs and steps are whole numbers */
        n = svg_nice_ticks(fr->xmin, fr->xmax, (int)(fr->xmax - fr->xmin), &first, &step);
    for (int t = 0; t < n; t++) {
        double v = first + step * t;
        fprintf(f, "<line class=\"ax\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px(fr, v), bottom,
                px(fr, v), bottom + 4);
        tick_label(f, px(fr, v), bottom + 18, "middle", v);
    }
    fprintf(f, "<line class=\"ax\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", L, bottom, W - R, bottom);
    fprintf(f, "<line class=\"ax\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", L, fr->top, L, bottom);
    fprintf(f, "<text class=\"fg\" x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">", (L + W - R) / 2.0, H - 12);
    svg_escape(f, c->xlabel);
    fprintf(f, "</text>\n<text class=\"fg\" transform=\"translate(18 %.0f) rotate(-90)\" text-anchor=\"middle\">",
            fr->top + PLOT_H / 2);
    svg_escape(f, c->ylabel);
    if (c->logy)
        fputs(" (log scale)", f);
    fputs("</text>\n", f);
}

static void series_path(FILE *f, const svg_chart *c, const frame *fr, const svg_series *s)
{
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s%s points=\"", s->color,
            s->faint ? "1" : s->markers ? "2" : "1.5", s->faint ? " stroke-opacity=\"0.45\"" : "",
            s->dashed ? " stroke-dasharray=\"6 4\"" : "");
    for (int i = 0; i < s->n; i++)
        if (usable(c, s->y[i]))
            fprintf(f, "%.1f,%.1f ", px(fr, s->x[i]), py(fr, s->y[i]));
    fputs("\"/>\n", f);
    for (int i = 0; s->markers && i < s->n; i++)
        if (usable(c, s->y[i]))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px(fr, s->x[i]), py(fr, s->y[i]),
                    s->color);
}

int svg_chart_write(const char *path, const svg_chart *c, tr_error *err)
{
    frame fr;
    ranges(c, &fr);
    int rows = legend(NULL, c);
    fr.top = LEGEND_TOP + LEGEND_ROW * rows + 4;
    const double H = fr.top + PLOT_H + B;
    FILE *f = fopen(path, "w");
    if (!f)
        return tr_fail(err, TR_ERUNTIME, "%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    fputs("<style>.bg{fill:#fff}.fg{fill:#222}.ax{stroke:#222}.grid{stroke:#ddd}\n"
          "@media (prefers-color-scheme:dark){.bg{fill:#1d1f21}.fg{fill:#ddd}.ax{stroke:#bbb}.grid{stroke:#444}}"
          "</style>\n",
          f);
    fprintf(f, "<rect class=\"bg\" width=\"100%%\" height=\"100%%\"/>\n<text class=\"fg\" x=\"%d\" y=\"20\" "
               "text-anchor=\"middle\" font-size=\"15\">", W / 2);
    svg_escape(f, c->title);
    fputs("</text>\n", f);
    legend(f, c);
    axes(f, c, &fr, H);
    fprintf(f, "<g class=\"plot\" data-top=\"%.1f\" data-bottom=\"%.1f\">\n", fr.top, fr.top + PLOT_H);
    for (int s = 0; s < c->nseries; s++)
        series_path(f, c, &fr, &c->series[s]);
    fputs("</g>\n</svg>\n", f);
    if (ferror(f) | fclose(f))
        return tr_fail(err, TR_ERUNTIME, "%s: write failed", path);
    return 0;
}
