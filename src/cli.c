#include "cli.h"

#include <errno.h>
#include <fcntl.h>
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
#include "files.h"
#include "idx.h"
#include "image.h"
#include "layers.h"
#include "network.h"
#include "onnx_export.h"
#include "pngout.h"
#include "preprocess.h"
#include "outputs.h"
#include "pgm.h"
#include "report.h"
#include "runlog.h"
#include "session.h"
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
          "  trainer predict MODEL IMAGE|IMAGES.idx[.gz]... [--preprocess mnist|none] [--save-input DIR] [--json]\n"
          "  trainer report MODEL [MODEL2...] [--metrics CSV] [--steps CSV] [--out DIR]\n"
          "                 [--set data.test_images=PATH --set data.test_labels=PATH]\n"
          "  trainer info MODEL [--json] | trainer info --config CONFIG [--set ...] [--json]\n"
          "  trainer export MODEL OUT.onnx [--bare]\n"
          "  trainer --help | --version\n"
          "\n"
          "train    trains the network CONFIG describes (default: configs/default.ini beside\n"
          "         the binary, then ../share/trainer/default.ini from the binary's directory,\n"
          "         then " TRAINER_DATADIR "/default.ini, then built-in defaults),\n"
          "         evaluates on the test set after every epoch (or as train.test_every says),\n"
          "         writes output.model, a checkpoint (output.model + .ckpt) and\n"
          "         output.metrics (CSV).\n"
          "eval     accuracy, per-class precision/recall and the confusion matrix of MODEL on\n"
          "         the test set recorded in it; ends with 'accuracy: A (CORRECT/TOTAL)'.\n"
          "predict  the class and probabilities of each image: PNG, JPEG, PGM/PPM of any size,\n"
          "         or every image of an IDX file. --preprocess mnist (the default for pictures)\n"
          "         makes a picture look like MNIST: grey, white on black, cropped to the digit,\n"
          "         scaled into 20x20, centred by mass in 28x28; none (the default for IDX)\n"
          "         takes images as they are. --save-input DIR writes what the network saw as\n"
          "         PNG; --json prints one object per image (file, class, probabilities).\n"
          "export   MODEL as an ONNX file (opset 13, any batch size): raw pixels 0..255 in,\n"
          "         class probabilities out, the normalisation inside; --bare: the network\n"
          "         alone, normalised input in, logits out. See docs/serving.md.\n"
          "report   an HTML report in DIR (default: MODEL's folder/report): training curves from\n"
          "         the metrics CSV (default: MODEL's NAME.metrics.csv or NAME.csv beside it;\n"
          "         --metrics= for none), kernels, feature maps, confusion matrix, misclassified\n"
          "         images; with more models, their curves overlaid and their configs compared.\n"
          "info     where MODEL came from (trainer version, data files with SHA-256 and counts,\n"
          "         seed, creation and training time, test accuracy, weights SHA-256), or what\n"
          "         a model trained from CONFIG now would be made of; both with a fingerprint\n"
          "         of version, config and data that is equal when nothing changed.\n"
          "\n"
          "options:\n",
          f);
    cli_options_usage(f);
    fputs("\n"
          "exit status: 0 success, 1 runtime failure (also a failed write to standard output),\n"
          "             2 bad usage, config or data, 129/130/143 stopped by SIGHUP/SIGINT/SIGTERM:\n"
          "             during training after writing a checkpoint, before it at once (see README)\n",
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
 * tree), then PREFIX/share/trainer/default.ini for a binary in PREFIX/bin
 * (so an installed tree finds its own defaults wherever it was installed, and
 * whatever DATADIR an earlier build compiled in), then the compiled-in
 * DATADIR, then the built-in defaults. */
static const char *find_default_config(char *buf, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        const char *dir = dirname(exe);
        snprintf(buf, size, "%s/configs/default.ini", dir);
        if (file_exists(buf))
            return buf;
        snprintf(buf, size, "%s/../share/trainer/default.ini", dir);
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

/* ---- stopping: SIGINT, SIGTERM and SIGHUP ----
 *
 * Before training starts there is nothing to save, and the main thread may
 * be blocked in an open() or read() (a FIFO, a stalled mount) that no flag
 * would ever interrupt: the handler ends the process at once. Once training
 * runs (train_options.armed), it only records the signal; training stops
 * after the current batch and writes a checkpoint. A second signal while
 * that happens ends the process at once, saying that no checkpoint was
 * written for this stop. The worker threads block these signals
 * (threads_block_signals), so the handler runs on the main thread. */
static volatile sig_atomic_t stop_signal, stop_armed;

static const char *signal_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
}

static void say(const char *s)
{
    ssize_t n = write(STDERR_FILENO, s, strlen(s)); /* async-signal-safe; nothing to do if it fails */
    (void)n;
}

static void on_signal(int sig)
{
    if (!stop_armed || stop_signal) {
        say(stop_signal ? "\ntrainer: stopped at once by " : "trainer: stopped at once by ");
        say(signal_name(sig));
        say(stop_signal ? " (a second signal); no checkpoint written for this stop\n"
                        : " before training started; no model or checkpoint written\n");
        _exit(128 + sig);
    }
    stop_signal = sig;
}

/* The signals that stop a run; the exit status is 128 + the number. */
static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP };

typedef struct {
    int bar;    /* draw a progress bar on stderr */
    int quiet;
    double started;
    const cli_args *args; /* for the live report */
    const config *cfg;
    int nthreads;
    int live; /* a live report was written */
} train_view;

/* "N threads", and why fewer than OMP_NUM_THREADS (or the default) asked
 * for. Under mpirun the cut is usually its binding of a rank to a core,
 * where --threads would only oversubscribe that core. */
static const char *threads_phrase(char *buf, size_t size, thread_count t, int nranks)
{
    int n = snprintf(buf, size, "%d thread%s", t.n, t.n == 1 ? "" : "s");
    if (!t.cut_from || n < 0 || (size_t)n >= size)
        return buf;
    /* libgomp ignores a value it cannot parse and then runs one per CPU;
     * of a list ("8,4": nested levels) the first is this level's. */
    const char *env = getenv("OMP_NUM_THREADS");
    char *end = NULL;
    long v = env ? strtol(env, &end, 10) : 0;
    char asked[48], hint[80];
    if (env && end != env && (*end == '\0' || *end == ',') && v == t.cut_from)
        snprintf(asked, sizeof asked, "OMP_NUM_THREADS=%d", t.cut_from);
    else
        snprintf(asked, sizeof asked, "%d by default", t.cut_from);
    if (nranks > 1)
        snprintf(hint, sizeof hint, "mpirun's binding, a cpuset or OMP_PLACES: docs/mpi.md");
    else
        snprintf(hint, sizeof hint, "--threads %d runs %d", t.cut_from, t.cut_from);
    snprintf(buf + n, size - (size_t)n, " (%s, but the process may run on %d CPU%s only; %s)", asked, t.n,
             t.n == 1 ? "" : "s", hint);
    return buf;
}

static void view_start(void *user, const train_start_info *info)
{
    train_view *v = user;
    if (v->quiet)
        return;
    printf("data: %zu training, %zu validation, %zu test images, loaded in %.2f s\n", info->train_count,
           info->val_count, info->test_count, info->load_seconds);
    char threads[200];
    const thread_count tc = { info->nthreads, info->threads_cut_from };
    if (info->threads_min != info->threads_max)
        snprintf(threads, sizeof threads, "%d-%d threads per rank (%zu in all)", info->threads_min, info->threads_max,
                 info->threads_all);
    else
        threads_phrase(threads, sizeof threads, tc, info->nranks);
    printf("model: %zu parameters; %s; %zu gradient block%s of %zu sample%s per batch\n", info->nparams, threads,
           info->nblocks, info->nblocks == 1 ? "" : "s", info->block_samples, info->block_samples == 1 ? "" : "s");
    /* A block is the unit of work: threads beyond their rank's blocks only wait. */
    if (info->threads_idle)
        printf("note: %zu thread%s of %zu%s wait%s: a batch has %zu gradient block%s%s. A larger train.blocks "
               "(now %d, at most the batch size) keeps more busy and changes the model's bytes\n",
               info->threads_idle, info->threads_idle == 1 ? "" : "s", info->threads_all,
               info->nranks > 1 ? " in all" : "", info->threads_idle == 1 ? "s" : "", info->nblocks,
               info->nblocks == 1 ? "" : "s", info->nranks > 1 ? ", each rank working its own share" : "",
               v->cfg->blocks);
    printf("kernels: %s; %.5f MFLOP per training sample", info->kernels, info->flops_per_sample / 1e6);
    if (info->live_flops_per_sample < info->flops_per_sample)
        printf(" (%.5f computed: the pools read only part of the layers below)", info->live_flops_per_sample / 1e6);
    printf("\n");
    if (info->nranks > 1) {
        printf("mpi: %d ranks; each sends %.1f", info->nranks, info->step_bytes_min / 1e3);
        if (info->step_bytes_max != info->step_bytes_min)
            printf("-%.1f", info->step_bytes_max / 1e3);
        printf(" KB per step\n");
    }
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

/* The command as typed, for the report's summary. */
static void command_line(const cli_args *a, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < a->argc && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%s", i ? " " : "", a->argv[i]);
}

static void print_warnings(const report_result *res)
{
    for (int i = 0; i < res->nwarnings; i++)
        fprintf(stderr, "trainer: warning: %s\n", res->warnings[i]);
}

/* The report of a run: after every epoch while it trains (LIVE_EPOCH > 0,
 * the page reloads itself), and once more at the end. Its warnings go to
 * stderr only at a normal end (SAY_WARNINGS); a stopped or failed run has
 * its own message, and the page shows them. */
static int write_report(const train_view *v, int live_epoch, int say_warnings, tr_error *err)
{
    const config *cfg = v->cfg;
    char steps[CONFIG_PATH_MAX + 16], command[4096];
    runlog_steps_path(cfg->metrics, steps, sizeof steps);
    command_line(v->args, command, sizeof command);
    report_options ro = { cfg->model, cfg->metrics, steps[0] ? steps : NULL, cfg->report, NULL, 0, v->nthreads,
                          NULL, 0, command, live_epoch, v->nthreads };
    report_result res;
    if (report_write(&ro, &res, err) != 0)
        return -1;
    if (say_warnings)
        print_warnings(&res);
    return 0;
}

static void view_epoch(void *user, const epoch_report *r)
{
    train_view *v = user;
    if (v->bar)
        fputs("\r\033[K", stderr);
    tr_error err = { 0 };
    if (v->cfg && v->cfg->report[0] && r->epoch < r->epochs) {
        if (write_report(v, r->epoch, 0, &err) != 0)
            fprintf(stderr, "trainer: warning: the live report was not updated: %s\n", err.msg);
        else
            v->live = 1;
    }
    if (v->quiet)
        return;
    printf("epoch %d/%d  loss %.4f  train %.2f%%", r->epoch, r->epochs, r->train_loss, 100 * r->train_acc);
    if (r->val_acc >= 0)
        printf("  val %.2f%%", 100 * r->val_acc);
    if (r->test_acc >= 0) /* train.test_every may skip it */
        printf("  test %.2f%%", 100 * r->test_acc);
    printf("  lr %.3g  %.0f samples/s  %.1f s", r->lr, r->samples_per_s, r->seconds);
    if (r->val_acc >= 0 || r->test_acc >= 0)
        printf(" (+%.3f s eval)", r->eval_seconds);
    printf("%s\n", r->saved_model ? "  saved" : "");
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

/* The config train runs on: CONFIG or the default one, then --set; the
 * network is built once so an impossible stack fails before any output. */
static int load_train_config(const cli_args *a, config *cfg, const char *path, tr_error *err)
{
    config_defaults(cfg);
    network shapes;
    if ((path && config_load(cfg, path, err) != 0) || apply_sets(cfg, a, err) != 0 ||
        net_create(&shapes, cfg, err) != 0)
        return -1;
    net_free(&shapes);
    return 0;
}

static void catch_stop_signals(int nthreads)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines in log files, as they happen */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    /* Where a blocked call must not wait on (before training), the handler
     * never returns; during training an interrupted write simply goes on. */
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof stop_signals / sizeof stop_signals[0]; i++) {
        sigaddset(&sa.sa_mask, stop_signals[i]);
        sigaction(stop_signals[i], &sa, NULL);
    }
    threads_block_signals(nthreads, &sa.sa_mask);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit must fail the write, not kill us */
    /* A reader that goes away (trainer | head -1) must not stop training;
     * the failed writes are reported at exit (cli_finish). */
    signal(SIGPIPE, SIG_IGN);
}

/* A run stopped by a signal: its checkpoint and the command that goes on. */
static int report_interrupted(const cli_args *a, const config *cfg, const train_result *res, const train_view *view,
                              tr_error *err)
{
    if (dist_rank() > 0)
        return 128 + res->interrupted_by;
    if (view->bar)
        fputs("\r\033[K", stderr);
    /* A live report stops reloading: it is rewritten without the refresh. */
    if (cfg->report[0] && access(cfg->model, R_OK) == 0 && write_report(view, 0, 0, err) != 0)
        fprintf(stderr, "trainer: warning: the report was not updated: %s\n", err->msg);
    fprintf(stderr, "trainer: stopped by signal %d (%s); checkpoint written to %s\n", res->interrupted_by,
            signal_name(res->interrupted_by), res->checkpoint);
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
    put_shell_word(stderr, res->checkpoint);
    fputc('\n', stderr);
    return 128 + res->interrupted_by;
}

/* A run that ended: the model line, the report, the accuracy line. */
static int report_finished(const cli_args *a, const config *cfg, const train_result *res, const train_view *view,
                           tr_error *err)
{
    if (!a->quiet)
        printf("model: %s  (checkpoint %s)  trained in %.1f s, %.1f s in all\n", cfg->model, res->checkpoint,
               res->train_seconds, timer_now() - view->started);
    if (stop_signal) { /* during the last epoch's evaluation or save: all is written, the report is not */
        if (dist_rank() == 0)
            fprintf(stderr, "trainer: stopped by signal %d (%s) after the last epoch; model and checkpoint "
                    "written%s\n", (int)stop_signal, signal_name(stop_signal),
                    cfg->report[0] ? ", no report" : "");
        return 128 + stop_signal;
    }
    if (cfg->report[0] && dist_rank() == 0) {
        if (write_report(view, 0, 1, err) != 0)
            return fail_with(err);
        if (!a->quiet)
            printf("report: %s/report.html\n", cfg->report);
    }
    if (res->test_total)
        printf("accuracy: %.4f (%zu/%zu)\n", res->test_acc, res->test_correct, res->test_total);
    return 0;
}

int cli_train(const cli_args *a)
{
    config cfg;
    tr_error err = { 0 };
    /* Agreed on by every rank, as all failures from here on: under mpirun
     * each rank may have its own arguments, and one that returned alone
     * would leave the others waiting in the next collective. */
    if (dist_agree(a->init && a->resume ? tr_fail(&err, TR_EINPUT, "--init and --resume exclude each other: a "
                                                  "checkpoint already holds the weights")
                                        : 0,
                   &err) != 0)
        return fail_with(&err);
    char found[PATH_MAX + 32];
    const char *path = a->config ? a->config : find_default_config(found, sizeof found);
    if (dist_agree(load_train_config(a, &cfg, path, &err), &err) != 0)
        return fail_with(&err);
    if (dist_agree(dist_rank() == 0 ? outputs_claim(&cfg, &err) : 0, &err) != 0)
        return fail_with(&err);
    const thread_count threads = threads_resolve(a->threads);
    catch_stop_signals(threads.n);

    train_view view = { .quiet = a->quiet, .started = timer_now(), .args = a, .cfg = &cfg, .nthreads = threads.n };
    view.bar = !a->quiet && (cfg.progress == PROGRESS_ALWAYS ||
                             (cfg.progress == PROGRESS_AUTO && isatty(STDERR_FILENO)));
    if (!a->quiet) {
        printf("trainer %s: config %s; %d epochs, batch %d, %s lr %g (%s), seed %lld\n", TRAINER_VERSION,
               path ? path : "(built-in defaults)", cfg.epochs, cfg.batch_size, config_optimizer_name(cfg.optimizer),
               cfg.lr, config_schedule_name(cfg.schedule), (long long)cfg.seed);
    }
    train_options opts = { .resume = a->resume, .init_from = a->init, .nthreads = threads.n,
                           .threads_cut_from = threads.cut_from, .stop = &stop_signal,
                           .armed = &stop_armed, .obs = { view_start, view_progress, view_epoch, &view } };
    train_result res;
    if (train_run(&cfg, &opts, &res, &err) != 0) {
        /* A failed run's live report stops reloading too; the failure is still the message. */
        tr_error rerr = { 0 };
        if (view.live && write_report(&view, 0, 0, &rerr) != 0)
            fprintf(stderr, "trainer: warning: the report was not updated: %s\n", rerr.msg);
        return fail_with(&err);
    }
    if (res.interrupted_by)
        return report_interrupted(a, &cfg, &res, &view, &err);
    return report_finished(a, &cfg, &res, &view, &err);
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
    char command[4096];
    command_line(a, command, sizeof command);
    report_options ro = { a->model, a->metrics, a->steps, out, a->sets, a->nsets, threads_resolve(a->threads).n,
                          a->inputs, a->ninputs, command, 0, 0 };
    tr_error err = { 0 };
    report_result res;
    if (report_write(&ro, &res, &err) != 0)
        return fail_with(&err);
    print_warnings(&res);
    printf("report: %s/report.html\n", out);
    return 0;
}

/* ---- export ---- */

int cli_export(const cli_args *a)
{
    model_session s;
    tr_error err = { 0 };
    if (session_open(&s, a->model, NULL, 0, NULL, &err) != 0) /* --set has never applied here */
        return fail_with(&err);
    int rc = onnx_export(a->onnx_out, &s.cfg, &s.net, a->bare, &err);
    if (rc == 0 && !a->quiet)
        printf("onnx: %s  (opset 13; input [N,1,%d,%d] %s; output %s [N,%d])\n", a->onnx_out, s.net.input_size,
               s.net.input_size, a->bare ? "normalised" : "raw pixels 0..255", a->bare ? "logits" : "probabilities",
               s.net.classes);
    session_close(&s);
    return rc == 0 ? 0 : fail_with(&err);
}

/* ---- eval and predict ---- */

int cli_eval(const cli_args *a)
{
    model_session s;
    eval_result res;
    tr_error err = { 0 };
    const thread_count threads = threads_resolve(a->threads);
    int rc = 0, nthreads = threads.n;
    if (session_open(&s, a->model, a->sets, a->nsets, NULL, &err) != 0 || session_load_test(&s, NULL, &err) != 0) {
        rc = fail_with(&err);
        goto out;
    }
    double t0 = timer_now();
    if (session_workspaces(&s, nthreads, &err) != 0 ||
        eval_dataset(&s.net, &s.test, 0, s.test.count, s.cfg.normalize, s.ws, nthreads, &res, NULL, NULL,
                     &err) != 0) {
        rc = fail_with(&err);
        goto out;
    }
    double secs = timer_now() - t0;
    int k = s.cfg.classes;
    if (!a->quiet) {
        char line[200];
        printf("model %s on %s: %zu images in %.3f s, %s, mean loss %.4f\n\n", a->model, s.cfg.test_images,
               s.test.count, secs, threads_phrase(line, sizeof line, threads, 1), res.loss);
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
    session_close(&s);
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

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* One JSON object per line; %.9g keeps every bit of a float. */
static void print_prediction_json(const char *name, long index, const float *probs, int k)
{
    fputs("{\"file\":", stdout);
    print_json_string(name);
    if (index >= 0)
        printf(",\"index\":%ld", index);
    printf(",\"class\":%d,\"probabilities\":[", net_argmax(probs, k));
    for (int c = 0; c < k; c++)
        printf(c ? ",%.9g" : "%.9g", probs[c]);
    printf("]}\n");
}

static void classify(const network *net, net_workspace *ws, const uint8_t *pixels, int normalize, float *probs)
{
    size_t n = (size_t)net->input_size * net->input_size;
    data_normalize(ws->acts[0], pixels, n, normalize);
    softmax_forward(probs, net_predict(net, ws), net->classes);
}

/* --save-input: DIR/NAME.png (NAME: the file's name less its extension),
 * DIR/NAME-INDEX.png for the images of an IDX file. */
static int save_input(const char *dir, const char *path, long index, const uint8_t *px, int side, tr_error *err)
{
    char copy[PATH_MAX], out[PATH_MAX + 64];
    snprintf(copy, sizeof copy, "%s", path);
    char *name = basename(copy), *dot = strchr(name, '.');
    if (dot && dot != name)
        *dot = '\0';
    if (index >= 0)
        snprintf(out, sizeof out, "%s/%s-%ld.png", dir, name, index);
    else
        snprintf(out, sizeof out, "%s/%s.png", dir, name);
    uint8_t rgb[3 * 64 * 64];
    if ((size_t)side * side > sizeof rgb / 3)
        return tr_fail(err, TR_EINPUT, "%s: --save-input handles inputs up to 64x64", out);
    for (size_t i = 0; i < (size_t)side * side; i++)
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = px[i];
    if (make_parent_dirs(out, err) != 0)
        return -1;
    return png_write_rgb(out, rgb, side, side, err);
}

/* One image (INDEX in an IDX file, -1 for a picture) made into what the
 * network sees, saved if asked, classified and printed. Returns 0 or an
 * exit status (message printed). */
static int predict_image(const cli_args *a, model_session *s, const char *path, long index, const uint8_t *pixels,
                         const gray_image *img, int mnist, uint8_t *seen)
{
    tr_error err = { 0 };
    const config *cfg = &s->cfg;
    int side = cfg->input_size;
    if (mnist) {
        char name[PATH_MAX + 32];
        snprintf(name, sizeof name, index >= 0 ? "%s[%ld]" : "%s", path, index);
        if (preprocess_mnist(name, pixels, img->width, img->height, side, seen, &err) != 0)
            return fail_with(&err);
    } else if (img->width != (uint32_t)side || img->height != (uint32_t)side) {
        return cli_error(TR_EINPUT, "%s: images are %ux%u, the model takes %dx%d (--preprocess mnist scales them)",
                         path, img->width, img->height, side, side);
    } else {
        memcpy(seen, pixels, (size_t)img->width * img->height);
    }
    if (a->save_input && save_input(a->save_input, path, index, seen, side, &err) != 0)
        return fail_with(&err);
    float probs[256];
    classify(&s->net, &s->ws[0], seen, cfg->normalize, probs);
    (a->json ? print_prediction_json : print_prediction)(path, index, probs, cfg->classes);
    return 0;
}

/* One input file: a picture, or every image of an IDX file. */
static int predict_file(const cli_args *a, model_session *s, const char *path, uint8_t *seen)
{
    tr_error err = { 0 };
    uint8_t *data = NULL;
    size_t len = 0, count = 1;
    gray_image img = { 0 };
    const uint8_t *pixels = NULL;
    int is_image = 0, rc = 0;
    if (idx_slurp(path, &data, &len, &err) != 0)
        rc = fail_with(&err);
    else if ((is_image = image_sniff(data, len) != IMAGE_NONE) || len < 4 || data[0] || data[1] || data[2] != 8)
        rc = image_decode(path, data, len, &img, &err) != 0 ? fail_with(&err) : 0;
    else if (idx_parse_images(path, data, len, &count, &img.height, &img.width, &pixels, &err) != 0)
        rc = fail_with(&err);
    if (rc == 0 && is_image)
        pixels = img.pixels;
    /* Pictures are made to look like MNIST; IDX files already do. */
    int mnist = a->preprocess ? !strcmp(a->preprocess, "mnist") : is_image;
    size_t n = (size_t)img.width * img.height;
    if (rc == 0 && count == 0)
        rc = cli_error(TR_EINPUT, "%s: holds no images", path);
    for (size_t j = 0; rc == 0 && j < count && !ferror(stdout); j++)
        rc = predict_image(a, s, path, is_image ? -1 : (long)j, pixels + j * n, &img, mnist, seen);
    image_free(&img);
    free(data);
    return rc;
}

int cli_predict(const cli_args *a)
{
    model_session s;
    tr_error err = { 0 };
    if (session_open(&s, a->model, a->sets, a->nsets, NULL, &err) != 0 || session_workspaces(&s, 1, &err) != 0) {
        session_close(&s);
        return fail_with(&err);
    }
    const config *cfg = &s.cfg;
    int side = cfg->input_size;
    uint8_t *seen = malloc((size_t)side * side); /* what the network sees */
    int rc = seen ? 0 : cli_error(TR_ERUNTIME, "out of memory");
    if (!a->json && rc == 0)
        printf("# input: class (p=probability) then the probability of each class 0..%d\n", cfg->classes - 1);
    for (int i = 0; i < a->ninputs && rc == 0 && !ferror(stdout); i++)
        rc = predict_file(a, &s, a->inputs[i], seen);
    free(seen);
    session_close(&s);
    return rc;
}

static int stdout_closed;

void cli_start(void)
{
    /* A standard stream the caller closed (trainer >&-) would lend its
     * number to the next file opened, a lock file or a model, which would
     * then receive the log. Hold the numbers with /dev/null instead. */
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (nfd >= 0 && nfd != fd)
            close(nfd); /* cannot happen: the lowest free number is FD */
        if (fd == STDOUT_FILENO)
            stdout_closed = 1;
    }
}

int cli_finish(int rc)
{
    /* The output is the result: losing it (a full disk, a closed pipe) is a
     * failure, even if the work behind it succeeded. */
    if (stdout_closed) {
        cli_error(TR_ERUNTIME, "write error on standard output: %s", strerror(EBADF));
        return rc ? rc : TR_ERUNTIME;
    }
    int flush_failed = fflush(stdout) != 0;
    int saved = errno;
    if (flush_failed || ferror(stdout) || fclose(stdout) != 0) {
        if (flush_failed || !ferror(stdout))
            cli_error(TR_ERUNTIME, "write error on standard output: %s", strerror(flush_failed ? saved : errno));
        else
            cli_error(TR_ERUNTIME, "write error on standard output");
        return rc ? rc : TR_ERUNTIME;
    }
    return rc;
}
