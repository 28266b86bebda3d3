/* checkpoint.h - the model file (docs/model-format.md): magic, version, the
 * config that describes the architecture, float32 weights, and for resuming
 * the optimizer state and training position, closed by a CRC-32. A model
 * file is a checkpoint without the training state. Files are published
 * atomically (files.h: temp file, fsync, rename, fsync of the directory), so a reader
 * sees the old file or the new one, never a mix. */
#ifndef TRAINER_CHECKPOINT_H
#define TRAINER_CHECKPOINT_H

#include <stdint.h>

#include "config.h"
#include "error.h"
#include "files.h" /* atomic_write_file: how models are published */
#include "network.h"
#include "optim.h"
#include "provenance.h"

#define MODEL_MAGIC "TRAINCNN"
/* 2: provenance after the weights and state; version 1 files still load. */
#define MODEL_VERSION 2u

/* train.blocks as a stored config without the key (version 1, and version 2
 * before commit ce030ad) reads: until then every batch was cut into
 * min(batch, 64) gradient blocks, and the weights depend on the cut, so such
 * a checkpoint resumes to the bytes of its own run only with 64. */
#define MODEL_LEGACY_BLOCKS 64

/* Where a run stands; with the seed it is the whole RNG state, because every
 * random choice is keyed by (seed, epoch, index). */
typedef struct {
    uint64_t epoch;      /* epochs completed */
    uint64_t batch;      /* batches completed within the current epoch */
    uint64_t step;       /* optimizer steps taken in all */
    double loss_sum;     /* the current epoch's partial training loss, */
    uint64_t correct;    /* correct predictions, */
    uint64_t seen;       /* and samples */
    double best_val;     /* best validation accuracy so far (-1: none) */
    uint64_t best_epoch;
} train_state;

/* Writes PATH atomically. OPT and STATE may be NULL for a plain model. */
int checkpoint_save(const char *path, const config *cfg, const network *net,
                    const optimizer *opt, const train_state *state, tr_error *err);

/* The same, with PROV (may be NULL) recorded in the file: what it was
 * trained on, when, and how well it did. */
int checkpoint_save_prov(const char *path, const config *cfg, const network *net, const optimizer *opt,
                         const train_state *state, const provenance *prov, tr_error *err);

/* Reads PATH: CFG gets the stored config (over built-in defaults), NET is
 * created from it and filled. With OPT non-NULL the file must hold training
 * state, and OPT and STATE are filled. */
int checkpoint_load(const char *path, config *cfg, network *net, optimizer *opt,
                    train_state *state, tr_error *err);

/* The same, and PROV (may be NULL) gets the stored provenance; a file
 * without one (version 1, or saved without) leaves PROV zeroed, with an
 * empty version. Free it with provenance_free. */
int checkpoint_load_prov(const char *path, config *cfg, network *net, optimizer *opt, train_state *state,
                         provenance *prov, tr_error *err);

#endif
