/* cli_parse.c - the command line on glibc's getopt_long, from one table of
 * options that also writes --help's option list. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "error.h"

#define ALL_COMMANDS (~0u)
#define ONLY(c) (1u << (c))

/* Long-only options take values from 256 up, clear of any short letter. */
enum { OPT_SET = 256, OPT_RESUME, OPT_INIT, OPT_JSON, OPT_CONFIG, OPT_METRICS, OPT_STEPS, OPT_OUT, OPT_BARE,
       OPT_PREPROCESS, OPT_SAVE_INPUT };

/* commands: where the option has effect. Outside them it is accepted and
 * ignored, as it always was, unless `strict` (then refused, naming where it
 * applies), so no command line that worked before stops working. */
static const cli_option options[] = {
    { "set", OPT_SET, "SECTION.KEY=VALUE", "override a config key (layers: layer.NAME.KEY); repeatable",
      ALL_COMMANDS, 0 },
    { "resume", OPT_RESUME, "CKPT", "continue training from a checkpoint", ONLY(CMD_TRAIN), 0 },
    { "init", OPT_INIT, "MODEL", "start from MODEL's weights (warm start; same architecture)", ONLY(CMD_TRAIN), 0 },
    { "threads", 'j', "N", "OpenMP threads (default: OMP_NUM_THREADS, else all cores)", ALL_COMMANDS, 0 },
    { "quiet", 'q', NULL, "no per-epoch lines or progress bar, only the result", ALL_COMMANDS, 0 },
    { "config", OPT_CONFIG, "CONFIG", "info: what a model trained from CONFIG would be made of", ONLY(CMD_INFO), 1 },
    { "json", OPT_JSON, NULL, "info, predict: JSON for scripts instead of text", ONLY(CMD_INFO) | ONLY(CMD_PREDICT),
      1 },
    { "metrics", OPT_METRICS, "CSV", "report: the metrics CSV (--metrics= for none)", ONLY(CMD_REPORT), 0 },
    { "steps", OPT_STEPS, "CSV", "report: the per-step loss CSV", ONLY(CMD_REPORT), 0 },
    { "out", OPT_OUT, "DIR", "report: the output folder (default: MODEL's folder/report)", ONLY(CMD_REPORT), 0 },
    { "bare", OPT_BARE, NULL, "export: the network alone, normalised input in, logits out", ONLY(CMD_EXPORT), 0 },
    { "preprocess", OPT_PREPROCESS, "mnist|none", "predict: make pictures look like MNIST, or take them as they are",
      ONLY(CMD_PREDICT), 0 },
    { "save-input", OPT_SAVE_INPUT, "DIR", "predict: write what the network saw as PNG", ONLY(CMD_PREDICT), 0 },
    { "help", 'h', NULL, "this text", ALL_COMMANDS, 0 },
    { "version", 'V', NULL, "the version", ALL_COMMANDS, 0 },
};
#define NOPTIONS (sizeof options / sizeof options[0])

const cli_option *cli_options(size_t *n)
{
    *n = NOPTIONS;
    return options;
}

void cli_options_usage(FILE *f)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const cli_option *o = &options[i];
        char spelling[64];
        int n = snprintf(spelling, sizeof spelling, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        if (o->val < 256)
            snprintf(spelling + n, sizeof spelling - (size_t)n, ", -%c%s%s", o->val, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        fprintf(f, "  %-24s %s\n", spelling, o->help);
    }
}

static const cli_option *find_option(int val)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].val == val)
            return &options[i];
    return NULL;
}

static int parse_threads(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 1 || v > 4096)
        return -1;
    *out = (int)v;
    return 0;
}

/* Where only a short option can be bundled, "-j=4" (which the hand-written
 * parser took) still means -j 4. */
static const char *short_value(const char *v)
{
    return v[0] == '=' ? v + 1 : v;
}

static const struct {
    const char *word;
    cli_command cmd;
} commands[] = { { "train", CMD_TRAIN },     { "eval", CMD_EVAL }, { "info", CMD_INFO },
                 { "predict", CMD_PREDICT }, { "report", CMD_REPORT }, { "help", CMD_HELP },
                 { "export", CMD_EXPORT } };
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* "--json applies to 'trainer info' and 'trainer predict' only" */
static int not_here(const cli_option *o)
{
    char where[128] = "";
    size_t n = 0;
    for (size_t c = 0; c < NCOMMANDS; c++)
        if (o->commands & ONLY(commands[c].cmd))
            n += (size_t)snprintf(where + n, sizeof where - n, "%s'trainer %s'", n ? " and " : "", commands[c].word);
    return cli_error(TR_EINPUT, "--%s applies to %s only (see --help)", o->name, where);
}

/* Stores one option's value. Returns 0 or an exit status (message printed). */
static int take(cli_args *a, int val, const char *v, const char *spelling, const char **config)
{
    switch (val) {
    case 'h':
        a->cmd = CMD_HELP;
        return 0;
    case 'V':
        a->cmd = CMD_VERSION;
        return 0;
    case 'q':
        a->quiet = 1;
        return 0;
    case OPT_JSON:
        a->json = 1;
        return 0;
    case OPT_BARE:
        a->bare = 1;
        return 0;
    case OPT_SET:
        if (a->nsets == CLI_MAX_SETS)
            return cli_error(TR_EINPUT, "more than %d --set options", CLI_MAX_SETS);
        a->sets[a->nsets++] = v;
        return 0;
    case 'j':
        if (parse_threads(spelling[1] == '-' ? v : short_value(v), &a->threads) != 0)
            return cli_error(TR_EINPUT, "%s needs a thread count from 1 to 4096", spelling);
        return 0;
    case OPT_PREPROCESS:
        if (strcmp(v, "mnist") && strcmp(v, "none"))
            return cli_error(TR_EINPUT, "--preprocess needs mnist or none");
        a->preprocess = v;
        return 0;
    case OPT_CONFIG: *config = v; return 0;
    case OPT_RESUME: a->resume = v; return 0;
    case OPT_INIT: a->init = v; return 0;
    case OPT_METRICS: a->metrics = v; return 0;
    case OPT_STEPS: a->steps = v; return 0;
    case OPT_OUT: a->out = v; return 0;
    case OPT_SAVE_INPUT: a->save_input = v; return 0;
    }
    return cli_error(TR_ERUNTIME, "option %d has no handler", val);
}

static const char *const missing_value[] = {
    [OPT_SET - 256] = "--set needs section.key=value (see --help)",
    [OPT_RESUME - 256] = "--resume needs a checkpoint path",
    [OPT_INIT - 256] = "--init needs a model path",
    [OPT_CONFIG - 256] = "--config needs a config path",
    [OPT_METRICS - 256] = "--metrics needs a CSV path",
    [OPT_STEPS - 256] = "--steps needs a CSV path",
    [OPT_OUT - 256] = "--out needs a folder",
    [OPT_PREPROCESS - 256] = "--preprocess needs mnist or none",
    [OPT_SAVE_INPUT - 256] = "--save-input needs a folder",
};

/* The positional arguments of each command, checked as before. */
static int take_positionals(cli_args *a, const char **pos, int npos, const char *config)
{
    switch (a->cmd) {
    case CMD_INFO:
        if (npos + (config != NULL) != 1)
            return cli_error(TR_EINPUT, "usage: trainer info MODEL [--json] | trainer info --config CONFIG [--set ...] [--json]");
        a->model = config ? NULL : pos[0];
        a->config = config;
        return 0;
    case CMD_HELP:
    case CMD_VERSION:
        return 0;
    case CMD_TRAIN:
        if (npos > 1)
            return cli_error(TR_EINPUT, "train takes one CONFIG, got %d arguments (see --help)", npos);
        a->config = npos ? pos[0] : NULL;
        return 0;
    case CMD_EVAL:
        if (npos != 1)
            return cli_error(TR_EINPUT, "usage: trainer eval MODEL [--set data.test_images=PATH ...]");
        a->model = pos[0];
        return 0;
    case CMD_REPORT:
        if (npos < 1)
            return cli_error(TR_EINPUT, "usage: trainer report MODEL [MODEL2...] [--metrics CSV] [--steps CSV] "
                                        "[--out DIR] [--set data.test_images=PATH --set data.test_labels=PATH]");
        break;
    case CMD_EXPORT:
        if (npos != 2)
            return cli_error(TR_EINPUT, "usage: trainer export MODEL OUT.onnx [--bare]");
        a->model = pos[0];
        a->onnx_out = pos[1];
        return 0;
    case CMD_PREDICT:
        if (npos < 2)
            return cli_error(TR_EINPUT, "usage: trainer predict MODEL IMAGE|IMAGES.idx[.gz] ... "
                                        "[--preprocess mnist|none] [--save-input DIR] [--json]");
        break;
    }
    /* report and predict: MODEL then inputs */
    a->model = pos[0];
    for (int k = 1; k < npos; k++)
        a->inputs[a->ninputs++] = pos[k];
    return 0;
}

int cli_parse(int argc, char **argv, cli_args *a)
{
    *a = (cli_args){ .cmd = CMD_TRAIN, .argv0 = argv[0], .argc = argc, .argv = argv };
    int first = 1;
    for (size_t c = 0; argc > 1 && c < NCOMMANDS; c++)
        if (!strcmp(argv[1], commands[c].word)) {
            a->cmd = commands[c].cmd;
            first = 2;
            break;
        }
    /* getopt_long for this command: it sees the command word as its argv[0]. */
    struct option longopts[NOPTIONS + 1];
    char shorts[3 + 2 * NOPTIONS] = "-:", *s = shorts + 2;
    for (size_t i = 0; i < NOPTIONS; i++) {
        longopts[i] = (struct option){ options[i].name, options[i].arg ? required_argument : no_argument, NULL,
                                       options[i].val };
        if (options[i].val < 256) {
            *s++ = (char)options[i].val;
            if (options[i].arg)
                *s++ = ':';
        }
    }
    *s = '\0';
    longopts[NOPTIONS] = (struct option){ 0 };
    int gargc = argc - first + 1;
    char **gargv = argv + first - 1;

    const char *pos[CLI_MAX_INPUTS + 1], *config = NULL;
    int npos = 0, opt, rc;
    unsigned used = 0; /* strict options seen, by index in options[] */
    opterr = 0;
    optind = 0; /* glibc: start afresh (a second parse in one process) */
    /* "-" first: positionals come back in order as 1, whatever POSIXLY_CORRECT says. */
    for (;;) {
        /* The element getopt is in: with "-" first it never permutes, and
         * inside a bundle of short options optind stays on it. */
        const char *cur = gargv[optind ? optind : 1];
        if ((opt = getopt_long(gargc, gargv, shorts, longopts, NULL)) == -1)
            break;
        if (opt == 1) {
            if (npos == CLI_MAX_INPUTS)
                return cli_error(TR_EINPUT, "more than %d input files", CLI_MAX_INPUTS);
            pos[npos++] = optarg;
            continue;
        }
        if (opt == ':') {
            const char *m = optopt >= 256 ? missing_value[optopt - 256] : NULL;
            if (m)
                return cli_error(TR_EINPUT, "%s", m);
            return cli_error(TR_EINPUT, "%s needs a thread count from 1 to 4096", cur);
        }
        if (opt == '?') {
            if (strncmp(cur, "--", 2))
                return cli_error(TR_EINPUT, "unknown option '-%c' (see --help)", optopt);
            return cli_error(TR_EINPUT, "unknown option '%s' (see --help)", cur);
        }
        const cli_option *o = find_option(opt);
        if (o->strict)
            used |= 1u << (o - options);
        if ((rc = take(a, opt, optarg, cur, &config)) != 0)
            return rc;
    }
    for (; optind < gargc; optind++) { /* after "--" */
        if (npos == CLI_MAX_INPUTS)
            return cli_error(TR_EINPUT, "more than %d input files", CLI_MAX_INPUTS);
        pos[npos++] = gargv[optind];
    }
    if (a->cmd != CMD_HELP && a->cmd != CMD_VERSION)
        for (size_t i = 0; i < NOPTIONS; i++)
            if ((used >> i & 1) && !(options[i].commands & ONLY(a->cmd)))
                return not_here(&options[i]);
    return take_positionals(a, pos, npos, config);
}
