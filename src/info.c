/* info.c - `trainer info`: the provenance and fingerprint of a model file,
 * or the fingerprint a config (with --set) would give a model trained now,
 * as an aligned listing or as JSON for scripts. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "digest.h"
#include "json.h"
#include "network.h"
#include "provenance.h"
#include "session.h"
#include "version.h"

typedef struct {
    const char *kind; /* "model" or "config" */
    const char *path;
    config cfg;
    int has_prov;         /* a model written before provenance has none */
    provenance prov;
    char fingerprint[DIGEST_HEX_SIZE];
    int has_weights;
    char weights_sha256[DIGEST_HEX_SIZE];
    uint64_t nparams;
} info;

static void iso8601(int64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, size, "%s", "?");
}

/* SHA-256 of the weights as the model file stores them: nparams float32,
 * little-endian, so equal weights give equal hashes on any host. */
static void weights_digest(const network *net, char hex[DIGEST_HEX_SIZE])
{
    digest_ctx ctx;
    digest_init(&ctx);
    uint8_t buf[4096];
    size_t used = 0;
    for (size_t i = 0; i < net->nparams; i++) {
        uint32_t u;
        memcpy(&u, &net->params[i], 4);
        buf[used++] = (uint8_t)u;
        buf[used++] = (uint8_t)(u >> 8);
        buf[used++] = (uint8_t)(u >> 16);
        buf[used++] = (uint8_t)(u >> 24);
        if (used == sizeof buf) {
            digest_update(&ctx, buf, used);
            used = 0;
        }
    }
    digest_update(&ctx, buf, used);
    uint8_t d[DIGEST_SIZE];
    digest_final(&ctx, d);
    digest_hex(d, hex);
}

static int gather_config(info *in, const cli_args *a, tr_error *err)
{
    in->kind = "config";
    in->path = a->config;
    config_defaults(&in->cfg);
    if (config_load(&in->cfg, a->config, err) != 0)
        return -1;
    for (int i = 0; i < a->nsets; i++)
        if (config_set(&in->cfg, a->sets[i], err) != 0)
            return -1;
    if (config_validate(&in->cfg, err) != 0)
        return -1;
    in->has_prov = 1;
    snprintf(in->prov.version, sizeof in->prov.version, "%s", TRAINER_VERSION);
    in->prov.seed = in->cfg.seed;
    if (data_plan(&in->cfg, &in->prov.files, &in->prov.nfiles, err) != 0)
        return -1;
    for (size_t i = 0; i < in->prov.nfiles; i++)
        if (data_file_identify(&in->prov.files[i], err) != 0)
            return -1;
    return provenance_fingerprint(in->prov.version, &in->cfg, in->prov.files, in->prov.nfiles, in->fingerprint,
                                  err);
}

static int gather_model(info *in, const cli_args *a, tr_error *err)
{
    in->kind = "model";
    in->path = a->model;
    if (a->nsets)
        return tr_fail(err, TR_EINPUT, "--set applies to 'trainer info --config CONFIG' only");
    model_session s;
    if (session_open(&s, a->model, NULL, 0, &in->prov, err) != 0) {
        session_close(&s);
        return -1;
    }
    in->cfg = s.cfg;
    in->has_weights = 1;
    in->nparams = s.net.nparams;
    weights_digest(&s.net, in->weights_sha256);
    session_close(&s);
    in->has_prov = in->prov.version[0] != '\0';
    if (!in->has_prov)
        return 0;
    /* From the model's own record: the version that trained it, its
     * config, the hashes of the files it read. */
    return provenance_fingerprint(in->prov.version, &in->cfg, in->prov.files, in->prov.nfiles, in->fingerprint,
                                  err);
}

/* A model's own fields: its weights, and how and how well it was trained
 * (null for a model without provenance, or never tested). */
static void json_model_fields(json_writer *w, const info *in)
{
    const provenance *p = &in->prov;
    json_string(w, "weights_sha256", in->weights_sha256);
    json_int(w, "parameters", (int64_t)in->nparams);
    if (in->has_prov) {
        char when[32];
        iso8601(p->created, when, sizeof when);
        json_string(w, "created", when);
        json_double(w, "train_seconds", p->train_seconds);
        json_int(w, "epochs", (int64_t)p->epochs);
    } else {
        json_null(w, "created");
        json_null(w, "train_seconds");
        json_null(w, "epochs");
    }
    if (in->has_prov && p->test_accuracy >= 0) {
        json_double(w, "test_accuracy", p->test_accuracy);
        json_int(w, "test_correct", (int64_t)p->test_correct);
        json_int(w, "test_total", (int64_t)p->test_total);
    } else {
        json_null(w, "test_accuracy");
        json_null(w, "test_correct");
        json_null(w, "test_total");
    }
}

static void json_data_files(json_writer *w, const provenance *p)
{
    json_begin_array(w, "data");
    for (size_t i = 0; i < p->nfiles; i++) {
        char hex[DIGEST_HEX_SIZE];
        digest_hex(p->files[i].sha256, hex);
        json_begin_object(w, NULL);
        json_string(w, "role", p->files[i].role);
        json_string(w, "path", p->files[i].path);
        json_string(w, "sha256", hex);
        json_int(w, "count", (int64_t)p->files[i].count);
        json_end_object(w);
    }
    json_end_array(w);
}

static void print_json(const info *in)
{
    json_writer w;
    json_init(&w, stdout);
    const provenance *p = &in->prov;
    json_begin_object(&w, NULL);
    json_string(&w, "kind", in->kind);
    json_string(&w, "path", in->path);
    json_string(&w, "trainer_version", in->has_prov ? p->version : NULL);
    json_string(&w, "fingerprint", in->has_prov ? in->fingerprint : NULL);
    if (!strcmp(in->kind, "model"))
        json_model_fields(&w, in);
    json_int(&w, "seed", in->has_prov ? p->seed : in->cfg.seed);
    json_data_files(&w, p);
    json_begin_object(&w, "test");
    json_string(&w, "images", in->cfg.test_images);
    json_string(&w, "labels", in->cfg.test_labels);
    json_int(&w, "limit", in->cfg.test_limit);
    json_end_object(&w);
    json_end_object(&w);
}

static void row(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void row(const char *label, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-17s", label);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

static void print_listing(const info *in)
{
    const provenance *p = &in->prov;
    int model = !strcmp(in->kind, "model");
    row(model ? "model" : "config", "%s", in->path);
    row("trainer version", "%s", in->has_prov ? p->version : "(not recorded: an older model file)");
    row("fingerprint", "%s", in->has_prov ? in->fingerprint : "(not recorded)");
    if (model) {
        row("weights sha256", "%s", in->weights_sha256);
        row("parameters", "%" PRIu64, in->nparams);
        if (in->has_prov) {
            char when[32];
            iso8601(p->created, when, sizeof when);
            row("created", "%s", when);
            row("train seconds", "%.1f", p->train_seconds);
            row("epochs", "%" PRIu64, p->epochs);
            if (p->test_accuracy >= 0)
                row("test accuracy", "%.4f (%" PRIu64 "/%" PRIu64 ")", p->test_accuracy, p->test_correct,
                    p->test_total);
            else
                row("test accuracy", "(not measured)");
        }
    }
    row("seed", "%" PRId64, in->has_prov ? p->seed : in->cfg.seed);
    row("test set", "%s  %s  limit %" PRId64, in->cfg.test_images, in->cfg.test_labels, in->cfg.test_limit);
    if (p->nfiles)
        printf("data\n");
    for (size_t i = 0; i < p->nfiles; i++) {
        char hex[DIGEST_HEX_SIZE];
        digest_hex(p->files[i].sha256, hex);
        printf("  %-14s %7" PRIu64 "  %s  %s\n", p->files[i].role, p->files[i].count, hex, p->files[i].path);
    }
}

int cli_info(const cli_args *a)
{
    info *in = calloc(1, sizeof *in);
    if (!in)
        return cli_error(TR_ERUNTIME, "out of memory");
    tr_error err = { 0 };
    int rc = a->config ? gather_config(in, a, &err) : gather_model(in, a, &err);
    if (rc == 0) {
        if (a->json)
            print_json(in);
        else
            print_listing(in);
        if (fflush(stdout) != 0 || ferror(stdout))
            rc = tr_fail(&err, TR_ERUNTIME, "cannot write to standard output");
    }
    provenance_free(&in->prov);
    free(in);
    return rc == 0 ? 0 : cli_error(err.code ? err.code : TR_ERUNTIME, "%s", err.msg);
}
