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

/* commands: where the option has effect, and the only commands that
 * accept it: getopt_long runs on each command's own rows, and an option of
 * another command is refused naming where it applies. --help prints the
 * commands before the help text of an option not taken by every command. */
#define FOR_CONFIG (ONLY(CMD_TRAIN) | ONLY(CMD_EVAL) | ONLY(CMD_INFO) | ONLY(CMD_PREDICT) | ONLY(CMD_REPORT))
#define EVALUATES (ONLY(CMD_TRAIN) | ONLY(CMD_EVAL) | ONLY(CMD_REPORT))
static const cli_option options[] = {
    { "set", OPT_SET, "SECTION.KEY=VALUE", "override a config key (layers: layer.NAME.KEY); repeatable", FOR_CONFIG },
    { "resume", OPT_RESUME, "CKPT", "continue training from a checkpoint", ONLY(CMD_TRAIN) },
    { "init", OPT_INIT, "MODEL", "start from MODEL's weights (warm start; same architecture)", ONLY(CMD_TRAIN) },
    { "threads", 'j', "N", "exactly N OpenMP threads (default: OMP_NUM_THREADS, at most one per CPU)", EVALUATES },
    { "quiet", 'q', NULL, "no per-epoch lines or progress bar, only the result (export: nothing)",
      ONLY(CMD_TRAIN) | ONLY(CMD_EVAL) | ONLY(CMD_EXPORT) },
    { "config", OPT_CONFIG, "CONFIG", "what a model trained from CONFIG would be made of", ONLY(CMD_INFO) },
    { "json", OPT_JSON, NULL, "JSON for scripts instead of text", ONLY(CMD_INFO) | ONLY(CMD_PREDICT) },
    { "metrics", OPT_METRICS, "CSV", "the metrics CSV (--metrics= for none)", ONLY(CMD_REPORT) },
    { "steps", OPT_STEPS, "CSV", "the per-step loss CSV", ONLY(CMD_REPORT) },
    { "out", OPT_OUT, "DIR", "the output folder (default: MODEL's folder/report)", ONLY(CMD_REPORT) },
    { "bare", OPT_BARE, NULL, "the network alone, normalised input in, logits out", ONLY(CMD_EXPORT) },
    { "preprocess", OPT_PREPROCESS, "mnist|none", "make pictures look like MNIST, or take them as they are",
      ONLY(CMD_PREDICT) },
    { "save-input", OPT_SAVE_INPUT, "DIR", "write what the network saw as PNG", ONLY(CMD_PREDICT) },
    { "help", 'h', NULL, "this text", ALL_COMMANDS },
    { "version", 'V', NULL, "the version", ALL_COMMANDS },
};
#define NOPTIONS (sizeof options / sizeof options[0])

const cli_option *cli_options(size_t *n)
{
    *n = NOPTIONS;
    return options;
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

/* The commands in MASK, in the table's order: "train, eval, report" (AS
 * LIST) or "'trainer info' and 'trainer predict'". */
static void command_list(unsigned mask, int as_list, char *out, size_t size)
{
    size_t n = 0, total = 0, k = 0;
    out[0] = '\0';
    for (size_t c = 0; c < NCOMMANDS; c++)
        total += (mask & ONLY(commands[c].cmd)) != 0;
    for (size_t c = 0; c < NCOMMANDS && n < size; c++) {
        if (!(mask & ONLY(commands[c].cmd)))
            continue;
        const char *sep = k == 0 ? "" : as_list ? ", " : k + 1 == total ? " and " : ", ";
        n += (size_t)snprintf(out + n, size - n, as_list ? "%s%s" : "%s'trainer %s'", sep, commands[c].word);
        k++;
    }
}

void cli_options_usage(FILE *f)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const cli_option *o = &options[i];
        char spelling[64], where[128] = "";
        int n = snprintf(spelling, sizeof spelling, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        if (o->val < 256)
            snprintf(spelling + n, sizeof spelling - (size_t)n, ", -%c%s%s", o->val, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        if (o->commands != ALL_COMMANDS)
            command_list(o->commands, 1, where, sizeof where);
        fprintf(f, "  %-24s %s%s%s\n", spelling, where, where[0] ? ": " : "", o->help);
    }
}

/* "--json applies to 'trainer info' and 'trainer predict' only" */
static int not_here(const cli_option *o)
{
    char where[256];
    command_list(o->commands, 0, where, sizeof where);
    return cli_error(TR_EINPUT, "--%s applies to %s only (see --help)", o->name, where);
}

/* The row an option getopt did not take for this command belongs to, if
 * any: ARG is the command-line element ("--name", "--name=V", a prefix of
 * one name, or a bundle of short options where SHORT is the letter). */
static const cli_option *other_commands_option(const char *arg, int short_letter)
{
    if (strncmp(arg, "--", 2)) {
        const cli_option *o = find_option(short_letter);
        return o && o->val < 256 ? o : NULL;
    }
    const char *name = arg + 2;
    size_t len = strcspn(name, "=");
    const cli_option *prefix_of = NULL;
    int prefixes = 0;
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (strncmp(options[i].name, name, len))
            continue;
        if (options[i].name[len] == '\0')
            return &options[i];
        prefix_of = &options[i];
        prefixes++;
    }
    return prefixes == 1 ? prefix_of : NULL;
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

/* getopt_long's tables for the commands in HERE: their rows only. SHORTS
 * starts "-:" (positionals in order as 1, whatever POSIXLY_CORRECT says;
 * ':' for a missing value). */
static void getopt_tables(unsigned here, struct option *longopts, char *shorts)
{
    size_t nlong = 0;
    char *s = shorts;
    *s++ = '-';
    *s++ = ':';
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (!(options[i].commands & here))
            continue;
        longopts[nlong++] = (struct option){ options[i].name, options[i].arg ? required_argument : no_argument,
                                             NULL, options[i].val };
        if (options[i].val < 256) {
            *s++ = (char)options[i].val;
            if (options[i].arg)
                *s++ = ':';
        }
    }
    *s = '\0';
    longopts[nlong] = (struct option){ 0 };
}

/* getopt_long's '?' or ':' for the element CUR: an option of another
 * command, a missing value, or an unknown option. Prints; returns the status. */
static int refuse(int opt, const char *cur, unsigned here)
{
    if (opt == ':') {
        const char *m = optopt >= 256 ? missing_value[optopt - 256] : NULL;
        if (m)
            return cli_error(TR_EINPUT, "%s", m);
        return cli_error(TR_EINPUT, "%s needs a thread count from 1 to 4096", cur);
    }
    const cli_option *o = other_commands_option(cur, optopt);
    if (o && !(o->commands & here))
        return not_here(o);
    if (strncmp(cur, "--", 2))
        return cli_error(TR_EINPUT, "unknown option '-%c' (see --help)", optopt);
    return cli_error(TR_EINPUT, "unknown option '%s' (see --help)", cur);
}

static int add_positional(const char **pos, int *npos, const char *arg)
{
    if (*npos == CLI_MAX_INPUTS)
        return cli_error(TR_EINPUT, "more than %d input files", CLI_MAX_INPUTS);
    pos[(*npos)++] = arg;
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
    /* getopt_long for this command, on the rows that apply to it (`trainer
     * help` ignores them all, so takes them all); it sees the command word as
     * its argv[0]. */
    const unsigned here = a->cmd == CMD_HELP ? ALL_COMMANDS : ONLY(a->cmd);
    struct option longopts[NOPTIONS + 1];
    char shorts[3 + 2 * NOPTIONS];
    getopt_tables(here, longopts, shorts);
    int gargc = argc - first + 1;
    char **gargv = argv + first - 1;

    const char *pos[CLI_MAX_INPUTS + 1], *config = NULL;
    int npos = 0, opt, rc;
    opterr = 0;
    optind = 0; /* glibc: start afresh (a second parse in one process) */
    for (;;) {
        /* The element getopt is in: with "-" first it never permutes, and
         * inside a bundle of short options optind stays on it. */
        const char *cur = gargv[optind ? optind : 1];
        if ((opt = getopt_long(gargc, gargv, shorts, longopts, NULL)) == -1)
            break;
        if (opt == '?' || opt == ':')
            return refuse(opt, cur, here);
        if ((rc = opt == 1 ? add_positional(pos, &npos, optarg) : take(a, opt, optarg, cur, &config)) != 0)
            return rc;
    }
    for (; optind < gargc; optind++) /* after "--" */
        if ((rc = add_positional(pos, &npos, gargv[optind])) != 0)
            return rc;
    return take_positionals(a, pos, npos, config);
}
