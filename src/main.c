/* main.c - parses the command line and hands it to cli.c. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "error.h"

static int parse_int(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 1 || v > 4096)
        return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    cli_args a = { .cmd = CMD_TRAIN, .argv0 = argv[0] };
    int i = 1;
    if (i < argc) {
        if (!strcmp(argv[i], "train"))
            a.cmd = CMD_TRAIN, i++;
        else if (!strcmp(argv[i], "eval"))
            a.cmd = CMD_EVAL, i++;
        else if (!strcmp(argv[i], "predict"))
            a.cmd = CMD_PREDICT, i++;
        else if (!strcmp(argv[i], "help"))
            a.cmd = CMD_HELP, i++;
    }
    const char *positional[CLI_MAX_INPUTS + 1];
    int npos = 0;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            a.cmd = CMD_HELP;
        } else if (!strcmp(arg, "-V") || !strcmp(arg, "--version")) {
            a.cmd = CMD_VERSION;
        } else if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) {
            a.quiet = 1;
        } else if (!strcmp(arg, "--set") || !strncmp(arg, "--set=", 6)) {
            const char *v = arg[5] == '=' ? arg + 6 : val;
            if (!v)
                return cli_error(TR_EINPUT, "--set needs section.key=value (see --help)");
            if (a.nsets == CLI_MAX_SETS)
                return cli_error(TR_EINPUT, "more than %d --set options", CLI_MAX_SETS);
            a.sets[a.nsets++] = v;
            i += arg[5] != '=';
        } else if (!strcmp(arg, "--resume") || !strncmp(arg, "--resume=", 9)) {
            a.resume = arg[8] == '=' ? arg + 9 : val;
            if (!a.resume)
                return cli_error(TR_EINPUT, "--resume needs a checkpoint path");
            i += arg[8] != '=';
        } else if (!strcmp(arg, "--threads") || !strcmp(arg, "-j")) {
            if (!val || parse_int(val, &a.threads) != 0)
                return cli_error(TR_EINPUT, "%s needs a thread count from 1 to 4096", arg);
            i++;
        } else if (arg[0] == '-' && arg[1]) {
            return cli_error(TR_EINPUT, "unknown option '%s' (see --help)", arg);
        } else {
            if (npos == CLI_MAX_INPUTS)
                return cli_error(TR_EINPUT, "more than %d input files", CLI_MAX_INPUTS);
            positional[npos++] = arg;
        }
    }
    switch (a.cmd) {
    case CMD_HELP:
        cli_usage(stdout);
        return 0;
    case CMD_VERSION:
        return cli_version();
    case CMD_TRAIN:
        if (npos > 1)
            return cli_error(TR_EINPUT, "train takes one CONFIG, got %d arguments (see --help)", npos);
        a.config = npos ? positional[0] : NULL;
        return cli_train(&a);
    case CMD_EVAL:
        if (npos != 1)
            return cli_error(TR_EINPUT, "usage: trainer eval MODEL [--set data.test_images=PATH ...]");
        a.model = positional[0];
        return cli_eval(&a);
    case CMD_PREDICT:
        if (npos < 2)
            return cli_error(TR_EINPUT, "usage: trainer predict MODEL IMAGE.pgm|IMAGES.idx[.gz] ...");
        a.model = positional[0];
        for (int k = 1; k < npos; k++)
            a.inputs[a.ninputs++] = positional[k];
        return cli_predict(&a);
    }
    return 2;
}
