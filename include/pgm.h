/* pgm.h - reading single grey images (binary P5 or text P2 PGM) for
 * `trainer predict`; colour PPM (P6, P3) is read too and turned grey. */
#ifndef TRAINER_PGM_H
#define TRAINER_PGM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* True when DATA starts like a PGM file. */
int pgm_sniff(const uint8_t *data, size_t len);

/* Decodes the PGM in DATA (read from PATH, named in messages) into a fresh
 * buffer of *rows x *cols bytes scaled to 0..255. */
int pgm_parse(const char *path, const uint8_t *data, size_t len, uint8_t **pixels, uint32_t *rows,
              uint32_t *cols, tr_error *err);

#endif
