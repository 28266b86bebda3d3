#include "config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "train.h"

typedef enum { K_INT, K_I64, K_DOUBLE, K_BOOL, K_PATH, K_ENUM } key_type;

typedef struct {
    const char *section, *key;
    key_type type;
    size_t offset;
    double min, max;
    const char *const *names; /* K_ENUM: value i is names[i] */
    const char *def;
} key_spec;

static const char *const normalize_names[] = { "zscore", "scale", "dataset", NULL };
static const char *const optimizer_names[] = { "sgd", "adam", "adamw", NULL };
static const char *const schedule_names[] = { "constant", "step", "cosine", NULL };
static const char *const init_names[] = { "lecun", "he", "xavier", NULL };
static const char *const progress_names[] = { "auto", "always", "never", NULL };
static const char *const layer_type_names[] = { "conv", "maxpool", "dense", NULL };
static const char *const activation_names[] = { "none", "relu", NULL };

#define F(field) offsetof(config, field)
#define BIG 1e18

/* The one place where keys, their ranges and their defaults are defined.
 * configs/default.ini repeats the defaults with their documentation, and a
 * test holds the two equal. */
static const key_spec keys[] = {
    { "data", "train_images", K_PATH, F(train_images), 0, 0, NULL, "data/mnist/train-images-idx3-ubyte.gz" },
    { "data", "train_labels", K_PATH, F(train_labels), 0, 0, NULL, "data/mnist/train-labels-idx1-ubyte.gz" },
    { "data", "test_images", K_PATH, F(test_images), 0, 0, NULL, "data/mnist/t10k-images-idx3-ubyte.gz" },
    { "data", "test_labels", K_PATH, F(test_labels), 0, 0, NULL, "data/mnist/t10k-labels-idx1-ubyte.gz" },
    { "data", "extra", K_PATH, F(extra), 0, 0, NULL, "" },
    { "data", "limit", K_I64, F(limit), 0, BIG, NULL, "0" },
    { "data", "test_limit", K_I64, F(test_limit), 0, BIG, NULL, "0" },
    { "data", "val_fraction", K_DOUBLE, F(val_fraction), 0, 0.9, NULL, "0" },
    { "data", "normalize", K_ENUM, F(normalize), 0, 0, normalize_names, "zscore" },
    { "data", "augment_shift", K_INT, F(augment_shift), 0, 8, NULL, "0" },
    { "model", "input_size", K_INT, F(input_size), 1, 4096, NULL, "28" },
    { "model", "classes", K_INT, F(classes), 2, 256, NULL, "10" },
    { "model", "init", K_ENUM, F(init), 0, 0, init_names, "lecun" },
    { "train", "epochs", K_INT, F(epochs), 1, 100000, NULL, "20" },
    { "train", "test_every", K_INT, F(test_every), 0, 100000, NULL, "1" },
    { "train", "batch_size", K_INT, F(batch_size), 1, 65536, NULL, "64" },
    { "train", "blocks", K_INT, F(blocks), 1, TRAIN_MAX_BLOCKS, NULL, "16" },
    { "train", "lr", K_DOUBLE, F(lr), 1e-12, 100, NULL, "0.05" },
    { "train", "seed", K_I64, F(seed), 0, BIG, NULL, "1" },
    { "train", "optimizer", K_ENUM, F(optimizer), 0, 0, optimizer_names, "sgd" },
    { "train", "momentum", K_DOUBLE, F(momentum), 0, 0.9999, NULL, "0.9" },
    { "train", "nesterov", K_BOOL, F(nesterov), 0, 1, NULL, "false" },
    { "train", "beta1", K_DOUBLE, F(beta1), 0, 0.9999, NULL, "0.9" },
    { "train", "beta2", K_DOUBLE, F(beta2), 0, 0.999999, NULL, "0.999" },
    { "train", "eps", K_DOUBLE, F(eps), 1e-30, 1, NULL, "1e-8" },
    { "train", "weight_decay", K_DOUBLE, F(weight_decay), 0, 1, NULL, "0.0005" },
    { "train", "schedule", K_ENUM, F(schedule), 0, 0, schedule_names, "cosine" },
    { "train", "step_epochs", K_INT, F(step_epochs), 1, 100000, NULL, "10" },
    { "train", "gamma", K_DOUBLE, F(gamma), 0, 1, NULL, "0.1" },
    { "train", "min_lr", K_DOUBLE, F(min_lr), 0, 100, NULL, "0" },
    { "train", "warmup_epochs", K_DOUBLE, F(warmup_epochs), 0, 100000, NULL, "0" },
    { "output", "model", K_PATH, F(model), 0, 0, NULL, "models/mnist.model" },
    { "output", "checkpoint", K_PATH, F(checkpoint), 0, 0, NULL, "" },
    { "output", "metrics", K_PATH, F(metrics), 0, 0, NULL, "models/mnist.metrics.csv" },
    { "output", "progress", K_ENUM, F(progress), 0, 0, progress_names, "auto" },
    { "output", "report", K_PATH, F(report), 0, 0, NULL, "" },
};
#define NKEYS (sizeof keys / sizeof keys[0])

enum { LK_TYPE, LK_FILTERS, LK_SIZE, LK_STRIDE, LK_OUTPUTS, LK_ACTIVATION, LK_LR_SCALE, LK_COUNT };

#define L(field) offsetof(layer_config, field)
static const key_spec layer_keys[LK_COUNT] = {
    [LK_TYPE] = { "layer", "type", K_ENUM, L(type), 0, 0, layer_type_names, NULL },
    [LK_FILTERS] = { "layer", "filters", K_INT, L(filters), 1, 4096, NULL, NULL },
    [LK_SIZE] = { "layer", "size", K_INT, L(size), 1, 64, NULL, NULL },
    [LK_STRIDE] = { "layer", "stride", K_INT, L(stride), 1, 64, NULL, NULL },
    [LK_OUTPUTS] = { "layer", "outputs", K_INT, L(outputs), 1, 1 << 20, NULL, NULL },
    [LK_ACTIVATION] = { "layer", "activation", K_ENUM, L(activation), 0, 0, activation_names, NULL },
    [LK_LR_SCALE] = { "layer", "lr_scale", K_DOUBLE, L(lr_scale), 0, 1000, NULL, NULL },
};

/* Which keys each layer type accepts (type itself always). */
static const unsigned layer_key_allowed[] = {
    [LAYER_CONV] = 1u << LK_FILTERS | 1u << LK_SIZE | 1u << LK_ACTIVATION | 1u << LK_LR_SCALE,
    [LAYER_MAXPOOL] = 1u << LK_SIZE | 1u << LK_STRIDE,
    [LAYER_DENSE] = 1u << LK_OUTPUTS | 1u << LK_ACTIVATION | 1u << LK_LR_SCALE,
};

/* The source post's network. */
static const char default_layers[] =
    "[layer.conv1]\ntype = conv\nfilters = 8\nsize = 5\nactivation = relu\nlr_scale = 1\n"
    "[layer.pool1]\ntype = maxpool\nsize = 2\nstride = 2\n"
    "[layer.conv2]\ntype = conv\nfilters = 16\nsize = 5\nactivation = relu\nlr_scale = 1\n"
    "[layer.pool2]\ntype = maxpool\nsize = 2\nstride = 2\n"
    "[layer.fc]\ntype = dense\noutputs = 10\nactivation = none\nlr_scale = 1\n";

static int set_enum(int *field, const key_spec *k, const char *value, char *msg, size_t msgsz)
{
    for (int i = 0; k->names[i]; i++) {
        if (!strcmp(value, k->names[i])) {
            *field = i;
            return 0;
        }
    }
    int n = snprintf(msg, msgsz, "'%s' must be one of", k->key);
    for (int i = 0; k->names[i] && n > 0 && (size_t)n < msgsz; i++)
        n += snprintf(msg + n, msgsz - (size_t)n, "%s %s", i ? "," : "", k->names[i]);
    if (n > 0 && (size_t)n < msgsz)
        snprintf(msg + n, msgsz - (size_t)n, ", not '%s'", value);
    return -1;
}

/* K_INT into an int, K_I64 into an int64_t, within [min, max]. */
static int set_integer(char *field, const key_spec *k, const char *value, char *msg, size_t msgsz)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (end == value || *end != '\0' || errno == ERANGE) {
        snprintf(msg, msgsz, "'%s' must be an integer, not '%s'", k->key, value);
        return -1;
    }
    if ((double)v < k->min || (double)v > k->max) {
        snprintf(msg, msgsz, "'%s' = %lld is out of range [%.0f, %.0f]", k->key, v, k->min, k->max);
        return -1;
    }
    if (k->type == K_INT)
        *(int *)field = (int)v;
    else
        *(int64_t *)field = v;
    return 0;
}

static int set_double(double *field, const key_spec *k, const char *value, char *msg, size_t msgsz)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    if (end == value || *end != '\0' || errno == ERANGE || !isfinite(v)) {
        snprintf(msg, msgsz, "'%s' must be a number, not '%s'", k->key, value);
        return -1;
    }
    if (v < k->min || v > k->max) {
        snprintf(msg, msgsz, "'%s' = %g is out of range [%g, %g]", k->key, v, k->min, k->max);
        return -1;
    }
    *field = v;
    return 0;
}

/* Parses VALUE into the field at BASE + spec->offset; MSG gets the reason. */
static int set_value(void *base, const key_spec *k, const char *value, char *msg, size_t msgsz)
{
    char *field = (char *)base + k->offset;
    switch (k->type) {
    case K_PATH: {
        /* Lines longer than inih's buffer are read by read_line, so the
         * field's own size is the only limit. */
        int max = CONFIG_PATH_MAX - 1;
        if (strlen(value) > (size_t)max) {
            snprintf(msg, msgsz, "path for '%s' is longer than %d bytes", k->key, max);
            return -1;
        }
        strcpy(field, value);
        return 0;
    }
    case K_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1"))
            *(int *)field = 1;
        else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0"))
            *(int *)field = 0;
        else {
            snprintf(msg, msgsz, "'%s' must be true or false, not '%s'", k->key, value);
            return -1;
        }
        return 0;
    case K_ENUM:
        return set_enum((int *)field, k, value, msg, msgsz);
    case K_INT:
    case K_I64:
        return set_integer(field, k, value, msg, msgsz);
    case K_DOUBLE:
        return set_double((double *)field, k, value, msg, msgsz);
    }
    return -1;
}

typedef struct {
    config *cfg;
    const char *name; /* file name, or "--set" */
    int line;         /* line of the key being handled (0 for --set) */
    int section_line; /* line of the last [section] header */
    int from_file;
    int err_line;     /* line of the first error in msg */
    unsigned seen[(NKEYS + 31) / 32];
    char msg[512];
    char *long_value; /* the value of a line too long for inih (read_line) */
} parse_state;

static layer_config *find_or_add_layer(parse_state *ps, const char *lname)
{
    config *c = ps->cfg;
    if (ps->from_file && c->layers_are_default) {
        c->nlayers = 0;
        c->layers_are_default = 0;
    }
    for (int i = 0; i < c->nlayers; i++)
        if (!strcmp(c->layers[i].name, lname))
            return &c->layers[i];
    if (!ps->from_file) {
        snprintf(ps->msg, sizeof ps->msg, "no layer named '%s' (layers are added in a config file)", lname);
        return NULL;
    }
    if (c->nlayers == CONFIG_MAX_LAYERS) {
        snprintf(ps->msg, sizeof ps->msg, "more than %d layers", CONFIG_MAX_LAYERS);
        return NULL;
    }
    if (strlen(lname) == 0 || strlen(lname) >= CONFIG_NAME_MAX) {
        snprintf(ps->msg, sizeof ps->msg, "layer name '%s' must have 1 to %d characters", lname,
                 CONFIG_NAME_MAX - 1);
        return NULL;
    }
    layer_config *l = &c->layers[c->nlayers++];
    memset(l, 0, sizeof *l);
    strcpy(l->name, lname);
    l->type = -1;
    l->activation = -1;
    l->lr_scale = 1.0;
    l->line = ps->section_line ? ps->section_line : ps->line;
    return l;
}

static int handle_layer_key(parse_state *ps, const char *lname, const char *key, const char *value)
{
    layer_config *l = find_or_add_layer(ps, lname);
    if (!l)
        return 0;
    for (int i = 0; i < LK_COUNT; i++) {
        if (strcmp(layer_keys[i].key, key))
            continue;
        if (ps->from_file && l->key_lines[i]) {
            snprintf(ps->msg, sizeof ps->msg, "duplicate key '%s' in [layer.%s] (first set on line %d)",
                     key, lname, l->key_lines[i]);
            return 0;
        }
        if (set_value(l, &layer_keys[i], value, ps->msg, sizeof ps->msg) != 0)
            return 0;
        l->key_lines[i] = ps->line ? ps->line : -1;
        return 1;
    }
    snprintf(ps->msg, sizeof ps->msg, "unknown key '%s' in [layer.%s]", key, lname);
    return 0;
}

static int handle_key(parse_state *ps, const char *section, const char *key, const char *value)
{
    if (!strncmp(section, "layer.", 6))
        return handle_layer_key(ps, section + 6, key, value);
    int section_known = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].section, section))
            continue;
        section_known = 1;
        if (strcmp(keys[i].key, key))
            continue;
        if (ps->from_file && (ps->seen[i / 32] >> (i % 32) & 1)) {
            snprintf(ps->msg, sizeof ps->msg, "duplicate key '%s' in [%s]", key, section);
            return 0;
        }
        ps->seen[i / 32] |= 1u << (i % 32);
        return set_value(ps->cfg, &keys[i], value, ps->msg, sizeof ps->msg) == 0;
    }
    if (!section_known)
        snprintf(ps->msg, sizeof ps->msg, "unknown section [%s]", section);
    else
        snprintf(ps->msg, sizeof ps->msg, "unknown key '%s' in [%s]", key, section);
    return 0;
}

/* libinih does not pass line numbers to the handler in Debian's build, so
 * we count them ourselves by reading through a line-counting reader. */
typedef struct {
    const char *text;
    size_t pos;
    parse_state *ps;
} string_reader;

static int section_known(const char *name)
{
    if (!strncmp(name, "layer.", 6))
        return name[6] != '\0';
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].section, name))
            return 1;
    return 0;
}

/* inih's inline comment: ';' at the start or after white space. */
static const char *inline_comment(const char *s, const char *end)
{
    for (const char *p = s; p < end; p++)
        if (*p == ';' && (p == s || p[-1] == ' ' || p[-1] == '\t'))
            return p;
    return end;
}

/* A line longer than inih's buffer (num - 2 characters): a comment becomes
 * an empty line; "key = value" is handed on as "key = -" with the value,
 * cut as inih would cut it, kept in ps->long_value for ini_callback. */
static int shorten_long_line(parse_state *ps, const char *line, size_t len, char *str, int num)
{
    if (line[0] == ';' || line[0] == '#') {
        snprintf(str, (size_t)num, "\n");
        return 0;
    }
    const char *end = line + len, *sep = line;
    while (sep < end && *sep != '=' && *sep != ':' && *sep != ';')
        sep++;
    const char *key_end = sep;
    while (key_end > line && (key_end[-1] == ' ' || key_end[-1] == '\t'))
        key_end--;
    if (line[0] == '[' || sep == end || *sep == ';' || key_end - line > 128) {
        snprintf(ps->msg, sizeof ps->msg, "%s of %zu characters",
                 line[0] == '[' ? "section header too long: a line"
                 : sep == end || *sep == ';' ? "expected 'key = value', got a line"
                                             : "key too long: a line", len);
        return -1;
    }
    const char *v = sep + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    const char *v_end = inline_comment(v, end);
    while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t' || v_end[-1] == '\r'))
        v_end--;
    free(ps->long_value);
    ps->long_value = strndup(v, (size_t)(v_end - v));
    if (!ps->long_value) {
        snprintf(ps->msg, sizeof ps->msg, "out of memory");
        return -1;
    }
    snprintf(str, (size_t)num, "%.*s = -\n", (int)(key_end - line), line);
    return 0;
}

static char *read_line(char *str, int num, void *stream)
{
    string_reader *r = stream;
    parse_state *ps = r->ps;
    free(ps->long_value);
    ps->long_value = NULL;
    /* Stop at our first error, so the message keeps its line. */
    if (ps->msg[0] || r->text[r->pos] == '\0' || num < 2)
        return NULL;
    const char *line = r->text + r->pos;
    size_t len = strcspn(line, "\n");
    r->pos += len + (line[len] == '\n');
    ps->line++;
    /* Leading white space is dropped: inih would read an indented line as
     * the continuation of the value above it. */
    while (len > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    if (len + 2 > (size_t)num) {
        if (shorten_long_line(ps, line, len, str, num) != 0) {
            ps->err_line = ps->line;
            return NULL;
        }
    } else {
        memcpy(str, line, len);
        str[len] = '\n';
        str[len + 1] = '\0';
    }
    const char *p = str;
    if (*p == '[') {
        ps->section_line = ps->line;
        /* Checked at the header, so an empty misspelt section ([trian])
         * is caught too, not only one with keys. */
        const char *close = strchr(p, ']');
        if (close) {
            char name[128];
            size_t nlen = (size_t)(close - p - 1);
            snprintf(name, sizeof name, "%.*s", (int)(nlen < sizeof name ? nlen : sizeof name - 1), p + 1);
            if (!section_known(name)) {
                snprintf(ps->msg, sizeof ps->msg, "unknown section [%s]", name);
                ps->err_line = ps->line;
                return NULL;
            }
        }
    }
    return str;
}

static int ini_callback(void *user, const char *section, const char *key, const char *value)
{
    parse_state *ps = user;
    if (ps->msg[0])
        return 0; /* keep the first error */
    int ok = handle_key(ps, section, key, ps->long_value ? ps->long_value : value);
    if (!ok)
        ps->err_line = ps->line;
    return ok;
}

static int parse_text(config *c, const char *text, const char *name, tr_error *err)
{
    parse_state ps = { .cfg = c, .name = name, .from_file = 1 };
    string_reader r = { text, 0, &ps };
    int rc = ini_parse_stream(read_line, &r, ini_callback, &ps);
    free(ps.long_value);
    if (rc < 0)
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory while parsing", name);
    if (rc == 0 && !ps.msg[0])
        return 0;
    /* inih's own syntax errors leave no message; one before our first error
     * is the one to report. */
    if (rc > 0 && rc != ps.err_line)
        return tr_fail(err, TR_EINPUT, "%s:%d: expected '[section]' or 'key = value'", name, rc);
    return tr_fail(err, TR_EINPUT, "%s:%d: %s", name, ps.err_line, ps.msg);
}

int config_parse_string(config *c, const char *text, const char *name, tr_error *err)
{
    snprintf(c->source, sizeof c->source, "%s", name);
    return parse_text(c, text, name, err);
}

int config_load(config *c, const char *path, tr_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = files_read_text(path, "config", &text, &len, err);
    if (rc != 0)
        return rc;
    snprintf(c->source, sizeof c->source, "%s", path);
    rc = parse_text(c, text, path, err);
    free(text);
    return rc;
}

int config_set(config *c, const char *assignment, tr_error *err)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = eq ? memchr(assignment, '.', (size_t)(eq - assignment)) : NULL;
    if (!eq || !dot)
        return tr_fail(err, TR_EINPUT, "--set %s: expected section.key=value", assignment);
    /* The key is after the last dot before '=', so layer.conv1.filters works. */
    const char *last_dot = dot;
    for (const char *p = dot; p < eq; p++)
        if (*p == '.')
            last_dot = p;
    char section[128], key[128];
    size_t slen = (size_t)(last_dot - assignment), klen = (size_t)(eq - last_dot - 1);
    if (slen == 0 || klen == 0 || slen >= sizeof section || klen >= sizeof key)
        return tr_fail(err, TR_EINPUT, "--set %s: expected section.key=value", assignment);
    memcpy(section, assignment, slen);
    section[slen] = '\0';
    memcpy(key, last_dot + 1, klen);
    key[klen] = '\0';
    parse_state ps = { .cfg = c, .name = "--set" };
    if (!handle_key(&ps, section, key, eq + 1))
        return tr_fail(err, TR_EINPUT, "--set %s: %s", assignment, ps.msg);
    return 0;
}

void config_defaults(config *c)
{
    memset(c, 0, sizeof *c);
    char msg[256];
    for (size_t i = 0; i < NKEYS; i++)
        if (set_value(c, &keys[i], keys[i].def, msg, sizeof msg) != 0)
            abort(); /* a wrong default in the table above is a programming error */
    tr_error err = { 0 };
    if (parse_text(c, default_layers, "built-in layers", &err) != 0)
        abort();
    c->source[0] = '\0';
    for (int i = 0; i < c->nlayers; i++) {
        c->layers[i].line = 0;
        memset(c->layers[i].key_lines, 0, sizeof c->layers[i].key_lines);
    }
    c->layers_are_default = 1;
}

int config_layer_activation(const layer_config *l)
{
    if (l->activation >= 0)
        return l->activation;
    return l->type == LAYER_CONV ? ACT_RELU : ACT_NONE;
}

const char *config_layer_kind_name(int kind)
{
    return kind >= 0 && kind <= LAYER_DENSE ? layer_type_names[kind] : "?";
}

const char *config_optimizer_name(int optimizer)
{
    return optimizer >= 0 && optimizer <= OPT_ADAMW ? optimizer_names[optimizer] : "?";
}

const char *config_schedule_name(int schedule)
{
    return schedule >= 0 && schedule <= SCHED_COSINE ? schedule_names[schedule] : "?";
}

const char *config_activation_name(int act)
{
    return act >= 0 && act <= ACT_RELU ? activation_names[act] : "?";
}

int config_layer_fail(const config *c, const layer_config *l, tr_error *err, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (c->source[0] && l->line > 0)
        return tr_fail(err, TR_EINPUT, "%s:%d: layer '%s': %s", c->source, l->line, l->name, what);
    return tr_fail(err, TR_EINPUT, "layer '%s': %s", l->name, what);
}

int config_validate(const config *c, tr_error *err)
{
    const char *src = c->source[0] ? c->source : "config";
    if (c->nlayers == 0)
        return tr_fail(err, TR_EINPUT, "%s: no [layer.*] sections", src);
    for (int i = 0; i < c->nlayers; i++) {
        const layer_config *l = &c->layers[i];
        if (l->type < 0)
            return config_layer_fail(c, l, err, "no 'type'");
        for (int k = LK_FILTERS; k < LK_COUNT; k++)
            if (l->key_lines[k] && !(layer_key_allowed[l->type] >> k & 1)) {
                layer_config at = *l;
                at.line = l->key_lines[k];
                return config_layer_fail(c, &at, err, "'%s' does not apply to a %s layer", layer_keys[k].key,
                                         layer_type_names[l->type]);
            }
        if (l->type == LAYER_CONV && (l->filters <= 0 || l->size <= 0))
            return config_layer_fail(c, l, err, "a conv layer needs 'filters' and 'size'");
        if (l->type == LAYER_MAXPOOL && l->size <= 0)
            return config_layer_fail(c, l, err, "a maxpool layer needs 'size'");
        if (l->type == LAYER_DENSE && l->outputs <= 0)
            return config_layer_fail(c, l, err, "a dense layer needs 'outputs'");
    }
    const layer_config *last = &c->layers[c->nlayers - 1];
    if (last->type != LAYER_DENSE || last->outputs != c->classes)
        return config_layer_fail(c, last, err, "the last layer must be dense with outputs = %d (model.classes)",
                                 c->classes);
    if (c->augment_shift > 0 && c->input_size > 64)
        return tr_fail(err, TR_EINPUT, "%s: data.augment_shift needs model.input_size <= 64", src);
    if (c->batch_size > 0 && c->limit > 0 && c->limit < c->batch_size)
        return tr_fail(err, TR_EINPUT, "%s: data.limit (%lld) is smaller than train.batch_size (%d)", src,
                       (long long)c->limit, c->batch_size);
    return 0;
}

static void write_value(FILE *f, const void *base, const key_spec *k)
{
    const char *field = (const char *)base + k->offset;
    switch (k->type) {
    case K_PATH: fprintf(f, "%s = %s\n", k->key, field); break;
    case K_BOOL: fprintf(f, "%s = %s\n", k->key, *(const int *)field ? "true" : "false"); break;
    case K_ENUM: fprintf(f, "%s = %s\n", k->key, k->names[*(const int *)field]); break;
    case K_INT: fprintf(f, "%s = %d\n", k->key, *(const int *)field); break;
    case K_I64: fprintf(f, "%s = %lld\n", k->key, (long long)*(const int64_t *)field); break;
    case K_DOUBLE: fprintf(f, "%s = %.17g\n", k->key, *(const double *)field); break;
    }
}

int config_write(const config *c, FILE *f, int with_output)
{
    const char *section = "";
    for (size_t i = 0; i < NKEYS; i++) {
        if (!with_output && !strcmp(keys[i].section, "output"))
            continue;
        if (strcmp(section, keys[i].section)) {
            section = keys[i].section;
            fprintf(f, "%s[%s]\n", i ? "\n" : "", section);
        }
        write_value(f, c, &keys[i]);
    }
    for (int i = 0; i < c->nlayers; i++) {
        layer_config l = c->layers[i];
        l.activation = config_layer_activation(&l);
        fprintf(f, "\n[layer.%s]\n", l.name);
        write_value(f, &l, &layer_keys[LK_TYPE]);
        for (int k = LK_FILTERS; k < LK_COUNT; k++) {
            if (!(layer_key_allowed[l.type] >> k & 1))
                continue;
            if (k == LK_STRIDE && l.stride == 0)
                l.stride = l.size;
            write_value(f, &l, &layer_keys[k]);
        }
    }
    return ferror(f) ? -1 : 0;
}

/* A key's value as config_write writes it, without the "key = ". */
static void format_value(char *buf, size_t size, const void *base, const key_spec *k)
{
    const char *field = (const char *)base + k->offset;
    switch (k->type) {
    case K_PATH: snprintf(buf, size, "%s", field); break;
    case K_BOOL: snprintf(buf, size, "%s", *(const int *)field ? "true" : "false"); break;
    case K_ENUM: snprintf(buf, size, "%s", k->names[*(const int *)field]); break;
    case K_INT: snprintf(buf, size, "%d", *(const int *)field); break;
    case K_I64: snprintf(buf, size, "%lld", (long long)*(const int64_t *)field); break;
    case K_DOUBLE: {
        /* The shortest text that reads back to the same double: 0.05, not
         * 0.050000000000000003; equal texts still mean equal values. */
        double v = *(const double *)field;
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
        break;
    }
    }
}

static int skipped(const char *name, const char *const *skip)
{
    for (; skip && *skip; skip++) {
        size_t n = strlen(*skip);
        if ((*skip)[n - 1] == '.' ? !strncmp(name, *skip, n) : !strcmp(name, *skip))
            return 1;
    }
    return 0;
}

/* Appends "NAME (A, now B)" to OUT. */
static void note_diff(char *out, size_t size, int *count, const char *name, const char *a, const char *b)
{
    size_t used = strlen(out);
    if (used + 1 < size)
        snprintf(out + used, size - used, "%s%s (%.40s%s, now %.40s%s)", *count ? ", " : "", name, a,
                 strlen(a) > 40 ? "..." : "", b, strlen(b) > 40 ? "..." : "");
    ++*count;
}

int config_diff(const config *a, const config *b, const char *const *skip, char *out, size_t size)
{
    int count = 0;
    char va[CONFIG_PATH_MAX + 32], vb[CONFIG_PATH_MAX + 32], name[128];
    if (size)
        out[0] = '\0';
    for (size_t i = 0; i < NKEYS; i++) {
        snprintf(name, sizeof name, "%s.%s", keys[i].section, keys[i].key);
        format_value(va, sizeof va, a, &keys[i]);
        format_value(vb, sizeof vb, b, &keys[i]);
        if (strcmp(va, vb) && !skipped(name, skip))
            note_diff(out, size, &count, name, va, vb);
    }
    if (a->nlayers != b->nlayers) {
        snprintf(va, sizeof va, "%d", a->nlayers);
        snprintf(vb, sizeof vb, "%d", b->nlayers);
        if (!skipped("layers", skip))
            note_diff(out, size, &count, "layers", va, vb);
        return count;
    }
    for (int i = 0; i < a->nlayers; i++) {
        /* As config_write sees them: the default activation and stride filled in. */
        layer_config la = a->layers[i], lb = b->layers[i];
        la.activation = config_layer_activation(&la);
        lb.activation = config_layer_activation(&lb);
        if (la.type == LAYER_MAXPOOL && la.stride == 0)
            la.stride = la.size;
        if (lb.type == LAYER_MAXPOOL && lb.stride == 0)
            lb.stride = lb.size;
        if (strcmp(la.name, lb.name)) {
            snprintf(name, sizeof name, "layer %d", i + 1);
            if (!skipped(name, skip))
                note_diff(out, size, &count, name, la.name, lb.name);
            continue;
        }
        for (int k = 0; k < LK_COUNT; k++) {
            if (k != LK_TYPE && !(layer_key_allowed[la.type] >> k & 1) && !(layer_key_allowed[lb.type] >> k & 1))
                continue;
            snprintf(name, sizeof name, "layer.%s.%s", la.name, layer_keys[k].key);
            format_value(va, sizeof va, &la, &layer_keys[k]);
            format_value(vb, sizeof vb, &lb, &layer_keys[k]);
            if (strcmp(va, vb) && !skipped(name, skip))
                note_diff(out, size, &count, name, va, vb);
        }
    }
    return count;
}
