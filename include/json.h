/* json.h - a small JSON writer for machine-readable output (trainer info
 * --json): objects, arrays, strings escaped per RFC 8259, numbers, null.
 * Indented two spaces per level, one member per line, so the output is
 * readable as well as parseable. */
#ifndef TRAINER_JSON_H
#define TRAINER_JSON_H

#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

typedef struct {
    FILE *f;
    int depth;
    int count[JSON_MAX_DEPTH]; /* members written at each open level */
} json_writer;

void json_init(json_writer *w, FILE *f);

/* KEY is the member name inside an object; NULL inside an array or at the
 * top level. */
void json_begin_object(json_writer *w, const char *key);
void json_end_object(json_writer *w);
void json_begin_array(json_writer *w, const char *key);
void json_end_array(json_writer *w);

/* VALUE NULL writes null. */
void json_string(json_writer *w, const char *key, const char *value);
void json_int(json_writer *w, const char *key, int64_t value);
/* Not finite writes null (JSON has no NaN or infinity). */
void json_double(json_writer *w, const char *key, double value);
void json_null(json_writer *w, const char *key);
void json_bool(json_writer *w, const char *key, int value);

/* Writes S as a quoted JSON string. */
void json_quote(FILE *f, const char *s);

#endif
