/* test_config.c - the INI config: configs/default.ini equals the built-in
 * defaults; every mistake is refused with FILE:LINE; --set overrides;
 * config_write output reads back to itself; impossible layer stacks are
 * refused by net_create with the layer's name. */
#include "tests.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "network.h"

static void assert_same_config(const config *a, const config *b, int with_output)
{
    char *ta = config_text(a, with_output), *tb = config_text(b, with_output);
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
}

static void default_ini_equals_defaults(void **state)
{
    (void)state;
    config def, file;
    config_defaults(&def);
    config_defaults(&file);
    /* Parsed over something else, so a key the file forgot would show. */
    tr_error err = { 0 };
    assert_ok(config_set(&file, "train.lr=0.777", &err), &err);
    assert_ok(config_set(&file, "output.metrics=elsewhere.csv", &err), &err);
    assert_ok(config_set(&file, "layer.conv1.filters=3", &err), &err);
    assert_ok(config_load(&file, "configs/default.ini", &err), &err);
    assert_same_config(&def, &file, 1);
    assert_int_equal(file.nlayers, 5);
    assert_int_equal(file.layers_are_default, 0);
    assert_int_equal(file.layers[0].line > 0, 1); /* layers from a file know their line */
    /* A few values spelled out, so equal-but-wrong defaults would show. */
    assert_int_equal(def.input_size, 28);
    assert_int_equal(def.classes, 10);
    assert_int_equal(def.batch_size, 64);
    assert_true(def.lr == 0.05);
    assert_string_equal(def.layers[0].name, "conv1");
    assert_int_equal(def.layers[0].filters, 8);
    assert_int_equal(def.layers[4].outputs, 10);
}

/* Parses TEXT as NAME expecting failure with "NAME:LINE:" and WORD. */
static void expect_parse_error(const char *text, int line, const char *word)
{
    config c;
    config_defaults(&c);
    tr_error err = { 0 };
    char where[64];
    snprintf(where, sizeof where, "bad.ini:%d:", line);
    assert_fails(config_parse_string(&c, text, "bad.ini", &err), &err, TR_EINPUT, where, word);
}

static void config_errors_name_file_and_line(void **state)
{
    (void)state;
    expect_parse_error("[train]\nlr = 0.1\nbogus = 1\n", 3, "unknown key 'bogus'");
    /* An unknown section is reported at its header, even an empty one. */
    expect_parse_error("; comment\n[data]\nlimit = 5\n\n[nonsense]\nx = 1\n", 5, "unknown section [nonsense]");
    expect_parse_error("[train]\nlr = 0.1\n[layer]\ntype = conv\n", 3, "unknown section [layer]");
    expect_parse_error("[train]\nlr = 0.1\n[trian]\n", 3, "unknown section [trian]");
    expect_parse_error("[train]\nlr = 0.1\nepochs = 2\n\nlr = 0.2\n", 5, "duplicate key 'lr'");
    expect_parse_error("[train]\nlr = 0.1\n[model]\nclasses = 10\n[train]\nlr = 0.2\n", 6, "duplicate key 'lr'");
    expect_parse_error("[train]\n\nlr = 0.1x\n", 3, "'lr' must be a number");
    expect_parse_error("[train]\nepochs = 2.5\n", 2, "'epochs' must be an integer");
    expect_parse_error("[train]\nepochs =\n", 2, "'epochs' must be an integer");
    expect_parse_error("[data]\nlimit = 99999999999999999999999\n", 2, "'limit' must be an integer");
    expect_parse_error("[train]\nlr = nan\n", 2, "'lr' must be a number");
    expect_parse_error("[train]\nlr = -0.1\n", 2, "out of range");
    expect_parse_error("[train]\nepochs = 3\nbatch_size = 0\n", 3, "out of range");
    expect_parse_error("[model]\nclasses = 1\n", 2, "out of range");
    expect_parse_error("[train]\n\n\noptimizer = sgdd\n", 4, "'optimizer' must be one of sgd, adam, adamw");
    expect_parse_error("[train]\nnesterov = maybe\n", 2, "true or false");
    expect_parse_error("[train]\nthis line is not ini\n", 2, "expected");
    expect_parse_error("[train]\nlr = 0.1\n[model\n", 3, "expected");
    /* The first error is reported, with its own message. */
    expect_parse_error("[train]\nnot ini\nbogus = 1\n", 2, "expected '[section]' or 'key = value'");
    expect_parse_error("[train]\nbogus = 1\nnot ini\n", 2, "unknown key 'bogus'");
    expect_parse_error("[layer.a]\ntype = conv\nfilters = 4\nfilters = 5\n", 4, "duplicate key 'filters'");
    expect_parse_error("[layer.a]\ntype = conv\nkernel = 4\n", 3, "unknown key 'kernel' in [layer.a]");
    expect_parse_error("[layer.a]\ntype = softmax\n", 2, "'type' must be one of");
    expect_parse_error("[layer.a]\ntype = conv\nsize = 0\n", 3, "out of range");
}

/* CRLF line endings and comments are fine; a file on disk is named by its path. */
static void config_file_on_disk(void **state)
{
    (void)state;
    char *dir = tmpdir_make();
    const char *p = path_in(dir, "crlf.ini");
    const char *text = "; CRLF\r\n[train]\r\nlr = 0.25 ; inline comment\r\nepochs = 3\r\n";
    write_file(p, text, strlen(text));
    config c;
    config_defaults(&c);
    tr_error err = { 0 };
    assert_ok(config_load(&c, p, &err), &err);
    assert_true(c.lr == 0.25);
    assert_int_equal(c.epochs, 3);
    const char *q = path_in(dir, "bad.ini");
    text = "[train]\nlr = 0.25\n\n[model]\ninit = glorot\n";
    write_file(q, text, strlen(text));
    char where[2100];
    snprintf(where, sizeof where, "%s:5:", q);
    assert_fails(config_load(&c, q, &err), &err, TR_EINPUT, where, "'init'");
    err = (tr_error){ 0 };
    assert_fails(config_load(&c, path_in(dir, "missing.ini"), &err), &err, TR_EINPUT, "missing.ini");
    tmpdir_remove(dir);
    free(dir);
}

static void config_set_overrides(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    tr_error err = { 0 };
    assert_ok(config_parse_string(&c, "[train]\nlr = 0.1\n", "x.ini", &err), &err);
    assert_ok(config_set(&c, "train.lr=0.2", &err), &err);
    assert_true(c.lr == 0.2);
    assert_ok(config_set(&c, "train.optimizer=adamw", &err), &err);
    assert_int_equal(c.optimizer, OPT_ADAMW);
    assert_ok(config_set(&c, "data.train_images=/some where/x.gz", &err), &err);
    assert_string_equal(c.train_images, "/some where/x.gz");
    assert_ok(config_set(&c, "layer.conv1.filters=16", &err), &err);
    assert_int_equal(c.layers[0].filters, 16);
    assert_int_equal(c.nlayers, 5);
    network net;
    assert_ok(net_create(&net, &c, &err), &err);
    assert_int_equal(net.layers[0].out_c, 16);
    assert_int_equal(net.layers[2].in_c, 16);
    assert_int_equal(net.nparams, (16 * 25 + 16) + (16 * 16 * 25 + 16) + (256 * 10 + 10));
    net_free(&net);

    config before = c;
    assert_fails(config_set(&c, "train.bogus=1", &err), &err, TR_EINPUT, "train.bogus=1", "unknown key 'bogus'");
    err = (tr_error){ 0 };
    assert_fails(config_set(&c, "nosuch.lr=1", &err), &err, TR_EINPUT, "unknown section");
    err = (tr_error){ 0 };
    assert_fails(config_set(&c, "lr=1", &err), &err, TR_EINPUT, "section.key=value");
    err = (tr_error){ 0 };
    assert_fails(config_set(&c, "train.lr", &err), &err, TR_EINPUT, "section.key=value");
    err = (tr_error){ 0 };
    assert_fails(config_set(&c, "train.lr=fast", &err), &err, TR_EINPUT, "'lr' must be a number");
    err = (tr_error){ 0 };
    assert_fails(config_set(&c, "train.batch_size=0", &err), &err, TR_EINPUT, "out of range");
    err = (tr_error){ 0 };
    assert_fails(config_set(&c, "layer.conv9.filters=3", &err), &err, TR_EINPUT, "no layer named 'conv9'");
    err = (tr_error){ 0 };
    assert_fails(config_set(&c, "layer.conv1.outputs_x=3", &err), &err, TR_EINPUT, "unknown key");
    assert_memory_equal(&before, &c, sizeof c); /* a refused --set changes nothing */
    /* --set may repeat a key: the last one wins. */
    assert_ok(config_set(&c, "train.epochs=3", &err), &err);
    assert_ok(config_set(&c, "train.epochs=4", &err), &err);
    assert_int_equal(c.epochs, 4);
}

/* Every value of A and B, field by field (not through config_write, which
 * could lose a value on both sides alike). */
static void assert_same_values(const config *a, const config *b, int with_output)
{
    assert_string_equal(a->train_images, b->train_images);
    assert_string_equal(a->train_labels, b->train_labels);
    assert_string_equal(a->test_images, b->test_images);
    assert_string_equal(a->test_labels, b->test_labels);
    assert_true(a->limit == b->limit && a->test_limit == b->test_limit);
    assert_true(a->val_fraction == b->val_fraction);
    assert_int_equal(a->normalize, b->normalize);
    assert_int_equal(a->augment_shift, b->augment_shift);
    assert_int_equal(a->input_size, b->input_size);
    assert_int_equal(a->classes, b->classes);
    assert_int_equal(a->init, b->init);
    assert_int_equal(a->epochs, b->epochs);
    assert_int_equal(a->batch_size, b->batch_size);
    assert_true(a->lr == b->lr && a->seed == b->seed);
    assert_int_equal(a->optimizer, b->optimizer);
    assert_true(a->momentum == b->momentum && a->beta1 == b->beta1 && a->beta2 == b->beta2);
    assert_true(a->eps == b->eps && a->weight_decay == b->weight_decay);
    assert_int_equal(a->nesterov, b->nesterov);
    assert_int_equal(a->schedule, b->schedule);
    assert_int_equal(a->step_epochs, b->step_epochs);
    assert_true(a->gamma == b->gamma && a->min_lr == b->min_lr && a->warmup_epochs == b->warmup_epochs);
    if (with_output) {
        assert_string_equal(a->model, b->model);
        assert_string_equal(a->checkpoint, b->checkpoint);
        assert_string_equal(a->metrics, b->metrics);
        assert_int_equal(a->progress, b->progress);
    }
    assert_int_equal(a->nlayers, b->nlayers);
    for (int i = 0; i < a->nlayers; i++) {
        const layer_config *x = &a->layers[i], *y = &b->layers[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->type, y->type);
        assert_int_equal(config_layer_activation(x), config_layer_activation(y));
        assert_true(x->lr_scale == y->lr_scale);
        if (x->type == LAYER_CONV) {
            assert_int_equal(x->filters, y->filters);
            assert_int_equal(x->size, y->size);
        } else if (x->type == LAYER_MAXPOOL) {
            assert_int_equal(x->size, y->size);
            assert_int_equal(x->stride ? x->stride : x->size, y->stride ? y->stride : y->size);
        } else {
            assert_int_equal(x->outputs, y->outputs);
        }
    }
}

/* config_write output reads back to the same output, for the defaults and
 * for a config that changes every section. */
static void config_write_round_trip(void **state)
{
    (void)state;
    const char *custom =
        "[data]\ntrain_images = dir with spaces/train.gz\nlimit = 1234\nval_fraction = 0.1\n"
        "normalize = dataset\naugment_shift = 2\n"
        "[model]\ninput_size = 20\nclasses = 7\ninit = xavier\n"
        "[train]\nepochs = 3\nbatch_size = 50\nlr = 0.0123456789012345\nseed = 987654321987\n"
        "optimizer = adamw\nnesterov = yes\nbeta2 = 0.98\neps = 1e-7\nweight_decay = 0\n"
        "schedule = step\nstep_epochs = 2\ngamma = 0.3333333333333333\nwarmup_epochs = 0.5\n"
        "[output]\nmodel = out/m.model\ncheckpoint = out/m.ckpt\nmetrics =\nprogress = never\n"
        "[layer.c]\ntype = conv\nfilters = 3\nsize = 3\nactivation = none\nlr_scale = 0.5\n"
        "[layer.p]\ntype = maxpool\nsize = 3\nstride = 2\n"
        "[layer.h]\ntype = dense\noutputs = 12\nactivation = relu\n"
        "[layer.out]\ntype = dense\noutputs = 7\n";
    for (int t = 0; t < 2; t++) {
        config a, b;
        config_defaults(&a);
        tr_error err = { 0 };
        if (t == 1) {
            assert_ok(config_parse_string(&a, custom, "custom.ini", &err), &err);
            assert_int_equal(a.nlayers, 4);
            assert_int_equal(a.layers[1].stride, 2);
            assert_int_equal(a.nesterov, 1);
        }
        for (int with_output = 0; with_output < 2; with_output++) {
            char *text = config_text(&a, with_output);
            config_defaults(&b);
            assert_ok(config_parse_string(&b, text, "written.ini", &err), &err);
            char *again = config_text(&b, with_output);
            assert_string_equal(text, again);
            assert_same_config(&a, &b, with_output);
            assert_same_values(&a, &b, with_output);
            free(text);
            free(again);
        }
        assert_true(b.lr == a.lr && b.gamma == a.gamma && b.seed == a.seed);
        /* Without [output], the output keys are left as they were. */
        char *text = config_text(&a, 0);
        assert_null(strstr(text, "[output]"));
        free(text);
        network net;
        assert_ok(net_create(&net, &b, &err), &err);
        net_free(&net);
    }
}

/* Every path config_set accepts survives config_write and
 * config_parse_string, as it must for a model file to be read back; a path
 * too long for that is refused up front, naming the key. */
static void config_long_path_round_trip(void **state)
{
    (void)state;
    const size_t lengths[] = { 150, 183, 184, 300, 1023, 1024, 1500 };
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        config a, b;
        config_defaults(&a);
        char path[1600], assignment[1700];
        memset(path, 'p', lengths[k]);
        path[0] = '/';
        path[lengths[k]] = '\0';
        snprintf(assignment, sizeof assignment, "data.train_images=%s", path);
        tr_error err = { 0 };
        int rc = config_set(&a, assignment, &err);
        if (lengths[k] <= 1023)
            assert_ok(rc, &err); /* every path the field holds round-trips */
        if (rc != 0) {
            assert_fails(rc, &err, TR_EINPUT, "train_images");
            continue;
        }
        char *text = config_text(&a, 1);
        config_defaults(&b);
        rc = config_parse_string(&b, text, "long.ini", &err);
        free(text);
        assert_ok(rc, &err);
        assert_string_equal(b.train_images, path);
    }
}

/* Lines longer than inih's 200-character buffer are read whole: a long
 * comment, a long path (up to the field's 1023 bytes, with an inline
 * comment), never split into two lines; the line numbers after them hold. */
static void config_long_lines_read(void **state)
{
    (void)state;
    char text[4000], pad[1024];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    snprintf(text, sizeof text, "[train]\nlr = 0.1\n; %s\n# %s\n[data]\nmetrics_x = 1\n", pad, pad);
    expect_parse_error(text, 6, "unknown key 'metrics_x'");
    pad[1022] = '\0'; /* with the leading '/': 1023 bytes */
    snprintf(text, sizeof text, "; %s\n[data]\n  train_images = /%s   ; a comment\nlimit = 7\n", pad, pad);
    config c;
    config_defaults(&c);
    tr_error err = { 0 };
    assert_ok(config_parse_string(&c, text, "long.ini", &err), &err);
    assert_int_equal(strlen(c.train_images), 1023);
    assert_int_equal(c.train_images[0], '/');
    assert_int_equal(c.limit, 7);
    /* One byte more than the field holds: refused, naming the line. */
    snprintf(text, sizeof text, "[data]\ntrain_images = //%s\n", pad);
    config_defaults(&c);
    assert_fails(config_parse_string(&c, text, "long.ini", &err), &err, TR_EINPUT, "long.ini:2:", "1023");
    /* A long line that is no 'key = value' is refused on its line. */
    snprintf(text, sizeof text, "[data]\nlimit = 3\n%s\n", pad);
    expect_parse_error(text, 3, "expected 'key = value'");
}

/* An indented line is a key of its own, not the continuation of the value
 * above it (inih's multi-line values). */
static void config_indented_keys(void **state)
{
    (void)state;
    config c;
    config_defaults(&c);
    tr_error err = { 0 };
    assert_ok(config_parse_string(&c, "[train]\nepochs = 3\n  lr = 0.25\n\tbatch_size = 7\n", "ind.ini", &err), &err);
    assert_int_equal(c.epochs, 3);
    assert_true(c.lr == 0.25);
    assert_int_equal(c.batch_size, 7);
    /* A real continuation line (no '=') is an error on its own line. */
    expect_parse_error("[train]\nepochs = 3\n   4\n", 3, "expected");
}

/* config_diff names each differing key with both values, skips what it is
 * told to, and sees layer keys and layer counts. */
static void config_diff_lists_keys(void **state)
{
    (void)state;
    config a, b;
    config_defaults(&a);
    config_defaults(&b);
    tr_error err = { 0 };
    const char *const skip[] = { "train.epochs", "output.", NULL };
    char out[1024];
    assert_int_equal(config_diff(&a, &b, skip, out, sizeof out), 0);
    assert_string_equal(out, "");
    const char *sets[] = { "train.batch_size=1024", "data.limit=500", "layer.conv1.lr_scale=0.5",
                           "train.epochs=7", "output.model=x.model", "output.metrics=" };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        assert_ok(config_set(&b, sets[i], &err), &err);
    assert_int_equal(config_diff(&a, &b, skip, out, sizeof out), 3);
    assert_non_null(strstr(out, "train.batch_size (64, now 1024)"));
    assert_non_null(strstr(out, "data.limit (0, now 500)"));
    assert_non_null(strstr(out, "layer.conv1.lr_scale (1, now 0.5)"));
    assert_null(strstr(out, "epochs"));
    assert_null(strstr(out, "output"));
    /* Without the skip list the epochs and outputs count too. */
    assert_int_equal(config_diff(&a, &b, NULL, out, sizeof out), 6);
    /* A different layer stack. */
    config_defaults(&b);
    assert_ok(config_parse_string(&b, "[layer.fc]\ntype = dense\noutputs = 10\n", "one.ini", &err), &err);
    assert_int_equal(config_diff(&a, &b, skip, out, sizeof out), 1);
    assert_non_null(strstr(out, "layers (5, now 1)"));
}

/* Builds a network from LAYERS (over the defaults) expecting net_create to
 * fail naming the layer NAME. */
static void expect_stack_refused(const char *layers, const char *name, const char *word)
{
    config c;
    config_defaults(&c);
    tr_error err = { 0 };
    assert_ok(config_parse_string(&c, layers, "stack.ini", &err), &err);
    network net;
    assert_fails(net_create(&net, &c, &err), &err, TR_EINPUT, name, word);
    assert_null(net.params);
}

static void impossible_stacks_refused(void **state)
{
    (void)state;
    expect_stack_refused("[layer.bigconv]\ntype = conv\nfilters = 2\nsize = 30\n"
                         "[layer.fc]\ntype = dense\noutputs = 10\n",
                         "bigconv", "kernel 30 is larger than its 28x28 input");
    expect_stack_refused("[layer.c1]\ntype = conv\nfilters = 2\nsize = 25\n"
                         "[layer.widepool]\ntype = maxpool\nsize = 5\n"
                         "[layer.fc]\ntype = dense\noutputs = 10\n",
                         "widepool", "window 5 is larger than its 4x4 input");
    expect_stack_refused("[layer.c1]\ntype = conv\nfilters = 2\nsize = 5\n"
                         "[layer.fcfive]\ntype = dense\noutputs = 5\n",
                         "fcfive", "must be dense with outputs = 10");
    expect_stack_refused("[layer.c1]\ntype = conv\nfilters = 2\nsize = 5\n"
                         "[layer.lastpool]\ntype = maxpool\nsize = 2\n",
                         "lastpool", "must be dense");
    expect_stack_refused("[layer.c1]\ntype = conv\nfilters = 2\nsize = 3\n"
                         "[layer.fc1]\ntype = dense\noutputs = 20\n"
                         "[layer.lateconv]\ntype = conv\nfilters = 2\nsize = 1\n"
                         "[layer.fc2]\ntype = dense\noutputs = 10\n",
                         "lateconv", "cannot follow a dense layer");
    expect_stack_refused("[layer.c1]\ntype = conv\nfilters = 2\nsize = 3\n"
                         "[layer.fc1]\ntype = dense\noutputs = 20\n"
                         "[layer.latepool]\ntype = maxpool\nsize = 1\n"
                         "[layer.fc2]\ntype = dense\noutputs = 10\n",
                         "latepool", "cannot follow a dense layer");
    expect_stack_refused("[layer.notype]\nfilters = 2\n"
                         "[layer.fc]\ntype = dense\noutputs = 10\n",
                         "notype", "no 'type'");
    expect_stack_refused("[layer.nofilters]\ntype = conv\nsize = 3\n"
                         "[layer.fc]\ntype = dense\noutputs = 10\n",
                         "nofilters", "needs 'filters'");
    expect_stack_refused("[layer.poolfilt]\ntype = maxpool\nsize = 2\nfilters = 3\n"
                         "[layer.fc]\ntype = dense\noutputs = 10\n",
                         "poolfilt", "'filters' does not apply");
    /* 10 outputs of 4096 x 24 x 24 inputs each: too many weights, not "too
     * large (10 x 1 x 1 outputs)". */
    expect_stack_refused("[layer.wide]\ntype = conv\nfilters = 4096\nsize = 5\n"
                         "[layer.fc]\ntype = dense\noutputs = 10\n",
                         "fc", "has too many weights: 23592960");
    /* The default stack's shapes. */
    config c;
    config_defaults(&c);
    network net;
    tr_error err = { 0 };
    assert_ok(net_create(&net, &c, &err), &err);
    const int shapes[5][3] = { { 8, 24, 24 }, { 8, 12, 12 }, { 16, 8, 8 }, { 16, 4, 4 }, { 10, 1, 1 } };
    for (int i = 0; i < 5; i++) {
        assert_int_equal(net.layers[i].out_c, shapes[i][0]);
        assert_int_equal(net.layers[i].out_h, shapes[i][1]);
        assert_int_equal(net.layers[i].out_w, shapes[i][2]);
    }
    assert_int_equal(net.nparams, 208 + 3216 + 2570);
    assert_int_equal(net.layers[4].in_size, 256);
    net_free(&net);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(default_ini_equals_defaults),
    cmocka_unit_test(config_errors_name_file_and_line),
    cmocka_unit_test(config_file_on_disk),
    cmocka_unit_test(config_set_overrides),
    cmocka_unit_test(config_write_round_trip),
    cmocka_unit_test(config_long_path_round_trip),
    cmocka_unit_test(config_long_lines_read),
    cmocka_unit_test(config_indented_keys),
    cmocka_unit_test(config_diff_lists_keys),
    cmocka_unit_test(impossible_stacks_refused),
};
TEST_GROUP(config_group, tests);
