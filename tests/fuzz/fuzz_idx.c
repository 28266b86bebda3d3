/* libFuzzer target: the IDX reader, gzipped (single or multi-member) or plain. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_io.h"
#include "idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    tr_error err = { 0 };
    if (idx_slurp(path, &buf, &len, &err) == 0) {
        size_t count;
        uint32_t rows, cols;
        const uint8_t *pixels, *labels;
        tr_error e2 = { 0 }, e3 = { 0 };
        if (idx_parse_images(path, buf, len, &count, &rows, &cols, &pixels, &e2) == 0 && count)
            (void)pixels[count * rows * cols - 1]; /* the whole promised payload is readable */
        if (idx_parse_labels(path, buf, len, &count, &labels, &e3) == 0 && count)
            (void)labels[count - 1];
        free(buf);
    }
    close(fd);
    return 0;
}
