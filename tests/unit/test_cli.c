/* test_cli.c: the command line (cli_parse.c): every spelling of every
 * option in the table, "--", bundles, positionals, and --help listing the
 * table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tests.h"

static cli_args args;

/* Parses a NULL-terminated list after "trainer". */
static int parse(const char *first, ...)
{
    char *argv[32] = { "trainer" };
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        argv[argc++] = (char *)s;
    va_end(ap);
    argv[argc] = NULL;
    return cli_parse(argc, argv, &args);
}

static void test_spellings(void **state)
{
    (void)state;
    assert_int_equal(parse("train", "c.ini", "--set", "a.b=1", "--set=c.d=2", "--resume=x.ckpt", "-j", "3", NULL), 0);
    assert_int_equal(args.cmd, CMD_TRAIN);
    assert_string_equal(args.config, "c.ini");
    assert_int_equal(args.nsets, 2);
    assert_string_equal(args.sets[0], "a.b=1");
    assert_string_equal(args.sets[1], "c.d=2");
    assert_string_equal(args.resume, "x.ckpt");
    assert_int_equal(args.threads, 3);
    assert_int_equal(parse("--threads=7", "-q", NULL), 0);
    assert_int_equal(args.cmd, CMD_TRAIN);
    assert_null(args.config);
    assert_int_equal(args.threads, 7);
    assert_int_equal(args.quiet, 1);
    assert_int_equal(parse("-j=5", NULL), 0); /* the old parser took it */
    assert_int_equal(args.threads, 5);
    assert_int_equal(parse("-qj4", NULL), 0); /* bundled, value attached */
    assert_int_equal(args.quiet, 1);
    assert_int_equal(args.threads, 4);
    assert_int_equal(parse("report", "a.model", "--metrics=", "b.model", "--steps", "s.csv", "--out", "o", "c.model",
                           NULL), 0);
    assert_int_equal(args.cmd, CMD_REPORT);
    assert_string_equal(args.model, "a.model");
    assert_int_equal(args.ninputs, 2);
    assert_string_equal(args.inputs[1], "c.model");
    assert_string_equal(args.metrics, "");
    assert_string_equal(args.steps, "s.csv");
    assert_string_equal(args.out, "o");
    /* after "--" an argument that looks like an option is a file */
    assert_int_equal(parse("predict", "--json", "m.model", "--", "-q.png", "--bare", NULL), 0);
    assert_int_equal(args.json, 1);
    assert_int_equal(args.quiet, 0);
    assert_int_equal(args.bare, 0);
    assert_int_equal(args.ninputs, 2);
    assert_string_equal(args.inputs[0], "-q.png");
    assert_int_equal(parse("predict", "m", "i.png", "--preprocess", "none", "--save-input=d", NULL), 0);
    assert_string_equal(args.preprocess, "none");
    assert_string_equal(args.save_input, "d");
    assert_int_equal(parse("info", "--config", "c.ini", "--json", NULL), 0);
    assert_string_equal(args.config, "c.ini");
    assert_null(args.model);
    assert_int_equal(parse("export", "m", "o.onnx", "--bare", NULL), 0);
    assert_string_equal(args.onnx_out, "o.onnx");
    assert_int_equal(args.bare, 1);
    assert_int_equal(parse("eval", "m", "-h", NULL), 0);
    assert_int_equal(args.cmd, CMD_HELP);
    assert_int_equal(parse("-V", NULL), 0);
    assert_int_equal(args.cmd, CMD_VERSION);
}

static void test_refusals(void **state)
{
    (void)state;
    assert_int_equal(parse("--frobnicate", NULL), TR_EINPUT);
    assert_int_equal(parse("-qx", NULL), TR_EINPUT);
    assert_int_equal(parse("--quiet=1", NULL), TR_EINPUT);
    assert_int_equal(parse("--set", NULL), TR_EINPUT);
    assert_int_equal(parse("-j", "0", NULL), TR_EINPUT);
    assert_int_equal(parse("-j4097", NULL), TR_EINPUT);
    assert_int_equal(parse("eval", "--config", "c", "m", NULL), TR_EINPUT);
    assert_int_equal(parse("eval", "--json", "m", NULL), TR_EINPUT);
    assert_int_equal(parse("predict", "m", "x", "--preprocess=other", NULL), TR_EINPUT);
    assert_int_equal(parse("train", "a.ini", "b.ini", NULL), TR_EINPUT);
    assert_int_equal(parse("export", "m", NULL), TR_EINPUT);
    /* an option of another command, in each spelling, whatever follows */
    assert_int_equal(parse("eval", "m", "--bare", NULL), TR_EINPUT);
    assert_int_equal(parse("eval", "m", "--ba", NULL), TR_EINPUT);
    assert_int_equal(parse("predict", "m", "x.png", "-qj4", NULL), TR_EINPUT);
    assert_int_equal(parse("predict", "m", "x.png", "--threads=4", NULL), TR_EINPUT);
    assert_int_equal(parse("export", "m", "o", "--set", "data.limit=1", NULL), TR_EINPUT);
    assert_int_equal(parse("report", "m", "--preprocess", "none", NULL), TR_EINPUT);
    assert_int_equal(parse("--json", "-h", NULL), TR_EINPUT);
    /* and one of this command that getopt refuses for its syntax */
    assert_int_equal(parse("export", "m", "o", "--bare=1", NULL), TR_EINPUT);
}

/* Every row of the table is accepted in its long spelling (and short one)
 * and listed in --help. */
static void test_table(void **state)
{
    (void)state;
    size_t n;
    const cli_option *o = cli_options(&n);
    char *help = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&help, &size);
    assert_non_null(f);
    cli_usage(f);
    assert_int_equal(fclose(f), 0);
    const char *list = strstr(help, "\noptions:\n");
    assert_non_null(list);
    for (size_t i = 0; i < n; i++) {
        char line[80], opt[40];
        snprintf(line, sizeof line, "\n  --%s%s%s", o[i].name, o[i].arg ? " " : "", o[i].arg ? o[i].arg : "");
        if (!strstr(list, line))
            fail_msg("--help does not list --%s", o[i].name);
        /* Accepted on every command where it has effect (with that
         * command's positionals), refused on every other one. */
        static const struct {
            cli_command cmd;
            const char *argv[3];
        } uses[] = { { CMD_TRAIN, { "train" } },
                     { CMD_EVAL, { "eval", "m" } },
                     { CMD_INFO, { "info", "m" } },
                     { CMD_PREDICT, { "predict", "m", "x" } },
                     { CMD_REPORT, { "report", "m" } },
                     { CMD_EXPORT, { "export", "m", "o" } } };
        const char *value = !o[i].arg ? NULL : !strcmp(o[i].name, "preprocess") ? "none" : "2";
        int taken = 0;
        for (size_t u = 0; u < sizeof uses / sizeof uses[0]; u++) {
            const int here = (o[i].commands & 1u << uses[u].cmd) != 0;
            static const char *const no_positionals[2] = { NULL, NULL };
            const char *const *pos = !strcmp(o[i].name, "config") ? no_positionals : uses[u].argv + 1;
            const char *argv[6] = { uses[u].argv[0] }, **p = argv + 1;
            snprintf(opt, sizeof opt, "--%s", o[i].name);
            *p++ = opt;
            if (value)
                *p++ = value;
            for (int k = 0; k < 2 && pos[k]; k++)
                *p++ = pos[k];
            if ((parse(argv[0], argv[1], argv[2], argv[3], argv[4], NULL) == 0) != here)
                fail_msg("--%s %s on '%s'", o[i].name, here ? "refused" : "accepted", uses[u].argv[0]);
            if (o[i].val < 256) {
                snprintf(opt, sizeof opt, "-%c", o[i].val);
                if ((parse(argv[0], argv[1], argv[2], argv[3], argv[4], NULL) == 0) != here)
                    fail_msg("-%c %s on '%s'", o[i].val, here ? "refused" : "accepted", uses[u].argv[0]);
            }
            taken += here;
        }
        if (!taken)
            fail_msg("--%s has effect nowhere", o[i].name);
    }
    free(help);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_spellings),
    cmocka_unit_test(test_refusals),
    cmocka_unit_test(test_table),
};
TEST_GROUP(cli_group, tests);
