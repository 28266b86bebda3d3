/* provenance.h - where a model came from: the trainer version, every data
 * file it was trained and tested on (SHA-256 of the file's bytes as stored,
 * and how many images it holds), the seed, the epochs, the final test
 * accuracy, when it was written and how long training took. The model file
 * stores it (docs/model-format.md); `trainer info` prints it.
 *
 * The fingerprint condenses what decides a training run (trainer version,
 * config text without [output], data file hashes in reading order) into
 * one SHA-256, computed the same way from a config and from a model, so a
 * retraining script can tell "nothing changed" by comparing two strings. */
#ifndef TRAINER_PROVENANCE_H
#define TRAINER_PROVENANCE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "digest.h"
#include "error.h"
#include "idx.h"

#define PROV_ROLE_MAX 16
#define PROV_VERSION_MAX 32
/* A cap on data.extra pairs, so a directory of junk cannot make a model
 * file or a plan unbounded. */
#define PROV_MAX_FILES 4096

typedef struct {
    char role[PROV_ROLE_MAX];    /* train_images, train_labels, extra_images, extra_labels,
                                    test_images, test_labels */
    char path[CONFIG_PATH_MAX];  /* as the config names it */
    uint8_t sha256[DIGEST_SIZE]; /* of the file's bytes as stored, gzipped or not */
    uint64_t count;              /* images (or labels) the file holds, before data.limit */
} data_file;

typedef struct {
    char version[PROV_VERSION_MAX]; /* the trainer that wrote the file */
    int64_t seed;
    uint64_t epochs;                /* the epoch whose weights the file holds */
    double test_accuracy;           /* -1: not measured */
    uint64_t test_correct, test_total;
    int64_t created;                /* Unix time the file was written */
    double train_seconds;           /* training time, summed over resumed runs */
    size_t nfiles;
    data_file *files;
} provenance;

/* Lists the data files CFG reads, in the order training reads them: the
 * training images and labels, each data.extra pair in name order, the test
 * images and labels. Fills role and path only; *FILES is malloc'd. */
int data_plan(const config *cfg, data_file **files, size_t *n, tr_error *err);

/* Load what a plan lists, filling each file's sha256 and count on the way
 * (hashing the bytes already read, so no file is read twice). The training
 * set is the training pair (data.limit applies to it) followed by every
 * extra pair, whole; the test set is the test pair (data.test_limit). */
int data_load_train(dataset *ds, data_file *plan, size_t n, const config *cfg, tr_error *err);
int data_load_test(dataset *ds, data_file *plan, size_t n, const config *cfg, tr_error *err);

/* Fills F's sha256 (the file's bytes as read) and count (from the IDX
 * header; a gzipped file is inflated only as far as its header). */
int data_file_identify(data_file *f, tr_error *err);

/* The fingerprint as lower-case hex: SHA-256 over
 *   "trainer-fingerprint 1\n" "version VERSION\n" "config LEN\n" CONFIG_TEXT
 * then "ROLE SHA256HEX\n" for each file, where CONFIG_TEXT is what
 * config_write(cfg, f, 0) writes. */
int provenance_fingerprint(const char *version, const config *cfg, const data_file *files, size_t n,
                           char hex[DIGEST_HEX_SIZE], tr_error *err);

/* Copies SRC's files into DST (replacing DST's). */
int provenance_set_files(provenance *dst, const data_file *files, size_t n, tr_error *err);

/* Now as Unix time, or SOURCE_DATE_EPOCH when that is set (the
 * reproducible-builds convention), for the created field. */
int64_t provenance_now(void);

/* Whether SOURCE_DATE_EPOCH is set: then a file records nothing of the
 * clock (the training time as 0 too), so two runs of one config give the
 * same bytes, whole, at any thread or rank count. */
int provenance_clock_fixed(void);

void provenance_free(provenance *p);

#endif
