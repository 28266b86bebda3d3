/* main.c - parses the command line and hands it to cli.c. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"
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

/* Matches "--NAME VALUE" and "--NAME=VALUE". Returns 1 on a match, with
 * *value set (NULL when the value is missing) and *i moved past it. */
static int option(const char *name, int argc, char **argv, int *i, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

static int run_command(int argc, char **argv);

int main(int argc, char **argv)
{
    cli_start();
    if (dist_init(&argc, &argv) != 0)
        return cli_error(TR_ERUNTIME, "MPI failed to start");
    /* Under mpirun every rank runs the command; rank 0 speaks for all. */
    if (dist_rank() > 0 && !freopen("/dev/null", "w", stdout))
        return cli_error(TR_ERUNTIME, "cannot redirect rank %d's output", dist_rank());
    int rc = cli_finish(run_command(argc, argv));
    dist_finalize();
    return rc;
}

static int run_command(int argc, char **argv)
{
    static const struct {
        const char *word;
        cli_command cmd;
    } commands[] = { { "train", CMD_TRAIN }, { "eval", CMD_EVAL }, { "predict", CMD_PREDICT },
                     { "report", CMD_REPORT }, { "help", CMD_HELP },
                     { "info", CMD_INFO },
                     { "export", CMD_EXPORT } };
    cli_args a = { .cmd = CMD_TRAIN, .argv0 = argv[0], .argc = argc, .argv = argv };
    int i = 1;
    for (size_t c = 0; i < argc && c < sizeof commands / sizeof commands[0]; c++)
        if (!strcmp(argv[i], commands[c].word)) {
            a.cmd = commands[c].cmd;
            i++;
            break;
        }
    const char *positional[CLI_MAX_INPUTS + 1], *info_config = NULL;
    int npos = 0;
    for (; i < argc; i++) {
        const char *arg = argv[i], *v = NULL;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            a.cmd = CMD_HELP;
        } else if (!strcmp(arg, "-V") || !strcmp(arg, "--version")) {
            a.cmd = CMD_VERSION;
        } else if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) {
            a.quiet = 1;
        } else if (option("--set", argc, argv, &i, &v)) {
            if (!v)
                return cli_error(TR_EINPUT, "--set needs section.key=value (see --help)");
            if (a.nsets == CLI_MAX_SETS)
                return cli_error(TR_EINPUT, "more than %d --set options", CLI_MAX_SETS);
            a.sets[a.nsets++] = v;
        } else if (!strcmp(arg, "--json")) {
            a.json = 1;
        } else if (option("--config", argc, argv, &i, &info_config)) {
            if (!info_config)
                return cli_error(TR_EINPUT, "--config needs a config path");
        } else if (option("--resume", argc, argv, &i, &a.resume)) {
            if (!a.resume)
                return cli_error(TR_EINPUT, "--resume needs a checkpoint path");
        } else if (option("--init", argc, argv, &i, &a.init)) {
            if (!a.init)
                return cli_error(TR_EINPUT, "--init needs a model path");
        } else if (option("--metrics", argc, argv, &i, &a.metrics)) {
            if (!a.metrics)
                return cli_error(TR_EINPUT, "--metrics needs a CSV path");
        } else if (option("--steps", argc, argv, &i, &a.steps)) {
            if (!a.steps)
                return cli_error(TR_EINPUT, "--steps needs a CSV path");
        } else if (option("--out", argc, argv, &i, &a.out)) {
            if (!a.out)
                return cli_error(TR_EINPUT, "--out needs a folder");
        } else if (!strcmp(arg, "--bare")) {
            a.bare = 1;
        } else if (option("--preprocess", argc, argv, &i, &a.preprocess)) {
            if (!a.preprocess || (strcmp(a.preprocess, "mnist") && strcmp(a.preprocess, "none")))
                return cli_error(TR_EINPUT, "--preprocess needs mnist or none");
        } else if (option("--save-input", argc, argv, &i, &a.save_input)) {
            if (!a.save_input)
                return cli_error(TR_EINPUT, "--save-input needs a folder");
        } else if (option("--threads", argc, argv, &i, &v) || option("-j", argc, argv, &i, &v)) {
            if (!v || parse_int(v, &a.threads) != 0)
                return cli_error(TR_EINPUT, "%s needs a thread count from 1 to 4096", arg);
        } else if (arg[0] == '-' && arg[1]) {
            return cli_error(TR_EINPUT, "unknown option '%s' (see --help)", arg);
        } else {
            if (npos == CLI_MAX_INPUTS)
                return cli_error(TR_EINPUT, "more than %d input files", CLI_MAX_INPUTS);
            positional[npos++] = arg;
        }
    }
    if (info_config && a.cmd != CMD_INFO && a.cmd != CMD_HELP && a.cmd != CMD_VERSION)
        return cli_error(TR_EINPUT, "--config applies to 'trainer info' only (see --help)");
    if (a.json && a.cmd != CMD_INFO && a.cmd != CMD_PREDICT && a.cmd != CMD_HELP && a.cmd != CMD_VERSION)
        return cli_error(TR_EINPUT, "--json applies to 'trainer info' and 'trainer predict' only (see --help)");
    switch (a.cmd) {
    case CMD_INFO:
        if (npos + (info_config != NULL) != 1)
            return cli_error(TR_EINPUT, "usage: trainer info MODEL [--json] | trainer info --config CONFIG [--set ...] [--json]");
        a.model = info_config ? NULL : positional[0];
        a.config = info_config;
        return cli_info(&a);
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
    case CMD_REPORT:
        if (npos < 1)
            return cli_error(TR_EINPUT, "usage: trainer report MODEL [MODEL2...] [--metrics CSV] [--steps CSV] "
                                        "[--out DIR] [--set data.test_images=PATH --set data.test_labels=PATH]");
        a.model = positional[0];
        for (int k = 1; k < npos; k++)
            a.inputs[a.ninputs++] = positional[k];
        return cli_report(&a);
    case CMD_EXPORT:
        if (npos != 2)
            return cli_error(TR_EINPUT, "usage: trainer export MODEL OUT.onnx [--bare]");
        a.model = positional[0];
        a.onnx_out = positional[1];
        return cli_export(&a);
    case CMD_PREDICT:
        if (npos < 2)
            return cli_error(TR_EINPUT, "usage: trainer predict MODEL IMAGE|IMAGES.idx[.gz] ... "
                                               "[--preprocess mnist|none] [--save-input DIR] [--json]");
        a.model = positional[0];
        for (int k = 1; k < npos; k++)
            a.inputs[a.ninputs++] = positional[k];
        return cli_predict(&a);
    }
    return 2;
}
