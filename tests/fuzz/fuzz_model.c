/* libFuzzer target: the model and checkpoint loader. The CRC would stop
 * almost every mutation at the door, so the target recomputes it over the
 * input first: the fuzzer then reaches the parser behind it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "checkpoint.h"
#include "fuzz_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    if (data[0] & 1) { /* half the inputs keep their CRC as fuzzed */
        uint32_t crc = (uint32_t)crc32(0L, copy, (uInt)(size - 4));
        for (int i = 0; i < 4; i++)
            copy[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    }
    char path[64];
    int fd = fuzz_file(copy, size, path, sizeof path);
    free(copy);
    if (fd < 0)
        return 0;
    static config cfg;
    network net;
    optimizer opt;
    train_state st;
    tr_error err = { 0 };
    if (checkpoint_load(path, &cfg, &net, NULL, NULL, &err) == 0)
        net_free(&net);
    tr_error e2 = { 0 };
    if (checkpoint_load(path, &cfg, &net, &opt, &st, &e2) == 0) {
        net_free(&net);
        optim_free(&opt);
    }
    close(fd);
    return 0;
}
