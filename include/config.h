/* config.h - the training configuration: an INI file (read with libinih),
 * plus `--set section.key=value` overrides. Every key, its type, range and
 * default live in one table in config.c; configs/default.ini documents them
 * and equals the built-in defaults. Layers are sections named [layer.NAME],
 * in file order. Errors name the file and line. */
#ifndef TRAINER_CONFIG_H
#define TRAINER_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"

#define CONFIG_MAX_LAYERS 16
#define CONFIG_PATH_MAX 1024
#define CONFIG_NAME_MAX 32

typedef enum { LAYER_CONV, LAYER_MAXPOOL, LAYER_DENSE } layer_kind;
typedef enum { ACT_NONE, ACT_RELU } activation_kind;
typedef enum { NORM_ZSCORE, NORM_SCALE, NORM_DATASET } normalize_kind;
typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } optimizer_kind;
typedef enum { SCHED_CONSTANT, SCHED_STEP, SCHED_COSINE } schedule_kind;
typedef enum { INIT_LECUN, INIT_HE, INIT_XAVIER } init_kind;
typedef enum { PROGRESS_AUTO, PROGRESS_ALWAYS, PROGRESS_NEVER } progress_kind;

typedef struct {
    char name[CONFIG_NAME_MAX];
    int type;       /* layer_kind */
    int filters;    /* conv: output channels */
    int size;       /* conv: kernel side; maxpool: window side */
    int stride;     /* maxpool */
    int outputs;    /* dense */
    int activation; /* activation_kind, conv and dense */
    double lr_scale;
    int line;       /* where the section starts, for messages */
    int key_lines[8]; /* where each key was set (0: not set), for messages */
} layer_config;

typedef struct {
    /* [data] */
    char train_images[CONFIG_PATH_MAX], train_labels[CONFIG_PATH_MAX];
    char test_images[CONFIG_PATH_MAX], test_labels[CONFIG_PATH_MAX];
    char extra[CONFIG_PATH_MAX]; /* directory of more training pairs (provenance.h); "" = none */
    int64_t limit, test_limit; /* use only the first N images; 0: all */
    double val_fraction;
    int normalize; /* normalize_kind */
    int augment_shift;
    /* [model] */
    int input_size, classes, init; /* init_kind */
    /* [train] */
    int epochs, batch_size;
    int blocks; /* gradient blocks per batch (train.h) */
    int test_every; /* test set after every N-th epoch and the last; 0: the last only */
    double lr;
    int64_t seed;
    int optimizer; /* optimizer_kind */
    double momentum;
    int nesterov;
    double beta1, beta2, eps, weight_decay;
    int schedule; /* schedule_kind */
    int step_epochs;
    double gamma, min_lr, warmup_epochs;
    /* [output] */
    char model[CONFIG_PATH_MAX], checkpoint[CONFIG_PATH_MAX], metrics[CONFIG_PATH_MAX];
    int progress; /* progress_kind */
    char report[CONFIG_PATH_MAX]; /* HTML report folder written after training; "" = none */
    /* [layer.*] */
    char source[CONFIG_PATH_MAX]; /* the file last parsed, for messages; "" for built-ins */
    int nlayers;
    int layers_are_default; /* a file's first [layer.*] replaces them */
    layer_config layers[CONFIG_MAX_LAYERS];
} config;

/* The built-in defaults: the source post's network, trained as
 * configs/default.ini says. */
void config_defaults(config *c);

/* Reads PATH over the current contents of C. Relative paths, in a file or in
 * --set, are relative to the working directory, as in every shell command;
 * scripts/retrain.sh changes to the right directory for cron. */
int config_load(config *c, const char *path, tr_error *err);

/* Parses TEXT (named NAME in messages), as config_load does a file. */
int config_parse_string(config *c, const char *text, const char *name, tr_error *err);

/* Applies one "section.key=value" override (layer keys: layer.NAME.key). */
int config_set(config *c, const char *assignment, tr_error *err);

/* Cross-key checks: at least one layer, the last one dense with `classes`
 * outputs, and so on. Shape checks are done by net_create. */
int config_validate(const config *c, tr_error *err);

/* Writes a validated config as INI text that config_parse_string reads back
 * to the same values. With with_output == 0 the [output] section is left out: the
 * model file stores the rest, so where a model is written does not change
 * its bytes. */
int config_write(const config *c, FILE *f, int with_output);

/* Lists in OUT, as "section.key (A, now B), ...", every key whose value
 * differs between A and B, [layer.*] keys included ("layers" when their
 * counts differ), except the names in SKIP (NULL-terminated: "section.key",
 * or "section." for a whole section). Returns how many differ. */
int config_diff(const config *a, const config *b, const char *const *skip, char *out, size_t size);

/* Fails with "SOURCE:LINE: layer 'NAME': MESSAGE" (source and line when the
 * layer came from a file), so shape errors point at the config. */
int config_layer_fail(const config *c, const layer_config *l, tr_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The activation a layer uses: its own, or its type's default (conv: relu,
 * dense: none). */
int config_layer_activation(const layer_config *l);

/* Names for messages and reports. */
const char *config_layer_kind_name(int kind);
const char *config_activation_name(int act);
const char *config_optimizer_name(int optimizer);
const char *config_schedule_name(int schedule);

#endif
