/* outputs.h - the files a training run writes: output.model, its
 * checkpoint, output.metrics with its step log, and the output.report
 * folder. Before any work each one is checked (named, not a directory or a
 * device, its folder creatable and writable, not one of the data files, no
 * two the same) and locked for the life of the process, so that two
 * trainers never write one file; then the temp files a killed writer left
 * beside them are cleared (files.h does the locking and the clearing). */
#ifndef TRAINER_OUTPUTS_H
#define TRAINER_OUTPUTS_H

#include "config.h"
#include "error.h"

/* Checks and locks every output of CFG (PATH.lock, flock, holding our
 * pid), then removes PATH.tmp.XXXXXX files beside each. Bad paths fail with
 * TR_EINPUT; a path another trainer holds fails with TR_ERUNTIME naming its
 * pid. The locks last until the process exits. */
int outputs_claim(const config *cfg, tr_error *err);

#endif
