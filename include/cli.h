/* cli.h - the commands behind the command line. main.c parses the
 * arguments into a cli_args; these functions run a command, print its
 * output and errors, and return the process exit status (0 success,
 * 1 runtime failure, 2 bad usage/config/data, 130/143 interrupted). */
#ifndef TRAINER_CLI_H
#define TRAINER_CLI_H

#include <stdio.h>

#define CLI_MAX_SETS 64
#define CLI_MAX_INPUTS 1024

typedef enum { CMD_TRAIN, CMD_EVAL, CMD_PREDICT, CMD_REPORT, CMD_HELP, CMD_VERSION, CMD_INFO, CMD_EXPORT } cli_command;

typedef struct {
    cli_command cmd;
    const char *config; /* train: CONFIG or NULL for the default one; info: --config CONFIG */
    const char *model;  /* eval, predict */
    const char *resume;
    const char *init; /* train: warm start from this model */
    const char *metrics; /* report: metrics CSV */
    const char *steps;   /* report: per-step loss CSV */
    const char *out;     /* report: output folder */
    const char *sets[CLI_MAX_SETS];
    int nsets;
    const char *inputs[CLI_MAX_INPUTS]; /* predict */
    int ninputs;
    int threads; /* 0: OMP_NUM_THREADS or one per CPU, at most the CPUs (threads.h) */
    int quiet;
    int json;    /* info, predict: JSON instead of text */
    const char *argv0;
    /* export */
    const char *onnx_out;
    int bare; /* the network alone: normalised input, logits */
    /* predict */
    const char *preprocess; /* "mnist", "none" or NULL: by file type */
    const char *save_input; /* folder for what the network saw */
    int argc; /* the whole command line, for the report */
    char **argv;
} cli_args;

/* cli_parse.c: fills *a from the command line (getopt_long: --opt VALUE,
 * --opt=VALUE, -j N, -jN, bundled short options, "--" before positionals).
 * Returns 0, or an exit status after printing the error. */
int cli_parse(int argc, char **argv, cli_args *a);

/* One row of the option table that cli_parse and --help share. */
typedef struct {
    const char *name; /* long name, without "--" */
    int val;          /* the short letter, or 256 and up for none */
    const char *arg;  /* the value's name in --help, NULL: takes none */
    const char *help;
    unsigned commands; /* bit (1 << cli_command) where it has effect; refused elsewhere */
} cli_option;

const cli_option *cli_options(size_t *n);
/* --help's option list, one line per row of the table. */
void cli_options_usage(FILE *f);

int cli_train(const cli_args *a);
int cli_eval(const cli_args *a);
int cli_predict(const cli_args *a);
int cli_report(const cli_args *a);
/* info.c: provenance and fingerprint of a model (a->model) or of a config
 * (a->config plus a->sets). */
int cli_info(const cli_args *a);
int cli_export(const cli_args *a);
void cli_usage(FILE *f);
int cli_version(void);

/* Call first: keeps closed standard streams' numbers from being reused. */
void cli_start(void);

/* Flushes and closes standard output; a write to it that failed (now or
 * before) is reported as "write error" and turns RC 0 into 1. */
int cli_finish(int rc);

/* Prints "trainer: MESSAGE" to stderr and returns CODE. */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
