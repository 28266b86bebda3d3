/* libFuzzer target: the INI config parser, validation and network shapes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "network.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static config cfg; /* large; keep it off the stack */
    config_defaults(&cfg);
    tr_error err = { 0 };
    if (config_parse_string(&cfg, text, "fuzz.ini", &err) == 0) {
        network net;
        tr_error e2 = { 0 };
        if (net_create(&net, &cfg, &e2) == 0) {
            net_free(&net);
            /* config_write takes a validated config, as net_create ensures. */
            FILE *f = fopen("/dev/null", "w");
            if (f) {
                config_write(&cfg, f, 1);
                fclose(f);
            }
        }
    }
    free(text);
    return 0;
}
