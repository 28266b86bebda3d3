#include "json.h"

#include <inttypes.h>
#include <math.h>

void json_init(json_writer *w, FILE *f)
{
    w->f = f;
    w->depth = 0;
    w->count[0] = 0;
}

void json_quote(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            /* Other control bytes must be escaped; bytes >= 0x80 pass
             * through, so UTF-8 paths stay as they are. */
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* The separator, the indentation and the key before a value. */
static void member(json_writer *w, const char *key)
{
    int d = w->depth < JSON_MAX_DEPTH ? w->depth : JSON_MAX_DEPTH - 1;
    if (w->depth > 0) {
        fputs(w->count[d]++ ? ",\n" : "\n", w->f);
        for (int i = 0; i < w->depth; i++)
            fputs("  ", w->f);
    }
    if (key) {
        json_quote(w->f, key);
        fputs(": ", w->f);
    }
}

static void open_level(json_writer *w, const char *key, char c)
{
    member(w, key);
    fputc(c, w->f);
    if (w->depth + 1 < JSON_MAX_DEPTH) {
        w->depth++;
        w->count[w->depth] = 0;
    }
}

static void close_level(json_writer *w, char c)
{
    int had = w->count[w->depth];
    if (w->depth > 0)
        w->depth--;
    if (had) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++)
            fputs("  ", w->f);
    }
    fputc(c, w->f);
    if (w->depth == 0)
        fputc('\n', w->f);
}

void json_begin_object(json_writer *w, const char *key)
{
    open_level(w, key, '{');
}

void json_end_object(json_writer *w)
{
    close_level(w, '}');
}

void json_begin_array(json_writer *w, const char *key)
{
    open_level(w, key, '[');
}

void json_end_array(json_writer *w)
{
    close_level(w, ']');
}

void json_string(json_writer *w, const char *key, const char *value)
{
    member(w, key);
    if (value)
        json_quote(w->f, value);
    else
        fputs("null", w->f);
}

void json_int(json_writer *w, const char *key, int64_t value)
{
    member(w, key);
    fprintf(w->f, "%" PRId64, value);
}

void json_double(json_writer *w, const char *key, double value)
{
    member(w, key);
    if (isfinite(value))
        fprintf(w->f, "%.10g", value);
    else
        fputs("null", w->f);
}

void json_null(json_writer *w, const char *key)
{
    member(w, key);
    fputs("null", w->f);
}

void json_bool(json_writer *w, const char *key, int value)
{
    member(w, key);
    fputs(value ? "true" : "false", w->f);
}
