/* image.h - the images people have, decoded into 8-bit grey for
 * `trainer predict`: PNG through libpng (grey, RGB, palette, with alpha,
 * 1 to 16 bits), JPEG through libjpeg-turbo, PGM and PPM (pgm.h). Colour
 * becomes grey by luma (0.299 R + 0.587 G + 0.114 B), as JPEG's own grey
 * conversion does. Every failure names the file; a header claiming more than
 * IMAGE_MAX_PIXELS is refused before anything that size is allocated. */
#ifndef TRAINER_IMAGE_H
#define TRAINER_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define IMAGE_MAX_PIXELS ((size_t)64 << 20) /* 64 megapixels: 8192 x 8192 */

typedef enum { IMAGE_NONE, IMAGE_PNG, IMAGE_JPEG, IMAGE_PNM } image_format;

typedef struct {
    uint32_t width, height;
    uint8_t *pixels; /* height rows of width bytes */
} gray_image;

/* What DATA starts like: IMAGE_NONE when it is none of the formats. */
image_format image_sniff(const uint8_t *data, size_t len);

/* Decodes DATA (read from PATH, named in messages) into OUT. A transparent
 * background is filled with the colour that contrasts with what is drawn
 * on it (white under dark strokes, black under light ones). */
int image_decode(const char *path, const uint8_t *data, size_t len, gray_image *out, tr_error *err);
void image_free(gray_image *img);

#endif
