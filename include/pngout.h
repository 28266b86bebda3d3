/* pngout.h - writing 8-bit RGB images as PNG files, through libpng. */
#ifndef TRAINER_PNGOUT_H
#define TRAINER_PNGOUT_H

#include <stdint.h>

#include "error.h"

/* RGB holds h rows of w pixels, 3 bytes each. */
int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, tr_error *err);

#endif
