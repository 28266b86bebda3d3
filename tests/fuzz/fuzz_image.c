/* libFuzzer target: the picture decoders (PNG, JPEG, PGM/PPM) and, for what
 * decodes, the MNIST-style preprocessing. */
#include <stdint.h>
#include <stdlib.h>

#include "image.h"
#include "preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gray_image img;
    tr_error err = { 0 };
    if (image_decode("fuzz", data, size, &img, &err) != 0)
        return 0;
    /* Every promised pixel is readable; preprocess the small ones (the
     * large ones only cost time). */
    (void)img.pixels[(size_t)img.width * img.height - 1];
    if ((size_t)img.width * img.height <= (size_t)1 << 20) {
        uint8_t out[28 * 28];
        tr_error e2 = { 0 };
        (void)preprocess_mnist("fuzz", img.pixels, img.width, img.height, 28, out, &e2);
    }
    image_free(&img);
    return 0;
}
