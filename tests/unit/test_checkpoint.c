/* test_checkpoint.c - model files: a checkpoint round-trips parameters,
 * optimizer state and training position bit for bit; a model is not a
 * checkpoint; any damage is caught (CRC-32, magic, version, length); files
 * are published atomically. */
#include "tests.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "checkpoint.h"

/* 1x6x6 -> conv 2x3x3 -> 2x4x4 -> pool -> 2x2x2 -> dense 10: 110 parameters,
 * small enough to flip every byte of its file. */
static const char tiny_layers[] = "[model]\ninput_size = 6\n"
                                  "[layer.c]\ntype = conv\nfilters = 2\nsize = 3\n"
                                  "[layer.p]\ntype = maxpool\nsize = 2\n"
                                  "[layer.fc]\ntype = dense\noutputs = 10\n";

typedef struct {
    config cfg;
    network net;
    optimizer opt;
    train_state st;
} model;

/* A network with random parameters and, for optimizer OPT_NAME, random state. */
static void model_make(model *m, int tiny, const char *opt_name, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    config_defaults(&m->cfg);
    tr_error err = { 0 };
    if (tiny)
        assert_ok(config_parse_string(&m->cfg, tiny_layers, "tiny", &err), &err);
    char set[64];
    snprintf(set, sizeof set, "train.optimizer=%s", opt_name);
    assert_ok(config_set(&m->cfg, set, &err), &err);
    assert_ok(config_set(&m->cfg, "train.lr=0.0123", &err), &err);
    assert_ok(net_create(&m->net, &m->cfg, &err), &err);
    fill_uniform(m->net.params, m->net.nparams, -1, 1, seed);
    assert_ok(optim_create(&m->opt, &m->cfg, m->net.nparams, &err), &err);
    for (int i = 0; i < m->opt.nstate; i++)
        fill_uniform(m->opt.state[i], m->opt.n, i == 1 ? 0 : -1, 1, seed + 1 + (uint64_t)i); /* Adam's v >= 0 */
    m->opt.t = 1891;
    m->st = (train_state){ .epoch = 3, .batch = 17, .step = 1891, .loss_sum = 123.456789,
                           .correct = 1000, .seen = 1088, .best_val = 0.987654321, .best_epoch = 2 };
}

static void model_free(model *m)
{
    net_free(&m->net);
    optim_free(&m->opt);
}

static void assert_same_model(const model *a, const model *b, int with_state)
{
    char *ta = config_text(&a->cfg, 0), *tb = config_text(&b->cfg, 0);
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
    assert_int_equal(a->net.nparams, b->net.nparams);
    assert_memory_equal(a->net.params, b->net.params, a->net.nparams * sizeof(float));
    if (!with_state)
        return;
    assert_int_equal(b->opt.kind, a->opt.kind);
    assert_int_equal(b->opt.nstate, a->opt.nstate);
    assert_int_equal(b->opt.n, a->opt.n);
    assert_int_equal(b->opt.t, a->opt.t);
    for (int i = 0; i < a->opt.nstate; i++)
        assert_memory_equal(a->opt.state[i], b->opt.state[i], a->opt.n * sizeof(float));
    assert_memory_equal(&a->st, &b->st, sizeof a->st);
}

static void checkpoint_round_trip(void **state)
{
    const char *dir = *state;
    const char *opts[] = { "sgd", "adam", "adamw" };
    for (int o = 0; o < 3; o++) {
        model a, b;
        model_make(&a, 0, opts[o], 10 + (uint64_t)o);
        const char *p = path_in(dir, "run.ckpt");
        tr_error err = { 0 };
        assert_ok(checkpoint_save(p, &a.cfg, &a.net, &a.opt, &a.st, &err), &err);
        memset(&b, 0, sizeof b);
        assert_ok(checkpoint_load(p, &b.cfg, &b.net, &b.opt, &b.st, &err), &err);
        assert_same_model(&a, &b, 1);
        assert_int_equal(b.opt.nstate, o == 0 ? 1 : 2);
        assert_true(b.cfg.lr == 0.0123);
        /* A checkpoint also loads as a plain model. */
        model c;
        memset(&c, 0, sizeof c);
        assert_ok(checkpoint_load(p, &c.cfg, &c.net, NULL, NULL, &err), &err);
        assert_same_model(&a, &c, 0);
        /* Saving what was loaded gives the same bytes. */
        size_t l1, l2;
        uint8_t *f1 = read_file(p, &l1);
        assert_ok(checkpoint_save(p, &b.cfg, &b.net, &b.opt, &b.st, &err), &err);
        uint8_t *f2 = read_file(p, &l2);
        assert_int_equal(l1, l2);
        assert_memory_equal(f1, f2, l1);
        free(f1);
        free(f2);
        model_free(&a);
        model_free(&b);
        model_free(&c);
    }
}

static void model_is_not_a_checkpoint(void **state)
{
    const char *dir = *state;
    model a, b;
    model_make(&a, 0, "sgd", 20);
    const char *p = path_in(dir, "final.model");
    tr_error err = { 0 };
    assert_ok(checkpoint_save(p, &a.cfg, &a.net, NULL, NULL, &err), &err);
    memset(&b, 0, sizeof b);
    assert_ok(checkpoint_load(p, &b.cfg, &b.net, NULL, NULL, &err), &err);
    assert_same_model(&a, &b, 0);
    net_free(&b.net);
    assert_fails(checkpoint_load(p, &b.cfg, &b.net, &b.opt, &b.st, &err), &err, TR_EINPUT, p,
                 "without training state");
    assert_null(b.net.params);
    assert_null(b.opt.state[0]);
    /* A model file is smaller than the checkpoint of the same network. */
    const char *q = path_in(dir, "run.ckpt");
    assert_ok(checkpoint_save(q, &a.cfg, &a.net, &a.opt, &a.st, &err), &err);
    struct stat sm, sc;
    assert_int_equal(stat(p, &sm), 0);
    assert_int_equal(stat(q, &sc), 0);
    assert_true(sc.st_size > sm.st_size + (off_t)(a.net.nparams * sizeof(float)));
    model_free(&a);
}

/* Loads PATH as a checkpoint expecting failure with WORD in the message. */
static void expect_load_fails(const char *path, const char *word)
{
    model b;
    memset(&b, 0, sizeof b);
    tr_error err = { 0 };
    assert_fails(checkpoint_load(path, &b.cfg, &b.net, &b.opt, &b.st, &err), &err, TR_EINPUT, path, word);
    assert_null(b.net.params);
    assert_null(b.opt.state[0]);
}

/* Flipping any one byte of a file is caught. */
static void checkpoint_every_byte_flip_caught(void **state)
{
    const char *dir = *state;
    model a;
    model_make(&a, 1, "adam", 30);
    const char *p = path_in(dir, "tiny.ckpt");
    tr_error err = { 0 };
    assert_ok(checkpoint_save(p, &a.cfg, &a.net, &a.opt, &a.st, &err), &err);
    size_t len;
    uint8_t *orig = read_file(p, &len);
    assert_true(len > 8 + 12 + 110 * 4 * 3);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, orig, len);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        write_file(p, copy, len);
        expect_load_fails(p, i < 8 ? "bad magic" : "CRC-32 mismatch");
    }
    /* The default network's file is large; flip a spread of its bytes. */
    model big;
    model_make(&big, 0, "sgd", 31);
    assert_ok(checkpoint_save(p, &big.cfg, &big.net, &big.opt, &big.st, &err), &err);
    free(orig);
    free(copy);
    orig = read_file(p, &len);
    copy = malloc(len);
    assert_non_null(copy);
    rng_t r = rng_seed(3, 3, 3);
    for (int k = 0; k < 200; k++) {
        size_t i = k == 0 ? len - 1 : 8 + rng_below(&r, (uint32_t)(len - 8));
        memcpy(copy, orig, len);
        copy[i] ^= 0x80;
        write_file(p, copy, len);
        expect_load_fails(p, "CRC-32 mismatch");
    }
    free(orig);
    free(copy);
    model_free(&a);
    model_free(&big);
}

static void checkpoint_damage_refused(void **state)
{
    const char *dir = *state;
    model a;
    model_make(&a, 1, "sgd", 40);
    const char *p = path_in(dir, "m.ckpt");
    tr_error err = { 0 };
    assert_ok(checkpoint_save(p, &a.cfg, &a.net, &a.opt, &a.st, &err), &err);
    size_t len;
    uint8_t *orig = read_file(p, &len);
    const char *q = path_in(dir, "damaged.ckpt");
    /* Truncated anywhere. */
    const size_t cuts[] = { 0, 1, 7, 8, 12, 31, 32, 100, len / 2, len - 5, len - 4, len - 1 };
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        write_file(q, orig, cuts[k]);
        expect_load_fails(q, cuts[k] == 0 ? "empty" : cuts[k] < 32 ? "short" : "CRC-32");
    }
    /* Wrong magic, and some other file entirely. */
    uint8_t *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, orig, len);
    memcpy(copy, "TRAINCNX", 8);
    write_file(q, copy, len);
    expect_load_fails(q, "bad magic");
    const char idx[] = "\x00\x00\x08\x03 lots of image bytes follow here, at least 32 of them";
    write_file(q, idx, sizeof idx - 1);
    expect_load_fails(q, "bad magic");
    /* One byte too many (its CRC is then wrong too). */
    memcpy(copy, orig, len);
    copy[len] = 0;
    write_file(q, copy, len + 1);
    expect_load_fails(q, "CRC-32");
    free(copy);
    free(orig);
    model_free(&a);
}

/* Rewrites the CRC-32 trailer of DATA after an edit. */
static void fix_crc(uint8_t *data, size_t len)
{
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, (uInt)(len - 4));
    for (int i = 0; i < 4; i++)
        data[len - 4 + i] = (uint8_t)(crc >> (8 * i));
}

/* Edits that keep the CRC valid: caught by the version and by the checks
 * behind it. */
static void checkpoint_version_and_consistency(void **state)
{
    const char *dir = *state;
    model a;
    model_make(&a, 1, "adam", 50);
    const char *p = path_in(dir, "m.ckpt");
    tr_error err = { 0 };
    assert_ok(checkpoint_save(p, &a.cfg, &a.net, &a.opt, &a.st, &err), &err);
    size_t len;
    uint8_t *orig = read_file(p, &len);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    const char *q = path_in(dir, "edited.ckpt");
    assert_int_equal(orig[8], MODEL_VERSION);

    memcpy(copy, orig, len);
    copy[8] = 3; /* version, little-endian */
    fix_crc(copy, len);
    write_file(q, copy, len);
    expect_load_fails(q, "version 3");

    /* The stored config says 3 filters where the weights are for 2. */
    memcpy(copy, orig, len);
    char *f = memmem(copy, len, "filters = 2", 11);
    assert_non_null(f);
    f[10] = '3';
    fix_crc(copy, len);
    write_file(q, copy, len);
    expect_load_fails(q, "parameters");

    /* A config the trainer would refuse. */
    memcpy(copy, orig, len);
    f = memmem(copy, len, "lr = ", 5);
    assert_non_null(f);
    f[5] = '-';
    fix_crc(copy, len);
    write_file(q, copy, len);
    expect_load_fails(q, "out of range");

    /* The optimizer kind in the state disagrees with the config. */
    memcpy(copy, orig, len);
    f = memmem(copy, len, "optimizer = adam\n", 17);
    assert_non_null(f);
    memcpy(f, "optimizer = sgd \n", 17);
    fix_crc(copy, len);
    write_file(q, copy, len);
    expect_load_fails(q, "optimizer state");
    free(copy);
    free(orig);
    model_free(&a);
}

/* Nothing but the published file is left in the directory, on success and
 * on failure; a gzipped model is read too. */
static void checkpoint_atomic_write(void **state)
{
    const char *dir = *state;
    model a, b;
    model_make(&a, 0, "sgd", 60);
    const char *p = path_in(dir, "m.model");
    tr_error err = { 0 };
    assert_ok(checkpoint_save(p, &a.cfg, &a.net, NULL, NULL, &err), &err);
    assert_int_equal(count_dir_entries(dir), 1);
    fill_uniform(a.net.params, a.net.nparams, -1, 1, 61);
    assert_ok(checkpoint_save(p, &a.cfg, &a.net, NULL, NULL, &err), &err); /* replaces */
    assert_int_equal(count_dir_entries(dir), 1);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    memset(&b, 0, sizeof b);
    assert_ok(checkpoint_load(p, &b.cfg, &b.net, NULL, NULL, &err), &err);
    assert_same_model(&a, &b, 0);
    net_free(&b.net);

    /* Into a missing directory: refused, naming the path. */
    const char *missing = path_in(dir, "no/such/dir/m.model");
    assert_fails(checkpoint_save(missing, &a.cfg, &a.net, NULL, NULL, &err), &err, TR_ERUNTIME, missing);
    assert_int_equal(count_dir_entries(dir), 1);
    err = (tr_error){ 0 };
    assert_ok(make_parent_dirs(missing, &err), &err);
    assert_ok(checkpoint_save(missing, &a.cfg, &a.net, NULL, NULL, &err), &err);
    assert_int_equal(count_dir_entries(path_in(dir, "no/such/dir")), 1);

    /* atomic_write_file on its own. */
    const char *t = path_in(dir, "report.txt");
    assert_ok(atomic_write_file(t, "hello\n", 6, &err), &err);
    size_t len;
    uint8_t *back = read_file(t, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(back, "hello\n", 6);
    free(back);
    assert_int_equal(count_dir_entries(dir), 3); /* m.model, no/, report.txt */

    /* gzip -c m.model > m.model.gz still loads. */
    uint8_t *raw = read_file(p, &len);
    size_t zlen;
    uint8_t *z = gzip_bytes(raw, len, &zlen);
    const char *gz = path_in(dir, "m.model.gz");
    write_file(gz, z, zlen);
    memset(&b, 0, sizeof b);
    assert_ok(checkpoint_load(gz, &b.cfg, &b.net, NULL, NULL, &err), &err);
    assert_same_model(&a, &b, 0);
    net_free(&b.net);
    free(raw);
    free(z);
    model_free(&a);
}

/* A provenance with two data files and every field set. */
static provenance prov_make(void)
{
    provenance p;
    memset(&p, 0, sizeof p);
    strcpy(p.version, "9.8.7");
    p.seed = 42;
    p.epochs = 3;
    p.test_accuracy = 0.9876;
    p.test_correct = 9876;
    p.test_total = 10000;
    p.created = 1700000000;
    p.train_seconds = 12.5;
    p.nfiles = 2;
    p.files = calloc(2, sizeof *p.files);
    assert_non_null(p.files);
    strcpy(p.files[0].role, "train_images");
    strcpy(p.files[0].path, "data/x-images.gz");
    strcpy(p.files[1].role, "train_labels");
    strcpy(p.files[1].path, "data/x \"labels\".gz");
    for (int i = 0; i < DIGEST_SIZE; i++) {
        p.files[0].sha256[i] = (uint8_t)i;
        p.files[1].sha256[i] = (uint8_t)(255 - i);
    }
    p.files[0].count = 60000;
    p.files[1].count = 60001;
    return p;
}

static void assert_same_provenance(const provenance *a, const provenance *b)
{
    assert_string_equal(a->version, b->version);
    assert_int_equal(a->seed, b->seed);
    assert_int_equal(a->epochs, b->epochs);
    assert_true(a->test_accuracy == b->test_accuracy);
    assert_int_equal(a->test_correct, b->test_correct);
    assert_int_equal(a->test_total, b->test_total);
    assert_int_equal(a->created, b->created);
    assert_true(a->train_seconds == b->train_seconds);
    assert_int_equal(a->nfiles, b->nfiles);
    for (size_t i = 0; i < a->nfiles; i++) {
        assert_string_equal(a->files[i].role, b->files[i].role);
        assert_string_equal(a->files[i].path, b->files[i].path);
        assert_memory_equal(a->files[i].sha256, b->files[i].sha256, DIGEST_SIZE);
        assert_int_equal(a->files[i].count, b->files[i].count);
    }
}

/* Provenance round-trips in a model and in a checkpoint (read as a
 * checkpoint and as a model); the run's times are the last 20 bytes. */
static void provenance_round_trip(void **state)
{
    const char *dir = *state;
    model a, b;
    model_make(&a, 1, "adam", 70);
    provenance p = prov_make(), back;
    tr_error err = { 0 };
    const char *m = path_in(dir, "m.model"), *c = path_in(dir, "m.ckpt");
    assert_ok(checkpoint_save_prov(m, &a.cfg, &a.net, NULL, NULL, &p, &err), &err);
    assert_ok(checkpoint_save_prov(c, &a.cfg, &a.net, &a.opt, &a.st, &p, &err), &err);
    memset(&b, 0, sizeof b);
    assert_ok(checkpoint_load_prov(m, &b.cfg, &b.net, NULL, NULL, &back, &err), &err);
    assert_same_model(&a, &b, 0);
    assert_same_provenance(&p, &back);
    provenance_free(&back);
    net_free(&b.net);
    memset(&b, 0, sizeof b);
    assert_ok(checkpoint_load_prov(c, &b.cfg, &b.net, &b.opt, &b.st, &back, &err), &err);
    assert_same_model(&a, &b, 1);
    assert_same_provenance(&p, &back);
    provenance_free(&back);
    model_free(&b);
    memset(&b, 0, sizeof b);
    assert_ok(checkpoint_load_prov(c, &b.cfg, &b.net, NULL, NULL, &back, &err), &err);
    assert_same_provenance(&p, &back);
    provenance_free(&back);
    net_free(&b.net);

    /* Another time and duration change the last 20 bytes only. */
    size_t len1, len2;
    uint8_t *one = read_file(c, &len1);
    p.created += 1000;
    p.train_seconds *= 2;
    assert_ok(checkpoint_save_prov(c, &a.cfg, &a.net, &a.opt, &a.st, &p, &err), &err);
    uint8_t *two = read_file(c, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(one, two, len1 - 20);
    assert_memory_not_equal(one + len1 - 20, two + len1 - 20, 8);
    assert_memory_not_equal(one + len1 - 12, two + len1 - 12, 8);
    free(one);
    free(two);
    provenance_free(&p);
    model_free(&a);
}

/* A version-1 file (a version-2 file without provenance, as the format
 * says) still loads, and reports no provenance; version 1 cannot claim
 * provenance; damage inside the provenance is refused by name. */
static void provenance_version_1_and_damage(void **state)
{
    const char *dir = *state;
    model a, b;
    model_make(&a, 1, "sgd", 80);
    tr_error err = { 0 };
    const char *p = path_in(dir, "m.ckpt"), *q = path_in(dir, "v1.ckpt");
    assert_ok(checkpoint_save(p, &a.cfg, &a.net, &a.opt, &a.st, &err), &err);
    size_t len;
    uint8_t *bytes = read_file(p, &len);
    assert_int_equal(bytes[8], 2);
    assert_int_equal(bytes[12], 1); /* training state, no provenance */
    bytes[8] = 1;
    fix_crc(bytes, len);
    write_file(q, bytes, len);
    provenance back;
    memset(&b, 0, sizeof b);
    assert_ok(checkpoint_load_prov(q, &b.cfg, &b.net, &b.opt, &b.st, &back, &err), &err);
    assert_same_model(&a, &b, 1);
    assert_string_equal(back.version, "");
    assert_int_equal(back.nfiles, 0);
    model_free(&b);
    bytes[12] = 3; /* version 1 with a provenance flag */
    fix_crc(bytes, len);
    write_file(q, bytes, len);
    expect_load_fails(q, "unknown flags");
    free(bytes);

    /* Cut short anywhere inside the provenance, CRC made good. */
    provenance pv = prov_make();
    size_t plain_len = len;
    assert_ok(checkpoint_save_prov(p, &a.cfg, &a.net, &a.opt, &a.st, &pv, &err), &err);
    bytes = read_file(p, &len);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    size_t prov_len = len - plain_len;
    assert_true(prov_len > 100);
    for (size_t cut = 1; cut <= prov_len; cut += 7) {
        memcpy(copy, bytes, len);
        memcpy(copy + len - 4 - cut, bytes + len - 4, 4);
        fix_crc(copy, len - cut);
        write_file(q, copy, len - cut);
        expect_load_fails(q, "provenance");
    }
    /* A file count far beyond what the file holds. */
    memcpy(copy, bytes, len);
    uint8_t *nfiles = (uint8_t *)memmem(copy, len, "9.8.7", 5) + 5 + 8 * 5; /* after seed .. test_total */
    nfiles[3] = 0x7f;
    fix_crc(copy, len);
    write_file(q, copy, len);
    expect_load_fails(q, "more data files than it holds");
    free(copy);
    free(bytes);
    provenance_free(&pv);
    model_free(&a);
}

/* A training position that training cannot reach, saved with a valid CRC
 * (checkpoint_save writes what it is given), is refused on load, naming
 * the field; so are weights and optimizer state that are not finite. */
static void checkpoint_impossible_state_refused(void **state)
{
    const char *dir = *state;
    const char *p = path_in(dir, "forged.ckpt");
    enum { EPOCH_PAST, EPOCH_END_MID, BATCH_LIMIT, BATCH_HUGE, STEP_SHORT, T_OFF, SEEN, CORRECT, LOSS_NAN,
           LOSS_NEG, LOSS_NO_SAMPLES, BEST_VAL, BEST_EPOCH, BEST_NONE, PARAM_NAN, STATE_INF, MOMENT_NEG, NCASES };
    const char *word[NCASES] = { "(epoch)", "(epoch)", "(batch)", "(step)", "(step)", "(step)",
                                 "(sample count)", "(sample count)", "(partial loss)", "(partial loss)",
                                 "(sample count)", "(best validation", "(best validation",
                                 "(best validation", "weight that is not finite", "not finite",
                                 "negative second moment" };
    for (int c = 0; c < NCASES; c++) {
        model a;
        model_make(&a, 1, "adam", 70);
        tr_error err = { 0 };
        train_state *st = &a.st;
        switch (c) {
        case EPOCH_PAST: st->epoch = 21; break; /* the config says 20 epochs */
        case EPOCH_END_MID: st->epoch = 20; break; /* all epochs done, yet batch 17 */
        case BATCH_LIMIT: assert_ok(config_set(&a.cfg, "data.limit=1000", &err), &err); break; /* 17 x 64 > 1000 */
        case BATCH_HUGE: st->batch = 1000000; break; /* the forged file */
        case STEP_SHORT: st->step = a.opt.t = 19; break; /* fewer steps than 3 epochs and 17 batches */
        case T_OFF: a.opt.t = 1890; break;
        case SEEN: st->seen = 1087; break;
        case CORRECT: st->correct = 1089; break;
        case LOSS_NAN: st->loss_sum = NAN; break;
        case LOSS_NEG: st->loss_sum = -1; break;
        case LOSS_NO_SAMPLES: st->batch = 0; st->step = a.opt.t = 1874; break; /* seen 1088 of no batch */
        case BEST_VAL: st->best_val = 1.5; break;
        case BEST_EPOCH: st->best_epoch = 4; break;
        case BEST_NONE: st->best_val = -1; break; /* yet a best epoch 2 */
        case PARAM_NAN: a.net.params[7] = NAN; break;
        case STATE_INF: a.opt.state[1][3] = INFINITY; break;
        case MOMENT_NEG: a.opt.state[1][5] = -0.25f; break;
        }
        assert_ok(checkpoint_save(p, &a.cfg, &a.net, &a.opt, &a.st, &err), &err);
        expect_load_fails(p, word[c]);
        model_free(&a);
    }
    /* The unedited state loads: the cases above fail for their edit alone. */
    model a, b;
    model_make(&a, 1, "adam", 70);
    tr_error err = { 0 };
    assert_ok(checkpoint_save(p, &a.cfg, &a.net, &a.opt, &a.st, &err), &err);
    memset(&b, 0, sizeof b);
    assert_ok(checkpoint_load(p, &b.cfg, &b.net, &b.opt, &b.st, &err), &err);
    model_free(&a);
    model_free(&b);
}

/* bzip2, xz and zip files are named as such, not just "bad magic". */
static void checkpoint_archive_named(void **state)
{
    const char *dir = *state;
    const char *p = path_in(dir, "m.model.bz2");
    static const char bz[] = "BZh91AY&SY and then some compressed bytes";
    write_file(p, bz, sizeof bz - 1);
    expect_load_fails(p, "bzip2");
    static const char xz[] = "\xFD" "7zXZ\0 and then some compressed bytes";
    write_file(p, xz, sizeof xz - 1);
    expect_load_fails(p, "xz file");
}

#define T(f) cmocka_unit_test_setup_teardown(f, tmpdir_setup, tmpdir_teardown)
static const struct CMUnitTest tests[] = {
    T(provenance_round_trip),
    T(provenance_version_1_and_damage),
    T(checkpoint_round_trip),
    T(model_is_not_a_checkpoint),
    T(checkpoint_every_byte_flip_caught),
    T(checkpoint_damage_refused),
    T(checkpoint_version_and_consistency),
    T(checkpoint_atomic_write),
    T(checkpoint_impossible_state_refused),
    T(checkpoint_archive_named),
};
TEST_GROUP(checkpoint_group, tests);
