#include "cli.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "config.h"
#include "data.h"
#include "dist.h"
#include "eval.h"
#include "idx.h"
#include "layers.h"
#include "network.h"
#include "pgm.h"
#include "report.h"
#include "threads.h"
#include "timer.h"
#include "train.h"
#include "version.h"

#ifndef TRAINER_DATADIR
#define TRAINER_DATADIR "/usr/local/share/trainer"
#endif

int cli_error(int code, const char *fmt, ...)
{
    if (dist_rank() > 0) /* the ranks agree on errors; rank 0 reports them */
        return code;
    va_list ap;
    va_start(ap, fmt);
    fputs("trainer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

static int fail_with(const tr_error *err)
{
    return cli_error(err->code ? err->code : TR_ERUNTIME, "%s", err->msg);
}

void cli_usage(FILE *f)
{
    fputs("usage:\n"
          "  trainer [train] [CONFIG] [--set SECTION.KEY=VALUE]... [--resume CKPT | --init MODEL]\n"
          "  trainer eval MODEL [--set data.test_images=PATH --set data.test_labels=PATH]\n"
          "  trainer predict MODEL IMAGE.pgm|IMAGES.idx[.gz]...\n"
          "  trainer report MODEL [--metrics CSV] [--steps CSV] [--out DIR]\n"
          "  trainer --help | --version\n"
          "\n"
          "train    trains the network CONFIG describes (default: configs/default.ini beside\n"
          "         the binary, then " TRAINER_DATADIR "/default.ini, then built-in defaults),\n"
          "         evaluates on the test set after every epoch, writes output.model,\n"
          "         a checkpoint (output.model + .ckpt) and output.metrics (CSV).\n"
          "eval     accuracy, per-class precision/recall and the confusion matrix of MODEL on\n"
          "         the test set recorded in it; ends with 'accuracy: A (CORRECT/TOTAL)'.\n"
          "predict  the class and probabilities of each image (PGM, or every image of an IDX file).\n"
          "report   an HTML report in DIR (default: MODEL's folder/report): training curves from\n"
          "         the metrics CSV, kernels, feature maps, confusion matrix, misclassified images.\n"
          "\n"
          "options:\n"
          "  --set SECTION.KEY=VALUE  override a config key (layers: layer.NAME.KEY); repeatable\n"
          "  --resume CKPT            continue training from a checkpoint\n"
          "  --init MODEL             start from MODEL's weights (warm start; same architecture)\n"
          "  --threads N, -j N        OpenMP threads (default: OMP_NUM_THREADS, else all cores)\n"
          "  --quiet, -q              no per-epoch lines or progress bar, only the result\n"
          "\n"
          "exit status: 0 success, 1 runtime failure, 2 bad usage, config or data,\n"
          "             130/143 stopped by SIGINT/SIGTERM after writing a checkpoint\n",
          f);
}

int cli_version(void)
{
    printf("trainer %s\n", TRAINER_VERSION);
    return 0;
}

/* ---- config lookup ---- */

static int file_exists(const char *p)
{
    return access(p, R_OK) == 0;
}

/* The no-argument default: configs/default.ini beside the binary (a source
 * tree), then the installed copy, then the built-in defaults. */
static const char *find_default_config(char *buf, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        snprintf(buf, size, "%s/configs/default.ini", dirname(exe));
        if (file_exists(buf))
            return buf;
    }
    snprintf(buf, size, "%s/default.ini", TRAINER_DATADIR);
    return file_exists(buf) ? buf : NULL;
}

static int apply_sets(config *cfg, const cli_args *a, tr_error *err)
{
    for (int i = 0; i < a->nsets; i++)
        if (config_set(cfg, a->sets[i], err) != 0)
            return -1;
    return 0;
}

/* ---- train ---- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    if (stop_signal) /* a second Ctrl-C: the user does not want to wait */
        _exit(128 + sig);
    stop_signal = sig;
}

typedef struct {
    int bar;    /* draw a progress bar on stderr */
    int quiet;
    double started;
} train_view;

static void view_start(void *user, const train_start_info *info)
{
    train_view *v = user;
    if (v->quiet)
        return;
    printf("data: %zu training, %zu validation, %zu test images, loaded in %.2f s\n", info->train_count,
           info->val_count, info->test_count, info->load_seconds);
    printf("model: %zu parameters; %d thread%s\n", info->nparams, info->nthreads,
           info->nthreads == 1 ? "" : "s");
    printf("kernels: %s; %.5f MFLOP per training sample\n", info->kernels, info->flops_per_sample / 1e6);
    if (info->resumed_epoch >= 0)
        printf("resuming from %s: epoch %d, batch %d\n", info->checkpoint, info->resumed_epoch + 1,
               info->resumed_batch + 1);
}

static void view_progress(void *user, size_t done, size_t total, double rate)
{
    train_view *v = user;
    if (!v->bar)
        return;
    int width = 30, filled = (int)((double)width * done / total);
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "\r  [%.*s%.*s] %3d%%  %.0f samples/s  ETA %.0f s ", filled,
            "##############################", width - filled, "..............................",
            (int)(100.0 * done / total), rate, eta);
    fflush(stderr);
}

static void view_epoch(void *user, const epoch_report *r)
{
    train_view *v = user;
    if (v->bar)
        fputs("\r\033[K", stderr);
    if (v->quiet)
        return;
    printf("epoch %d/%d  loss %.4f  train %.2f%%", r->epoch, r->epochs, r->train_loss, 100 * r->train_acc);
    if (r->val_acc >= 0)
        printf("  val %.2f%%", 100 * r->val_acc);
    printf("  test %.2f%%  lr %.3g  %.0f samples/s  %.1f s (+%.2f s eval)%s\n", 100 * r->test_acc, r->lr,
           r->samples_per_s, r->seconds, r->eval_seconds, r->saved_model ? "  saved" : "");
}

/* Writes a space and WORD, quoted for a POSIX shell when it needs it. */
static void put_shell_word(FILE *f, const char *word)
{
    fputc(' ', f);
    if (*word && strspn(word, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                              "_-+=/.,:@%") == strlen(word)) {
        fputs(word, f);
        return;
    }
    fputc('\'', f);
    for (const char *p = word; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", f);
        else
            fputc(*p, f);
    }
    fputc('\'', f);
}

int cli_train(const cli_args *a)
{
    config cfg;
    tr_error err = { 0 };
    char found[PATH_MAX + 32];
    const char *path = a->config ? a->config : find_default_config(found, sizeof found);
    config_defaults(&cfg);
    network shapes; /* built once here so an impossible stack fails before any output */
    if ((path && config_load(&cfg, path, &err) != 0) || apply_sets(&cfg, a, &err) != 0 ||
        net_create(&shapes, &cfg, &err) != 0)
        return fail_with(&err);
    net_free(&shapes);

    if (dist_agree(dist_rank() == 0 ? output_lock(cfg.model, &err) : 0, &err) != 0)
        return fail_with(&err);
    if (dist_rank() == 0) { /* the lock is ours: no one else is mid-write */
        char ckpt[CONFIG_PATH_MAX + 8];
        train_checkpoint_path(&cfg, ckpt, sizeof ckpt);
        remove_stale_temps(cfg.model);
        remove_stale_temps(ckpt);
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines in log files, as they happen */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit must fail the write, not kill us */

    train_view view = { .quiet = a->quiet, .started = timer_now() };
    view.bar = !a->quiet && (cfg.progress == PROGRESS_ALWAYS ||
                             (cfg.progress == PROGRESS_AUTO && isatty(STDERR_FILENO)));
    if (!a->quiet) {
        printf("trainer %s: config %s; %d epochs, batch %d, %s lr %g (%s), seed %lld\n", TRAINER_VERSION,
               path ? path : "(built-in defaults)", cfg.epochs, cfg.batch_size, config_optimizer_name(cfg.optimizer),
               cfg.lr, config_schedule_name(cfg.schedule), (long long)cfg.seed);
    }
    if (a->init && a->resume)
        return cli_error(TR_EINPUT, "--init and --resume exclude each other: a checkpoint already holds the weights");
    train_options opts = { .resume = a->resume, .init_from = a->init, .nthreads = a->threads, .stop = &stop_signal,
                           .obs = { view_start, view_progress, view_epoch, &view } };
    train_result res;
    if (train_run(&cfg, &opts, &res, &err) != 0)
        return fail_with(&err);
    if (res.interrupted_by && dist_rank() > 0)
        return 128 + res.interrupted_by;
    if (res.interrupted_by) {
        if (view.bar)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "trainer: stopped by signal %d; checkpoint written to %s\n", res.interrupted_by,
                res.checkpoint);
        /* The same config and the same --set options: resuming with
         * anything else would not continue the same run. */
        fputs("trainer: continue with: trainer train", stderr);
        if (a->config)
            put_shell_word(stderr, a->config);
        for (int i = 0; i < a->nsets; i++) {
            fputs(" --set", stderr);
            put_shell_word(stderr, a->sets[i]);
        }
        fputs(" --resume", stderr);
        put_shell_word(stderr, res.checkpoint);
        fputc('\n', stderr);
        return 128 + res.interrupted_by;
    }
    if (!a->quiet)
        printf("model: %s  (checkpoint %s)  trained in %.1f s, %.1f s in all\n", cfg.model, res.checkpoint,
               res.train_seconds, timer_now() - view.started);
    if (cfg.report[0] && dist_rank() == 0) {
        char steps[CONFIG_PATH_MAX + 16];
        train_steps_path(cfg.metrics, steps, sizeof steps);
        report_options ro = { cfg.model, cfg.metrics[0] ? cfg.metrics : NULL, steps[0] ? steps : NULL,
                              cfg.report, NULL, 0, a->threads };
        if (report_write(&ro, &err) != 0)
            return fail_with(&err);
        if (!a->quiet)
            printf("report: %s/report.html\n", cfg.report);
    }
    if (res.test_total)
        printf("accuracy: %.4f (%zu/%zu)\n", res.test_acc, res.test_correct, res.test_total);
    return 0;
}

int cli_report(const cli_args *a)
{
    char out[PATH_MAX];
    if (a->out) {
        snprintf(out, sizeof out, "%s", a->out);
    } else {
        char copy[PATH_MAX];
        snprintf(copy, sizeof copy, "%s", a->model);
        snprintf(out, sizeof out, "%s/report", dirname(copy));
    }
    /* The step log is found beside the metrics unless named. */
    char steps[PATH_MAX];
    train_steps_path(a->metrics ? a->metrics : "", steps, sizeof steps);
    if (a->steps)
        snprintf(steps, sizeof steps, "%s", a->steps);
    else if (steps[0] && access(steps, R_OK) != 0)
        steps[0] = '\0';
    report_options ro = { a->model, a->metrics, steps[0] ? steps : NULL, out, a->sets, a->nsets, a->threads };
    tr_error err = { 0 };
    if (report_write(&ro, &err) != 0)
        return fail_with(&err);
    printf("report: %s/report.html\n", out);
    return 0;
}

/* ---- eval and predict ---- */

static int load_model(const cli_args *a, config *cfg, network *net, tr_error *err)
{
    if (checkpoint_load(a->model, cfg, net, NULL, NULL, err) != 0)
        return -1;
    for (int i = 0; i < a->nsets; i++)
        if (strncmp(a->sets[i], "data.", 5) != 0) {
            net_free(net);
            return tr_fail(err, TR_EINPUT, "--set %s: only data.* keys apply to a trained model", a->sets[i]);
        }
    if (apply_sets(cfg, a, err) != 0) {
        net_free(net);
        return -1;
    }
    return 0;
}

int cli_eval(const cli_args *a)
{
    config cfg;
    network net;
    dataset test;
    eval_result res;
    tr_error err = { 0 };
    if (load_model(a, &cfg, &net, &err) != 0)
        return fail_with(&err);
    int rc = 0, nthreads = threads_resolve(a->threads);
    net_workspace *ws = NULL;
    if (dataset_load(&test, cfg.test_images, cfg.test_labels, (unsigned)cfg.classes,
                     (size_t)cfg.test_limit, &err) != 0) {
        net_free(&net);
        return fail_with(&err);
    }
    if (test.rows != (uint32_t)cfg.input_size || test.cols != (uint32_t)cfg.input_size) {
        tr_fail(&err, TR_EINPUT, "%s: images are %ux%u but the model takes %dx%d", cfg.test_images, test.rows,
                test.cols, cfg.input_size, cfg.input_size);
        rc = fail_with(&err);
        goto out;
    }
    double t0 = timer_now();
    if (!(ws = net_workspaces_create(&net, nthreads, &err)) ||
        eval_dataset(&net, &test, 0, test.count, cfg.normalize, ws, nthreads, &res, NULL, NULL, &err) != 0) {
        rc = fail_with(&err);
        goto out;
    }
    double secs = timer_now() - t0;
    int k = cfg.classes;
    if (!a->quiet) {
        printf("model %s on %s: %zu images in %.3f s, %d thread%s, mean loss %.4f\n\n", a->model, cfg.test_images,
               test.count, secs, nthreads, nthreads == 1 ? "" : "s", res.loss);
        printf("class  count  precision  recall\n");
        for (int c = 0; c < k; c++) {
            uint64_t tp = res.confusion[(size_t)c * k + c], actual = 0, predicted = 0;
            for (int j = 0; j < k; j++) {
                actual += res.confusion[(size_t)c * k + j];
                predicted += res.confusion[(size_t)j * k + c];
            }
            printf("%5d  %5llu  %8.2f%%  %5.2f%%\n", c, (unsigned long long)actual,
                   predicted ? 100.0 * tp / predicted : 0.0, actual ? 100.0 * tp / actual : 0.0);
        }
        printf("\nconfusion matrix (rows: true class, columns: predicted)\n     ");
        for (int c = 0; c < k; c++)
            printf("%6d", c);
        printf("\n");
        for (int r = 0; r < k; r++) {
            printf("%5d", r);
            for (int c = 0; c < k; c++)
                printf("%6llu", (unsigned long long)res.confusion[(size_t)r * k + c]);
            printf("\n");
        }
    }
    printf("accuracy: %.4f (%zu/%zu)\n", (double)res.correct / (double)res.total, res.correct, res.total);
    eval_result_free(&res);
out:
    net_workspaces_free(ws, nthreads);
    dataset_free(&test);
    net_free(&net);
    return rc;
}

static void print_prediction(const char *name, long index, const float *probs, int k)
{
    int best = net_argmax(probs, k);
    if (index >= 0)
        printf("%s[%ld]: %d (p=%.4f)", name, index, best, probs[best]);
    else
        printf("%s: %d (p=%.4f)", name, best, probs[best]);
    for (int c = 0; c < k; c++)
        printf(" %.4f", probs[c]);
    printf("\n");
}

static void classify(const network *net, net_workspace *ws, const uint8_t *pixels, int normalize, float *probs)
{
    size_t n = (size_t)net->input_size * net->input_size;
    data_normalize(ws->acts[0], pixels, n, normalize);
    softmax_forward(probs, net_forward(net, ws), net->classes);
}

int cli_predict(const cli_args *a)
{
    config cfg;
    network net;
    net_workspace ws;
    tr_error err = { 0 };
    if (load_model(a, &cfg, &net, &err) != 0)
        return fail_with(&err);
    if (net_workspace_create(&ws, &net, &err) != 0) {
        net_free(&net);
        return fail_with(&err);
    }
    float probs[256];
    uint32_t want = (uint32_t)cfg.input_size;
    int rc = 0;
    printf("# input: class (p=probability) then the probability of each class 0..%d\n", cfg.classes - 1);
    for (int i = 0; i < a->ninputs && rc == 0; i++) {
        const char *path = a->inputs[i];
        uint8_t *data = NULL, *img = NULL;
        size_t len = 0, count = 1;
        uint32_t rows = 0, cols = 0;
        const uint8_t *pixels = NULL;
        int is_pgm = 0;
        if (idx_slurp(path, &data, &len, &err) != 0)
            rc = fail_with(&err);
        else if ((is_pgm = pgm_sniff(data, len)) && pgm_parse(path, data, len, &img, &rows, &cols, &err) != 0)
            rc = fail_with(&err);
        else if (!is_pgm && idx_parse_images(path, data, len, &count, &rows, &cols, &pixels, &err) != 0)
            rc = fail_with(&err);
        else if (rows != want || cols != want)
            rc = cli_error(TR_EINPUT, "%s: images are %ux%u, the model takes %ux%u", path, cols, rows, want, want);
        for (size_t j = 0; rc == 0 && j < count; j++) {
            classify(&net, &ws, is_pgm ? img : pixels + j * rows * cols, cfg.normalize, probs);
            print_prediction(path, is_pgm ? -1 : (long)j, probs, cfg.classes);
        }
        free(img);
        free(data);
    }
    net_workspace_free(&ws);
    net_free(&net);
    return rc;
}
