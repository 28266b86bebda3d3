/* preprocess.h - making a photo or drawing of one digit look like an MNIST
 * image, which is what the network learnt from: MNIST's digits were scaled
 * to fit a 20x20 box (aspect ratio kept, anti-aliased), white on black, and
 * centred in 28x28 by their centre of mass. A picture of a digit is none of
 * that, and without these steps a good model fails on it. */
#ifndef TRAINER_PREPROCESS_H
#define TRAINER_PREPROCESS_H

#include <stdint.h>

#include "error.h"

/* GRAY (h rows of w bytes, from PATH for messages) to SIDE x SIDE bytes in
 * OUT: invert when the background (the median of the border) is light;
 * smooth out speckle (3x3 median) on images large enough to keep their
 * strokes; stretch the ink's contrast to 0..255 with the background at 0;
 * crop to the ink; scale to fit SIDE*20/28 keeping the aspect ratio, each
 * output pixel the area-weighted mean of the input it covers; place so the
 * centre of mass is at the centre. An image with no ink (contrast below a
 * sixth of the range) is refused. */
int preprocess_mnist(const char *path, const uint8_t *gray, uint32_t w, uint32_t h, int side, uint8_t *out,
                     tr_error *err);

#endif
