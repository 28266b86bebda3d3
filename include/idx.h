/* idx.h - reading MNIST's IDX files, gzipped or plain, into memory.
 * Images stay as bytes (47 MB for the training set); they are normalised on
 * the fly by data.h. Every header field is checked against the file's real
 * length and against overflow before anything is allocated. */
#ifndef TRAINER_IDX_H
#define TRAINER_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct {
    size_t count;
    uint32_t rows, cols;
    uint8_t *pixels; /* count * rows * cols, row-major */
    uint8_t *labels; /* count */
    uint8_t *block;  /* the allocation pixels lies in, after the file's header; NULL: pixels is one */
} dataset;

/* Reads the whole of PATH (gzip, multi-member gzip or plain) into a fresh
 * buffer. Fails on a truncated or corrupt stream, never returning part of a
 * file it could parse. Content that is neither IDX nor a format read here
 * (model, PGM, PNG, JPEG) is returned as its first bytes only, since every
 * parser refuses it by its magic; and IDX content is read no further than
 * its header says (a gzip bomb or a device stops there). files_read_all
 * (files.h) does the reading; this module says how far content may go. */
int idx_slurp(const char *path, uint8_t **data, size_t *len, tr_error *err);

/* The same, and SHA256 (32 bytes, may be NULL) gets the hash of the file's
 * bytes as stored, before inflating. */
int idx_slurp_digest(const char *path, uint8_t **data, size_t *len, uint8_t *sha256, tr_error *err);
/* "a bzip2 file (...)" and the like when D starts with the magic of a
 * compressed or archive format this program does not read; else NULL. */
const char *idx_archive_name(const uint8_t *d, size_t len);

/* Parses an image file (magic 0x00000803) or a label file (0x00000801). */
int idx_parse_images(const char *path, const uint8_t *data, size_t len,
                     size_t *count, uint32_t *rows, uint32_t *cols,
                     const uint8_t **pixels, tr_error *err);
int idx_parse_labels(const char *path, const uint8_t *data, size_t len,
                     size_t *count, const uint8_t **labels, tr_error *err);

/* Loads an image file and its label file, checking that counts agree and
 * that every label is below num_classes. limit > 0 keeps the first limit. */
int dataset_load(dataset *ds, const char *images_path, const char *labels_path,
                 unsigned num_classes, size_t limit, tr_error *err);

/* The same, and IMAGES_SHA256 and LABELS_SHA256 (32 bytes each, may be
 * NULL) get the hashes of the two files as stored, FILE_COUNT (may be
 * NULL) the number of images in the files, before LIMIT. */
int dataset_load_digest(dataset *ds, const char *images_path, const char *labels_path, unsigned num_classes,
                        size_t limit, uint8_t *images_sha256, uint8_t *labels_sha256, size_t *file_count,
                        tr_error *err);

/* Appends EXTRA's images and labels to DS (same image size), for the
 * data.extra files; EXTRA is left as it was. */
int dataset_append(dataset *ds, const dataset *extra, const char *extra_path, tr_error *err);
void dataset_free(dataset *ds);

#endif
