#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "files.h"
#include "idx.h"

#define FLAG_TRAIN_STATE 1u
#define FLAG_PROVENANCE 2u

/* ---- little-endian encoding into a growing buffer ---- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
    int failed;
} bytebuf;

static void put(bytebuf *b, const void *src, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void put_u32(bytebuf *b, uint32_t v)
{
    uint8_t p[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    put(b, p, 4);
}

static void put_u64(bytebuf *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_f64(bytebuf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(b, u);
}

static void put_f32s(bytebuf *b, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        put_u32(b, u);
    }
}

typedef struct {
    const uint8_t *data;
    size_t len, pos;
} reader;

static int take(reader *r, void *dst, size_t n)
{
    if (r->len - r->pos < n)
        return -1;
    memcpy(dst, r->data + r->pos, n);
    r->pos += n;
    return 0;
}

static int get_u32(reader *r, uint32_t *v)
{
    uint8_t p[4];
    if (take(r, p, 4))
        return -1;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return 0;
}

static int get_u64(reader *r, uint64_t *v)
{
    uint32_t lo, hi;
    if (get_u32(r, &lo) || get_u32(r, &hi))
        return -1;
    *v = (uint64_t)hi << 32 | lo;
    return 0;
}

static int get_f64(reader *r, double *v)
{
    uint64_t u;
    if (get_u64(r, &u))
        return -1;
    memcpy(v, &u, 8);
    return 0;
}

static int get_f32s(reader *r, float *v, size_t n)
{
    if ((r->len - r->pos) / 4 < n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = 0;
        get_u32(r, &u);
        memcpy(&v[i], &u, 4);
    }
    return 0;
}

/* ---- the format ---- */

static void put_str(bytebuf *b, const char *s)
{
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    put(b, s, n);
}

/* The provenance section (docs/model-format.md). The two fields that
 * change from run to run, created and train_seconds, come last, just before
 * the CRC, so that "the same model" is every byte but the last 20. */
static void put_provenance(bytebuf *b, const provenance *p)
{
    put_str(b, p->version);
    put_u64(b, (uint64_t)p->seed);
    put_u64(b, p->epochs);
    put_f64(b, p->test_accuracy);
    put_u64(b, p->test_correct);
    put_u64(b, p->test_total);
    put_u32(b, (uint32_t)p->nfiles);
    for (size_t i = 0; i < p->nfiles; i++) {
        put_str(b, p->files[i].role);
        put_str(b, p->files[i].path);
        put(b, p->files[i].sha256, DIGEST_SIZE);
        put_u64(b, p->files[i].count);
    }
    put_u64(b, (uint64_t)p->created);
    put_f64(b, p->train_seconds);
}

int checkpoint_save(const char *path, const config *cfg, const network *net,
                    const optimizer *opt, const train_state *state, tr_error *err)
{
    return checkpoint_save_prov(path, cfg, net, opt, state, NULL, err);
}

int checkpoint_save_prov(const char *path, const config *cfg, const network *net, const optimizer *opt,
                         const train_state *state, const provenance *prov, tr_error *err)
{
    if (prov && prov->nfiles > PROV_MAX_FILES)
        return tr_fail(err, TR_ERUNTIME, "%s: more than %d data files to record", path, PROV_MAX_FILES);
    char *text = NULL;
    size_t text_len = 0;
    FILE *mf = open_memstream(&text, &text_len);
    if (!mf || config_write(cfg, mf, 0) != 0 || fclose(mf) != 0) {
        free(text);
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory serialising the config", path);
    }
    bytebuf b = { 0 };
    int with_state = opt && state;
    put(&b, MODEL_MAGIC, 8);
    put_u32(&b, MODEL_VERSION);
    put_u32(&b, (with_state ? FLAG_TRAIN_STATE : 0) | (prov ? FLAG_PROVENANCE : 0));
    put_u32(&b, (uint32_t)text_len);
    put(&b, text, text_len);
    free(text);
    put_u64(&b, net->nparams);
    put_f32s(&b, net->params, net->nparams);
    if (with_state) {
        put_u32(&b, (uint32_t)opt->kind);
        put_u64(&b, opt->t);
        put_u64(&b, state->epoch);
        put_u64(&b, state->batch);
        put_u64(&b, state->step);
        put_f64(&b, state->loss_sum);
        put_u64(&b, state->correct);
        put_u64(&b, state->seen);
        put_f64(&b, state->best_val);
        put_u64(&b, state->best_epoch);
        put_u32(&b, (uint32_t)opt->nstate);
        for (int i = 0; i < opt->nstate; i++)
            put_f32s(&b, opt->state[i], opt->n);
    }
    if (prov)
        put_provenance(&b, prov);
    uLong crc = crc32(0L, Z_NULL, 0);
    if (!b.failed)
        crc = crc32_z(crc, b.data, b.len);
    put_u32(&b, (uint32_t)crc);
    if (b.failed) {
        free(b.data);
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory building the file", path);
    }
    int rc = atomic_write_file(path, b.data, b.len, err);
    free(b.data);
    return rc;
}

static int bad(tr_error *err, const char *path, const char *what)
{
    return tr_fail(err, TR_EINPUT, "%s: %s", path, what);
}

/* Steps over a checkpoint's training state (a checkpoint works as a model
 * too), to the provenance behind it. */
static int skip_state(reader *r, size_t nparams)
{
    uint32_t kind, nstate;
    uint64_t skip64;
    double skipd;
    if (get_u32(r, &kind) || get_u64(r, &skip64))
        return -1;
    for (int i = 0; i < 3; i++)
        if (get_u64(r, &skip64))
            return -1;
    if (get_f64(r, &skipd) || get_u64(r, &skip64) || get_u64(r, &skip64) || get_f64(r, &skipd) ||
        get_u64(r, &skip64) || get_u32(r, &nstate))
        return -1;
    if (nstate > 2 || (r->len - r->pos) / 4 / (nparams ? nparams : 1) < nstate)
        return -1;
    r->pos += (size_t)nstate * nparams * 4;
    return 0;
}

/* A length-prefixed string into DST (SIZE bytes with the NUL). */
static int get_str(reader *r, char *dst, size_t size)
{
    uint32_t n;
    if (get_u32(r, &n) || n >= size || take(r, dst, n))
        return -1;
    dst[n] = '\0';
    return memchr(dst, '\0', n) ? -1 : 0;
}

static int get_provenance(reader *r, provenance *p, const char *path, tr_error *err)
{
    uint64_t seed, created;
    uint32_t nfiles;
    if (get_str(r, p->version, sizeof p->version) || get_u64(r, &seed) || get_u64(r, &p->epochs) ||
        get_f64(r, &p->test_accuracy) || get_u64(r, &p->test_correct) || get_u64(r, &p->test_total) ||
        get_u32(r, &nfiles))
        return bad(err, path, "provenance section is truncated");
    p->seed = (int64_t)seed;
    /* Each entry takes at least 52 bytes: the count must fit in the file. */
    if (nfiles > PROV_MAX_FILES || nfiles > (r->len - r->pos) / 52)
        return bad(err, path, "provenance section lists more data files than it holds");
    if (nfiles && !(p->files = calloc(nfiles, sizeof *p->files)))
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory", path);
    p->nfiles = nfiles;
    for (uint32_t i = 0; i < nfiles; i++) {
        data_file *f = &p->files[i];
        if (get_str(r, f->role, sizeof f->role) || get_str(r, f->path, sizeof f->path) ||
            take(r, f->sha256, DIGEST_SIZE) || get_u64(r, &f->count))
            return bad(err, path, "provenance section is truncated");
    }
    if (get_u64(r, &created) || get_f64(r, &p->train_seconds))
        return bad(err, path, "provenance section is truncated");
    p->created = (int64_t)created;
    return 0;
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* The training position must be one that training can reach: a forged or
 * miswritten one (a CRC only proves the bytes are as written) would train
 * on from nowhere, with a loss of NaN or a learning rate of 0. Checked
 * against the stored config; train.c checks it against the data too. */
static int check_state(const char *path, const config *cfg, const optimizer *opt, const train_state *st,
                       tr_error *err)
{
    const char *what = NULL;
    const uint64_t bs = (uint64_t)cfg->batch_size;
    if (st->epoch > (uint64_t)cfg->epochs || (st->epoch == (uint64_t)cfg->epochs && st->batch > 0))
        what = "epoch";
    else if (st->batch > UINT32_MAX / bs || (cfg->limit > 0 && st->batch * bs >= (uint64_t)cfg->limit))
        what = "batch";
    else if (st->step < st->batch || st->step - st->batch < st->epoch || opt->t != st->step)
        what = "step";
    else if (st->seen != st->batch * bs || st->correct > st->seen)
        what = "sample count";
    else if (!isfinite(st->loss_sum) || st->loss_sum < 0 || (st->seen == 0 && st->loss_sum != 0))
        what = "partial loss";
    else if (!(st->best_val == -1.0 || (st->best_val >= 0 && st->best_val <= 1)) || st->best_epoch > st->epoch ||
             (st->best_val == -1.0) != (st->best_epoch == 0))
        what = "best validation epoch";
    if (what)
        return tr_fail(err, TR_EINPUT,
                       "%s: impossible training state (%s): epoch %llu, batch %llu, step %llu, %llu samples "
                       "of batch %d", path, what, (unsigned long long)st->epoch, (unsigned long long)st->batch,
                       (unsigned long long)st->step, (unsigned long long)st->seen, cfg->batch_size);
    for (int i = 0; i < opt->nstate; i++)
        if (!all_finite(opt->state[i], opt->n))
            return bad(err, path, "optimizer state holds a value that is not finite");
    /* Adam's second moment is a mean of squares; a negative one would put
     * NaN in the first step (its square root). */
    if (opt->kind != OPT_SGD)
        for (size_t i = 0; i < opt->n; i++)
            if (opt->state[1][i] < 0)
                return bad(err, path, "optimizer state holds a negative second moment");
    return 0;
}

int checkpoint_load(const char *path, config *cfg, network *net, optimizer *opt,
                    train_state *state, tr_error *err)
{
    return checkpoint_load_prov(path, cfg, net, opt, state, NULL, err);
}

/* Magic, length and CRC: a reader over what lies between the magic and
 * the CRC, or -1 with the reason. */
static int open_envelope(const char *path, const uint8_t *data, size_t len, reader *r, tr_error *err)
{
    if (len >= 8 && memcmp(data, MODEL_MAGIC, 8) != 0) {
        const char *archive = idx_archive_name(data, len);
        if (archive)
            return tr_fail(err, TR_EINPUT, "%s: not a trainer model file (bad magic): it is %s", path, archive);
        return bad(err, path, "not a trainer model file (bad magic)");
    }
    if (len < 8 + 12 + 8 + 4)
        return bad(err, path, "too short to be a model file (truncated)");
    uint32_t stored_crc = (uint32_t)data[len - 4] | (uint32_t)data[len - 3] << 8 |
                          (uint32_t)data[len - 2] << 16 | (uint32_t)data[len - 1] << 24;
    if ((uint32_t)crc32_z(crc32(0L, Z_NULL, 0), data, len - 4) != stored_crc)
        return bad(err, path, "CRC-32 mismatch: the file is corrupt or truncated");
    *r = (reader){ data, len - 4, 8 };
    return 0;
}

/* The header's version and flags, then the stored config into *CFG. */
static int read_header_and_config(reader *r, const char *path, config *cfg, uint32_t *flags, tr_error *err)
{
    uint32_t version = 0, text_len = 0;
    get_u32(r, &version);
    get_u32(r, flags);
    get_u32(r, &text_len);
    /* Version 1 is version 2 without provenance. */
    if (version != MODEL_VERSION && version != 1)
        return tr_fail(err, TR_EINPUT, "%s: model format version %u, this trainer reads versions 1 to %u", path,
                       version, MODEL_VERSION);
    if (*flags & ~(FLAG_TRAIN_STATE | (version >= 2 ? FLAG_PROVENANCE : 0)))
        return bad(err, path, "unknown flags");
    char *text = NULL;
    if (text_len > r->len - r->pos || !(text = malloc((size_t)text_len + 1)))
        return bad(err, path, "config section is truncated");
    take(r, text, text_len);
    text[text_len] = '\0';
    config_defaults(cfg);
    /* The stored text names every key the writer knew; one it lacks keeps
     * the value it had then, not today's default. */
    cfg->blocks = MODEL_LEGACY_BLOCKS;
    int rc = config_parse_string(cfg, text, path, err);
    free(text);
    return rc;
}

/* The network the stored config describes, with the stored weights. */
static int read_weights(reader *r, const char *path, const config *cfg, network *net, tr_error *err)
{
    uint64_t nparams = 0;
    /* The weights must fit in the file before the network built from the
     * stored config may allocate for them. */
    if (get_u64(r, &nparams) || nparams > (r->len - r->pos) / 4)
        return bad(err, path, "weights are truncated");
    if (net_create(net, cfg, err) != 0)
        return -1;
    if (nparams != net->nparams)
        return tr_fail(err, TR_EINPUT, "%s: holds %llu parameters but its architecture needs %zu", path,
                       (unsigned long long)nparams, net->nparams);
    if (get_f32s(r, net->params, net->nparams))
        return bad(err, path, "weights are truncated");
    if (!all_finite(net->params, net->nparams))
        return bad(err, path, "holds a weight that is not finite (NaN or infinity)");
    return 0;
}

/* The training position and the optimizer's state, checked. */
static int read_train_state(reader *r, const char *path, uint32_t flags, const config *cfg, const network *net,
                            optimizer *opt, train_state *state, tr_error *err)
{
    if (!(flags & FLAG_TRAIN_STATE))
        return bad(err, path, "is a final model without training state; resume from a checkpoint (.ckpt)");
    uint32_t kind, nstate;
    uint64_t t;
    if (get_u32(r, &kind) || get_u64(r, &t) || get_u64(r, &state->epoch) || get_u64(r, &state->batch) ||
        get_u64(r, &state->step) || get_f64(r, &state->loss_sum) || get_u64(r, &state->correct) ||
        get_u64(r, &state->seen) || get_f64(r, &state->best_val) || get_u64(r, &state->best_epoch) ||
        get_u32(r, &nstate))
        return bad(err, path, "training state is truncated");
    if (kind != (uint32_t)cfg->optimizer)
        return bad(err, path, "optimizer state does not match the stored config");
    if (optim_create(opt, cfg, net->nparams, err) != 0)
        return -1;
    opt->t = t;
    if (nstate != (uint32_t)opt->nstate)
        return bad(err, path, "optimizer state has the wrong number of arrays");
    for (int i = 0; i < opt->nstate; i++)
        if (get_f32s(r, opt->state[i], opt->n))
            return bad(err, path, "optimizer state is truncated");
    return check_state(path, cfg, opt, state, err);
}

/* The sections in file order: config, weights, training state (read into
 * OPT and STATE, or skipped when OPT is NULL), provenance, nothing more. */
static int read_sections(const char *path, const uint8_t *data, size_t len, config *cfg, network *net,
                         optimizer *opt, train_state *state, provenance *prov, tr_error *err)
{
    reader r = { 0 };
    uint32_t flags = 0;
    if (open_envelope(path, data, len, &r, err) != 0 || read_header_and_config(&r, path, cfg, &flags, err) != 0 ||
        read_weights(&r, path, cfg, net, err) != 0)
        return -1;
    if (opt && read_train_state(&r, path, flags, cfg, net, opt, state, err) != 0)
        return -1;
    if (!opt && (flags & FLAG_TRAIN_STATE) && skip_state(&r, net->nparams) != 0)
        return bad(err, path, "training state is truncated");
    if ((flags & FLAG_PROVENANCE) && get_provenance(&r, prov, path, err) != 0)
        return -1;
    if (r.pos != r.len)
        return bad(err, path, "unexpected bytes after the last section");
    return 0;
}

int checkpoint_load_prov(const char *path, config *cfg, network *net, optimizer *opt, train_state *state,
                         provenance *prov, tr_error *err)
{
    provenance scratch;
    memset(&scratch, 0, sizeof scratch);
    if (!prov)
        prov = &scratch;
    memset(prov, 0, sizeof *prov);
    uint8_t *data = NULL;
    size_t len = 0;
    memset(net, 0, sizeof *net);
    if (opt)
        memset(opt, 0, sizeof *opt);
    /* idx_slurp reads plain files whole; a gzipped model is accepted too. */
    if (idx_slurp(path, &data, &len, err) != 0)
        return -1;
    int rc = read_sections(path, data, len, cfg, net, opt, state, prov, err);
    if (rc != 0) {
        net_free(net);
        if (opt)
            optim_free(opt);
        provenance_free(prov);
    }
    provenance_free(&scratch);
    free(data);
    return rc;
}
