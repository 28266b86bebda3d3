#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch_sched.h"
#include "checkpoint.h"
#include "data.h"
#include "dist.h"
#include "eval.h"
#include "files.h"
#include "idx.h"
#include "network.h"
#include "optim.h"
#include "rng.h"
#include "runlog.h"
#include "threads.h"
#include "timer.h"
#include "version.h"
#include "tree.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Everything one run holds, allocated once before the first batch. */
typedef struct {
    const config *cfg;
    dataset train, test;
    size_t ntrain, nval; /* the validation set is the last nval training images */
    network net;
    optimizer opt;
    train_state state;
    provenance prov;   /* recorded in every model and checkpoint written */
    double seconds_before; /* training time of the runs this one resumes */
    int nthreads;
    size_t threads_all, threads_idle; /* gather_threads */
    int threads_min, threads_max;
    net_workspace *ws; /* one per thread */
    float *slots;      /* train.blocks gradient buffers of slot_stride floats */
    size_t slot_stride;
    float *grad;
    float *losses;
    uint8_t *hits;
    uint32_t *order;
    uint8_t *preds; /* one evaluation's predictions, gathered across ranks */
    char ckpt_path[CONFIG_PATH_MAX + 8];
    char steps_path[CONFIG_PATH_MAX + 16];
    int ckpt_written; /* this run has published ckpt_path */
    int dist_failed; /* an MPI collective failed inside a batch */
    tr_error dist_err;
    volatile sig_atomic_t *stop; /* train_options.stop */
    int stop_seen;   /* some rank had a stop signal when the last batch was exchanged */
    const train_options *opts;
    train_result *res;
    int leader;      /* rank 0: the one that writes files and reports */
    runlog_writer metrics_log, steps_log;
    double first_loss; /* this run's first batch loss, the yardstick for divergence; -1 before it */
} run;

void train_checkpoint_path(const config *cfg, char *out, size_t size)
{
    if (cfg->checkpoint[0])
        snprintf(out, size, "%s", cfg->checkpoint);
    else
        snprintf(out, size, "%s.ckpt", cfg->model);
}

static void shuffle(uint32_t *order, size_t n, uint64_t seed, uint64_t epoch)
{
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    rng_t r = rng_seed(seed, RNG_STREAM_SHUFFLE, epoch);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rng_below(&r, (uint32_t)(i + 1));
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* Warm start: the weights of a trained model of the same architecture, with
 * fresh optimizer state and schedule. */
static int init_from(run *r, const char *path, tr_error *err)
{
    config model_cfg;
    network model_net;
    if (checkpoint_load(path, &model_cfg, &model_net, NULL, NULL, err) != 0)
        return -1;
    int rc = 0;
    if (!net_same_architecture(&model_net, &r->net))
        rc = tr_fail(err, TR_EINPUT, "%s: its network differs from the config's, so it cannot start this run",
                     path);
    else
        memcpy(r->net.params, model_net.params, r->net.nparams * sizeof(float));
    net_free(&model_net);
    return rc;
}

/* The keys a resume may change: none of them changes the weights. The
 * thread count is not a config key, and may change too. */
static const char *const resume_may_change[] = { "train.epochs", "train.test_every", "output.", NULL };

static int resume_from(run *r, const char *path, tr_error *err)
{
    config ck_cfg;
    network ck_net;
    optimizer ck_opt;
    provenance ck_prov;
    if (checkpoint_load_prov(path, &ck_cfg, &ck_net, &ck_opt, &r->state, &ck_prov, err) != 0)
        return -1;
    /* The run goes on: its training time so far and its last measured
     * accuracy carry over, so an interrupted run records what an
     * uninterrupted one would. */
    r->seconds_before = ck_prov.train_seconds;
    if (ck_prov.version[0]) {
        r->prov.test_accuracy = ck_prov.test_accuracy;
        r->prov.test_correct = ck_prov.test_correct;
        r->prov.test_total = ck_prov.test_total;
    }
    provenance_free(&ck_prov);
    int rc = 0;
    if (!net_same_architecture(&ck_net, &r->net))
        rc = tr_fail(err, TR_EINPUT, "%s: its network differs from the config's; resume with the config it was trained with",
                     path);
    else if (ck_opt.kind != r->opt.kind)
        rc = tr_fail(err, TR_EINPUT, "%s: was trained with optimizer '%s', the config says '%s'", path,
                     config_optimizer_name(ck_opt.kind), config_optimizer_name(r->cfg->optimizer));
    else if (r->state.epoch > (uint64_t)r->cfg->epochs)
        rc = tr_fail(err, TR_EINPUT, "%s: already trained %llu epochs, the config asks for %d", path,
                     (unsigned long long)r->state.epoch, r->cfg->epochs);
    char diff[768];
    /* A config that never named train.blocks, resuming a checkpoint written
     * before the key existed, is told which value it was trained with. */
    const char *legacy = ck_cfg.blocks != r->cfg->blocks && ck_cfg.blocks == MODEL_LEGACY_BLOCKS
                             ? "; a checkpoint written before train.blocks was a key cut every batch into 64 "
                               "blocks: add --set train.blocks=64"
                             : "";
    if (rc == 0 && config_diff(&ck_cfg, r->cfg, resume_may_change, diff, sizeof diff) > 0)
        rc = tr_fail(err, TR_EINPUT,
                     "%s: was trained with another config; it differs in %s%s. Resume with the config and --set "
                     "options it was trained with: only train.epochs, train.test_every, output.* and --threads may change",
                     path, diff, legacy);
    /* The config agrees, so the data decides how many batches an epoch has. */
    const uint64_t B = (uint64_t)r->cfg->batch_size, nbatches = (r->ntrain + B - 1) / B;
    if (rc == 0 && (r->state.batch >= nbatches || r->state.step != r->state.epoch * nbatches + r->state.batch))
        rc = tr_fail(err, TR_EINPUT,
                     "%s: its position (%llu epochs and %llu batches done, step %llu) does not fit %zu training "
                     "images in batches of %llu (%llu batches an epoch); have the data files changed?",
                     path, (unsigned long long)r->state.epoch, (unsigned long long)r->state.batch,
                     (unsigned long long)r->state.step, r->ntrain, (unsigned long long)B,
                     (unsigned long long)nbatches);
    if (rc == 0) {
        memcpy(r->net.params, ck_net.params, r->net.nparams * sizeof(float));
        for (int i = 0; i < r->opt.nstate; i++)
            memcpy(r->opt.state[i], ck_opt.state[i], r->opt.n * sizeof(float));
        r->opt.t = ck_opt.t;
    }
    net_free(&ck_net);
    optim_free(&ck_opt);
    return rc;
}

/* The training and test sets, checked against the config and each other. */
static int load_sets(run *r, const config *cfg, tr_error *err)
{
    /* Inflating the gz files is most of the start-up: the training and test
     * sets load at once when there are two threads. A failure of the
     * training set is reported first, as if they had loaded in turn. */
    tr_error load_err[2];
    memset(load_err, 0, sizeof load_err);
    int load_rc[2] = { 0, 0 };
    /* Each file's hash is taken from the bytes as they are read. */
    data_file *plan = NULL;
    size_t nplan = 0;
    if (data_plan(cfg, &plan, &nplan, err) != 0)
        return -1;
    r->prov.files = plan;
    r->prov.nfiles = nplan;
    snprintf(r->prov.version, sizeof r->prov.version, "%s", TRAINER_VERSION);
    r->prov.seed = cfg->seed;
    r->prov.test_accuracy = -1.0;
#pragma omp parallel sections num_threads(r->nthreads >= 2 ? 2 : 1)
    {
#pragma omp section
        load_rc[0] = data_load_train(&r->train, plan, nplan, cfg, &load_err[0]);
#pragma omp section
        load_rc[1] = data_load_test(&r->test, plan, nplan, cfg, &load_err[1]);
    }
    for (int i = 0; i < 2; i++)
        if (load_rc[i] != 0)
            return tr_fail(err, load_err[i].code ? load_err[i].code : TR_ERUNTIME, "%s", load_err[i].msg);
    if (r->train.rows != (uint32_t)cfg->input_size || r->train.cols != (uint32_t)cfg->input_size)
        return tr_fail(err, TR_EINPUT, "%s: images are %ux%u but model.input_size is %d", cfg->train_images,
                       r->train.rows, r->train.cols, cfg->input_size);
    if (r->test.rows != r->train.rows || r->test.cols != r->train.cols)
        return tr_fail(err, TR_EINPUT, "%s: images are %ux%u but the training images are %ux%u",
                       cfg->test_images, r->test.rows, r->test.cols, r->train.rows, r->train.cols);
    if (r->train.count > UINT32_MAX)
        return tr_fail(err, TR_EINPUT, "%s: more than 2^32 images", cfg->train_images);
    r->nval = (size_t)((double)r->train.count * cfg->val_fraction);
    r->ntrain = r->train.count - r->nval;
    if (r->ntrain < (size_t)cfg->batch_size)
        return tr_fail(err, TR_EINPUT, "%s: %zu training images, fewer than one batch of %d",
                       cfg->train_images, r->ntrain, cfg->batch_size);
    return 0;
}

/* The cut of a batch of BS samples into blocks of *PER consecutive samples
 * (the last may be short): as even as the configuration's block count
 * allows, and never an empty block. Returns the number of blocks. */
static size_t batch_blocks(const config *cfg, size_t bs, size_t *per)
{
    size_t n = bs < (size_t)cfg->blocks ? bs : (size_t)cfg->blocks;
    *per = (bs + n - 1) / n;
    return (bs + *per - 1) / *per;
}

/* Per-thread workspaces, the gradient slots and the per-batch arrays. */
static int alloc_buffers(run *r, const config *cfg, tr_error *err)
{
    r->ws = net_workspaces_create(&r->net, r->nthreads, err);
    if (!r->ws)
        return -1;
    /* Whole cache lines per slot: two threads never write one line. */
    r->slot_stride = (r->net.nparams + 15) & ~(size_t)15;
    /* A short last batch can be cut into more blocks than a full one (batch
     * 50 is 13 blocks of 4, a last batch of 16 is 16 blocks of 1). */
    size_t nslots = cfg->batch_size < cfg->blocks ? (size_t)cfg->batch_size : (size_t)cfg->blocks;
    if (r->slot_stride > SIZE_MAX / sizeof(float) / nslots)
        return tr_fail(err, TR_ERUNTIME, "%zu gradient buffers of %zu parameters do not fit in memory", nslots,
                       r->net.nparams);
    r->slots = tr_alloc_aligned(nslots * r->slot_stride * sizeof(float), err);
    r->grad = tr_alloc_aligned(r->slot_stride * sizeof(float), err);
    r->losses = tr_calloc((size_t)cfg->batch_size, sizeof(float), err);
    r->hits = tr_calloc((size_t)cfg->batch_size, 1, err);
    r->order = tr_calloc(r->ntrain, sizeof(uint32_t), err);
    size_t most = r->nval > r->test.count ? r->nval : r->test.count;
    r->preds = tr_calloc(most ? most : 1, 1, err);
    if (!r->slots || !r->grad || !r->losses || !r->hits || !r->order || !r->preds)
        return -1;
    return 0;
}

static int setup(run *r, const config *cfg, const train_options *opts, tr_error *err)
{
    r->cfg = cfg;
    if (net_create(&r->net, cfg, err) != 0 || load_sets(r, cfg, err) != 0)
        return -1;
    net_init_params(&r->net, cfg->init, (uint64_t)cfg->seed);
    if (optim_create(&r->opt, cfg, r->net.nparams, err) != 0)
        return -1;
    /* Each layer's weights and bias learn at its own scale. */
    for (int i = 0; i < r->net.nlayers; i++) {
        const net_layer *l = &r->net.layers[i];
        if (l->nweights + l->nbias &&
            optim_add_segment(&r->opt, l->w_off, l->nweights + l->nbias, l->lr_scale, err) != 0)
            return -1;
    }
    r->state.best_val = -1.0;
    if (opts->init_from && init_from(r, opts->init_from, err) != 0)
        return -1;
    if (opts->resume && resume_from(r, opts->resume, err) != 0)
        return -1;

    if (alloc_buffers(r, cfg, err) != 0)
        return -1;
    train_checkpoint_path(cfg, r->ckpt_path, sizeof r->ckpt_path);
    runlog_steps_path(cfg->metrics, r->steps_path, sizeof r->steps_path);
    if (make_parent_dirs(cfg->model, err) != 0 || make_parent_dirs(r->ckpt_path, err) != 0 ||
        (cfg->metrics[0] && make_parent_dirs(cfg->metrics, err) != 0))
        return -1;
    return 0;
}

static void teardown(run *r)
{
    net_workspaces_free(r->ws, r->nthreads);
    free(r->slots);
    free(r->grad);
    free(r->losses);
    free(r->hits);
    free(r->order);
    free(r->preds);
    optim_free(&r->opt);
    net_free(&r->net);
    dataset_free(&r->train);
    dataset_free(&r->test);
    provenance_free(&r->prov);
}

/* Parameters per chunk of the optimizer step: whole cache lines, and
 * enough work to be worth another core reading the gradient, weights and
 * optimizer state. 12 chunks of 512 for the default network's 5,994 took
 * twice as long at 2 threads as 2 chunks of 4096 (5.6 against 2.7 ms an
 * epoch of 30,000 images, an instrumented scheduler), and 2-3% of the
 * training speed. From 8 threads on, the step is on every batch's critical
 * path and the next batch's readers of the weights are many: chunks of 512
 * trained 1.06x faster at 8 threads and 1.04x at 16 (16-core Xeon, batch
 * 64, one-epoch runs of 60,000 images, order rotated, medians of 7). The
 * bytes do not depend on the cut: each parameter's update is its own. */
static size_t train_chunk(int nthreads)
{
    return nthreads >= 8 ? 512 : 4096;
}

/* ---- The batches of one epoch ----
 *
 * One parallel region per epoch. Thread 0 runs the batch loop; each batch
 * is cut into blocks of samples, each block's gradient going to its own
 * slot. The slots are summed in tree order as the blocks finish (sum_up);
 * then reduction chunks of parameters each step the optimizer
 * (batch_sched.h spreads blocks and chunks over the threads). Which thread
 * runs a block or a chunk changes nothing. */
typedef struct {
    run *r;
    /* The batch, written by thread 0 before sched_step. */
    size_t start, bs, per, nblocks;
    int summed; /* several ranks: gather_ranks puts the sum in grad (dist_tree_sum) */
    /* Per tree pair, indexed by its src: how many of its two children are complete. */
    _Atomic unsigned char arrived[TRAIN_MAX_BLOCKS];
    uint64_t epoch;
    float lr;
} batch_job;

/* Block K's gradient is in its slot: the tree additions it completes. The
 * second child of a pair to finish makes the addition, while its own slot
 * is warm, and goes on up; so the tree is summed during the blocks, by all
 * the threads, with exactly tree_pairs' additions (tree.h), and the root's
 * slot 0 holds the batch's gradient when the last block returns. */
static void sum_up(batch_job *b, uint32_t k)
{
    run *r = b->r;
    const uint32_t top = tree_root_level(b->nblocks);
    tree_node node = { k, 0 }, parent;
    tree_pair pair;
    for (; node.level < top; node = parent) {
        if (!tree_up(b->nblocks, node, &parent, &pair))
            continue;
        /* acq_rel: the second sees the first's slot, and whoever sums the
         * parent sees both. */
        if (atomic_fetch_add_explicit(&b->arrived[pair.src], 1, memory_order_acq_rel) == 0)
            return;
        tree_apply(r->slots, r->slot_stride, &pair, 1, 0, r->net.nparams);
    }
}

static void run_block(void *ctx, void *worker, uint32_t k)
{
    batch_job *b = ctx;
    run *r = b->r;
    net_workspace *ws = worker;
    const config *cfg = r->cfg;
    const network *net = &r->net;
    float *slot = r->slots + k * r->slot_stride;
    memset(slot, 0, net->nparams * sizeof(float));
    size_t end = (k + 1) * b->per < b->bs ? (k + 1) * b->per : b->bs;
    for (size_t s = k * b->per; s < end; s++) {
        size_t idx = r->order[b->start + s];
        if (s + 1 < end)
            data_prefetch(&r->train, r->order[b->start + s + 1]);
        int dx, dy, predicted;
        data_augment_shift((uint64_t)cfg->seed, b->epoch, idx, cfg->augment_shift, &dx, &dy);
        data_sample(ws->acts[0], &r->train, idx, cfg->normalize, dx, dy);
        int label = r->train.labels[idx];
        r->losses[s] = net_train_sample(net, net->params, ws, label, slot, &predicted);
        r->hits[s] = predicted == label;
    }
    if (!b->summed)
        sum_up(b, k);
}

/* grad[c0, c1) = the blocks' sum (slot 0, or with several ranks already
 * in grad) over the batch size; then those parameters step. */
static void run_chunk(void *ctx, void *worker, uint32_t c)
{
    (void)worker;
    const batch_job *b = ctx;
    run *r = b->r;
    const size_t nparams = r->net.nparams;
    const size_t chunk = train_chunk(r->nthreads);
    size_t c0 = (size_t)c * chunk, c1 = c0 + chunk < nparams ? c0 + chunk : nparams;
    const float inv = 1.0f / (float)b->bs;
    float *restrict g = r->grad;
    if (b->summed)
        for (size_t j = c0; j < c1; j++)
            g[j] *= inv;
    else
        for (size_t j = c0; j < c1; j++)
            g[j] = r->slots[j] * inv;
    optim_update_range(&r->opt, r->net.params, g, c0, c1, b->lr);
}

/* With several ranks: every rank's blocks summed in tree order into grad,
 * with the losses, hits and stop flag, once this rank's blocks are done. */
static void gather_ranks(void *ctx)
{
    batch_job *b = ctx;
    run *r = b->r;
    dist_extras x = { { r->losses, r->hits }, { sizeof(float), 1 }, b->per, b->bs, r->stop && *r->stop };
    if (dist_tree_sum(r->slots, r->slot_stride, r->net.nparams, b->nblocks, r->grad, &x, &r->dist_err) != 0)
        r->dist_failed = 1;
    r->stop_seen = x.flag;
}

/* Thread 0: one mini-batch of BS samples starting at order[start]. */
static void train_batch(run *r, batch_sched *sched, batch_job *b, size_t start, size_t bs, uint64_t epoch,
                        float lr, net_workspace *ws)
{
    size_t per, nblocks = batch_blocks(r->cfg, bs, &per);

    optim_begin_step(&r->opt);
    b->start = start;
    b->bs = bs;
    b->per = per;
    b->nblocks = nblocks;
    size_t first, end;
    dist_share(nblocks, dist_rank(), &first, &end);
    b->summed = dist_size() > 1;
    for (size_t k = 0; k < nblocks; k++)
        atomic_store_explicit(&b->arrived[k], 0, memory_order_relaxed);
    b->epoch = epoch;
    b->lr = lr;
    /* Thread 0 is the one that talks to MPI (gather_ranks). */
    const size_t chunk = train_chunk(r->nthreads), nchunks = (r->net.nparams + chunk - 1) / chunk;
    sched_step(sched, (uint32_t)first, (uint32_t)(end - first), (uint32_t)nchunks, b->summed ? gather_ranks : NULL,
               ws);

    for (size_t s = 0; s < bs; s++) {
        r->state.loss_sum += r->losses[s];
        r->state.correct += r->hits[s];
    }
    r->state.seen += bs;
    r->state.step++;
}

/* Accuracy and mean loss on COUNT images from FIRST; each rank takes its
 * share and the predictions and loss sums are gathered, so every rank gets
 * the same figures. */
static int evaluate(run *r, size_t first, size_t count, const dataset *ds, double *acc, size_t *correct,
                    double *loss, tr_error *err)
{
    size_t mine0, mine1;
    dist_share(count, dist_rank(), &mine0, &mine1);
    eval_result res;
    if (eval_dataset(&r->net, ds, first + mine0, mine1 - mine0, r->cfg->normalize, r->ws, r->nthreads, &res,
                     r->preds + mine0, NULL, err) != 0)
        return -1;
    double my_sum = res.loss * (double)(mine1 - mine0);
    eval_result_free(&res);
    const size_t nranks = (size_t)dist_size();
    double *sums = tr_calloc(nranks, sizeof *sums, err);
    if (!sums)
        return -1;
    sums[dist_rank()] = my_sum;
    if (dist_allgather(r->preds, count, 1, count, 1, err) != 0 ||
        dist_allgather(sums, nranks, 1, nranks, sizeof *sums, err) != 0) {
        free(sums);
        return -1;
    }
    double total = 0;
    for (size_t i = 0; i < nranks; i++)
        total += sums[i];
    free(sums);
    size_t hits = 0;
    for (size_t i = 0; i < count; i++)
        hits += r->preds[i] == ds->labels[first + i];
    *correct = hits;
    *acc = count ? (double)hits / (double)count : -1.0;
    *loss = count ? total / (double)count : -1.0;
    return 0;
}

/* The provenance of a file written now, holding the weights of EPOCHS
 * epochs after SECONDS of training in this run. */
static const provenance *stamp(run *r, uint64_t epochs, double seconds)
{
    r->prov.epochs = epochs;
    r->prov.train_seconds = provenance_clock_fixed() ? 0 : r->seconds_before + seconds;
    r->prov.created = provenance_now();
    return &r->prov;
}

/* ---- The run, step by step ----
 *
 * train_run: start_run; then per epoch run_epoch (the batch loop) and, as
 * it ended, finish_epoch (evaluation, the best epoch, the log rows, the
 * files), stop_run (a signal: checkpoint and return) or diverged (an
 * error naming what is left). Only rank 0 writes files and reports; every
 * failure is agreed on by all ranks, so none waits forever in a
 * collective. */

/* The start-up line: sizes, threads, kernels and what a step sends. */
static void report_start(const run *r, double load_seconds)
{
    const train_options *opts = r->opts;
    const size_t B = (size_t)r->cfg->batch_size;
    char kernels[512];
    net_kernel_summary(&r->net, kernels, sizeof kernels);
    size_t per, nblocks = batch_blocks(r->cfg, B, &per);
    train_start_info info = { r->ntrain, r->nval, r->test.count, r->net.nparams, r->nthreads,
                              opts->threads_cut_from, nblocks, per,
                              load_seconds, opts->resume ? (int)r->state.epoch : -1,
                              opts->resume ? (int)r->state.batch : -1, opts->resume ? opts->resume : r->ckpt_path,
                              dist_size(), r->threads_all, r->threads_idle, r->threads_min, r->threads_max, SIZE_MAX,
                              0, kernels, net_train_flops(&r->net),
                              net_live_train_flops(&r->net) };
    for (int k = 0; k < dist_size(); k++) {
        size_t bytes = dist_step_bytes(r->net.nparams, nblocks, B, sizeof(float) + 1, k, dist_size());
        info.step_bytes_min = bytes < info.step_bytes_min ? bytes : info.step_bytes_min;
        info.step_bytes_max = bytes > info.step_bytes_max ? bytes : info.step_bytes_max;
    }
    opts->obs.on_start(opts->obs.user, &info);
}

/* Every rank's thread count, for the start-up line: mpirun's binding can
 * give ranks different counts, and a rank's threads beyond its own share
 * of a batch's blocks have nothing to do. */
static int gather_threads(run *r, tr_error *err)
{
    const int n = dist_size();
    int *counts = tr_calloc((size_t)n, sizeof(int), err);
    /* Every rank learns whether all could allocate before the collective. */
    if (dist_agree(counts ? 0 : -1, err) != 0) {
        free(counts);
        return -1;
    }
    counts[dist_rank()] = r->nthreads;
    int rc = dist_agree(dist_allgather(counts, (size_t)n, 1, (size_t)n, sizeof(int), err), err);
    size_t per, nblocks = batch_blocks(r->cfg, (size_t)r->cfg->batch_size, &per);
    r->threads_all = r->threads_idle = 0;
    r->threads_min = r->threads_max = counts[0];
    for (int k = 0; k < n; k++) {
        size_t first, end;
        dist_share(nblocks, k, &first, &end);
        r->threads_all += (size_t)counts[k];
        if ((size_t)counts[k] > end - first)
            r->threads_idle += (size_t)counts[k] - (end - first);
        r->threads_min = counts[k] < r->threads_min ? counts[k] : r->threads_min;
        r->threads_max = counts[k] > r->threads_max ? counts[k] : r->threads_max;
    }
    free(counts);
    return rc;
}

/* Everything loaded and allocated, the logs open, the observer told. */
static int start_run(run *r, const config *cfg, tr_error *err)
{
    double t_load = timer_now();
    if (dist_agree(setup(r, cfg, r->opts, err), err) != 0)
        return -1;
    snprintf(r->res->checkpoint, sizeof r->res->checkpoint, "%s", r->ckpt_path);
    const int resumed = r->opts->resume != NULL;
    if (dist_agree(r->leader ? runlog_start_metrics(&r->metrics_log, cfg->metrics, r->state.epoch, resumed, err) ||
                                   runlog_start_steps(&r->steps_log, r->steps_path, r->state.step, resumed, err)
                             : 0,
                   err) != 0)
        return -1;
    r->first_loss = -1.0;
    if (gather_threads(r, err) != 0)
        return -1;
    if (r->opts->armed)
        *r->opts->armed = 1; /* from here a stop is honoured with a checkpoint */
    if (r->leader && r->opts->obs.on_start)
        report_start(r, timer_now() - t_load);
    return 0;
}

/* How an epoch's batch loop ended. */
typedef enum { EPOCH_DONE, EPOCH_STOPPED, EPOCH_DIVERGED, EPOCH_FAILED } epoch_end;

/* One pass over the training set, as far as it got. */
typedef struct {
    uint64_t epoch;     /* 0-based */
    double t0;          /* when its batch loop began */
    size_t done_before; /* its samples trained by the run this one resumes */
    float lr;           /* at its last step */
    uint64_t batch;     /* the last batch begun: where it stopped or diverged */
    double batch_loss;  /* that batch's mean loss */
} epoch_pass;

/* Not finite, or exploding while still finite: a loss of 1e31 trains
 * nothing either. */
static int diverging(run *r, double batch_loss)
{
    if (r->first_loss < 0)
        r->first_loss = batch_loss;
    double ceiling = TRAIN_LOSS_BLOWUP * (r->first_loss > 1 ? r->first_loss : 1);
    return !isfinite(r->state.loss_sum) || !(batch_loss <= ceiling);
}

/* The progress bar, at most five times a second. */
static void report_progress(const run *r, const epoch_pass *e, size_t done, double *last)
{
    double now = timer_now();
    if (r->leader && r->opts->obs.on_progress && now - *last > 0.2) {
        *last = now;
        r->opts->obs.on_progress(r->opts->obs.user, done, r->ntrain,
                                 (double)(done - e->done_before) / (now - e->t0));
    }
}

/* Thread 0: the batches of epoch E->epoch, from the batch the state is at. */
static epoch_end batch_loop(run *r, epoch_pass *e, batch_sched *sched, batch_job *job)
{
    const config *cfg = r->cfg;
    const size_t B = (size_t)cfg->batch_size;
    const uint64_t nbatches = (r->ntrain + B - 1) / B;
    double last_progress = e->t0;
    for (uint64_t b = r->state.batch; b < nbatches; b++) {
        e->batch = b;
        /* With MPI, each batch's exchange carries the stop flag. */
        if (b == r->state.batch || dist_size() == 1 ? dist_any(r->opts->stop && *r->opts->stop) : r->stop_seen)
            return EPOCH_STOPPED;
        size_t start = (size_t)b * B, bs = start + B <= r->ntrain ? B : r->ntrain - start;
        e->lr = (float)schedule_lr(cfg, r->state.step, nbatches);
        double loss_before = r->state.loss_sum;
        train_batch(r, sched, job, start, bs, e->epoch, e->lr, &r->ws[0]);
        e->batch_loss = (r->state.loss_sum - loss_before) / (double)bs;
        runlog_add_step(&r->steps_log, r->state.step, e->epoch + 1, e->batch_loss, e->lr);
        if (r->dist_failed)
            return EPOCH_FAILED;
        if (diverging(r, e->batch_loss))
            return EPOCH_DIVERGED;
        report_progress(r, e, start + bs, &last_progress);
    }
    return EPOCH_DONE;
}

/* One pass over the training set: thread 0 runs the batch loop, the other
 * threads help with each batch (batch_sched.h). */
static epoch_end run_epoch(run *r, epoch_pass *e)
{
    shuffle(r->order, r->ntrain, (uint64_t)r->cfg->seed, e->epoch);
    e->t0 = timer_now();
    e->done_before = (size_t)(r->state.batch * (uint64_t)r->cfg->batch_size);
    epoch_end end = EPOCH_DONE;
    batch_job job = { .r = r };
    batch_sched sched;
    sched_init(&sched, &(sched_work){ run_block, run_chunk, &job }, r->nthreads);
#pragma omp parallel num_threads(r->nthreads)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        if (tid != 0) {
            sched_help(&sched, tid, &r->ws[tid]);
        } else {
            end = batch_loop(r, e, &sched, &job);
            sched_quit(&sched);
        }
    }
    return end;
}

/* A stop signal: the state after the last whole batch goes to the
 * checkpoint, for a resume to continue from. */
static int stop_run(run *r, const epoch_pass *e, tr_error *err)
{
    r->state.epoch = e->epoch;
    r->state.batch = e->batch;
    const provenance *p = stamp(r, e->epoch, r->res->train_seconds + (timer_now() - e->t0));
    /* The step log goes with the checkpoint, which a resume reads it
     * against; the epoch table stays with the model until the next epoch
     * ends. */
    if (dist_agree(r->leader ? checkpoint_save_prov(r->ckpt_path, r->cfg, &r->net, &r->opt, &r->state, p, err) ||
                                   runlog_publish(&r->steps_log, err)
                             : 0,
                   err))
        return -1;
    /* Another rank may have seen the signal first. */
    const train_options *opts = r->opts;
    r->res->interrupted_by = opts->stop && *opts->stop ? (int)*opts->stop : SIGTERM;
    return 0;
}

/* The error for a diverged epoch, naming what the user can go back to. */
static int diverged(const run *r, const epoch_pass *e, tr_error *err)
{
    /* Name a checkpoint only if it is this run's: one it wrote, or the one
     * it resumed from. */
    char last[CONFIG_PATH_MAX + 96];
    if (r->ckpt_written)
        snprintf(last, sizeof last, "the last good checkpoint is %s (end of epoch %llu)", r->ckpt_path,
                 (unsigned long long)e->epoch);
    else if (r->opts->resume)
        snprintf(last, sizeof last, "the checkpoint it resumed from, %s, is untouched", r->opts->resume);
    else
        snprintf(last, sizeof last, "no checkpoint was written");
    char what[96];
    if (isfinite(e->batch_loss))
        snprintf(what, sizeof what, "the batch loss %.3g is over %d times its first value %.3g", e->batch_loss,
                 TRAIN_LOSS_BLOWUP, r->first_loss);
    else
        snprintf(what, sizeof what, "the loss is not finite");
    return tr_fail(err, TR_ERUNTIME,
                   "training diverged in epoch %llu, batch %llu (step %llu): %s; try a lower train.lr (now %g); %s",
                   (unsigned long long)e->epoch + 1, (unsigned long long)e->batch + 1,
                   (unsigned long long)r->state.step, what, r->cfg->lr, last);
}

/* Whether output.model takes this epoch's weights: with a validation set
 * the best epoch's, without one the latest. */
static int keeps_model(const run *r, double val_acc)
{
    return r->nval == 0 || val_acc > r->state.best_val;
}

/* Whether EPOCH (0-based) is tested (train.test_every): every N-th, the
 * last, and with a validation set every epoch whose weights output.model
 * keeps, so the model always records its test accuracy. */
static int test_due(const run *r, uint64_t epoch, double val_acc)
{
    const uint64_t every = (uint64_t)r->cfg->test_every;
    return epoch + 1 == (uint64_t)r->cfg->epochs || (every && (epoch + 1) % every == 0) ||
           (r->nval && keeps_model(r, val_acc));
}

/* Validation and test accuracy of the weights as they are now; an epoch
 * not tested gets -1, and the files written with its weights say "not
 * measured". */
static int evaluate_epoch(run *r, uint64_t epoch, epoch_report *rep, tr_error *err)
{
    double t1 = timer_now();
    size_t val_correct;
    if (r->nval && evaluate(r, r->ntrain, r->nval, &r->train, &rep->val_acc, &val_correct, &rep->val_loss, err) != 0)
        return -1;
    rep->test_acc = rep->test_loss = -1.0;
    r->prov.test_accuracy = -1.0;
    r->prov.test_correct = r->prov.test_total = 0;
    if (test_due(r, epoch, rep->val_acc)) {
        if (evaluate(r, 0, r->test.count, &r->test, &rep->test_acc, &r->res->test_correct, &rep->test_loss, err) != 0)
            return -1;
        r->res->test_acc = rep->test_acc;
        r->res->test_total = r->test.count;
        r->prov.test_accuracy = rep->test_acc;
        r->prov.test_correct = r->res->test_correct;
        r->prov.test_total = r->test.count;
    }
    rep->eval_seconds = timer_now() - t1;
    return 0;
}

/* The state moves to the next epoch. With a validation set the model file
 * keeps the best epoch; without one, the latest: returns whether this
 * epoch's weights are kept. */
static int close_epoch(run *r, uint64_t epoch, double val_acc)
{
    int better = keeps_model(r, val_acc);
    if (r->nval && better) {
        r->state.best_val = val_acc;
        r->state.best_epoch = epoch + 1;
    }
    r->state.epoch = epoch + 1;
    r->state.batch = 0;
    r->state.loss_sum = 0.0;
    r->state.correct = r->state.seen = 0;
    return better;
}

/* The epoch's row, the model (if BETTER), the checkpoint, then the logs. */
static int save_epoch(run *r, uint64_t epoch, epoch_report *rep, int better, tr_error *err)
{
    const config *cfg = r->cfg;
    const double row[M_NCOL] = { [M_EPOCH] = rep->epoch,         [M_TRAIN_LOSS] = rep->train_loss,
                                 [M_TRAIN_ACC] = rep->train_acc, [M_VAL_ACC] = rep->val_acc,
                                 [M_TEST_ACC] = rep->test_acc,   [M_LR] = rep->lr,
                                 [M_RATE] = rep->samples_per_s,  [M_SECS] = rep->seconds,
                                 [M_TEST_LOSS] = rep->test_loss, [M_VAL_LOSS] = rep->val_loss };
    runlog_add_epoch(&r->metrics_log, row);
    const provenance *p = stamp(r, epoch + 1, r->res->train_seconds);
    int wrc = 0;
    if (r->leader && better)
        wrc = checkpoint_save_prov(cfg->model, cfg, &r->net, NULL, NULL, p, err);
    rep->saved_model = better;
    if (r->leader && wrc == 0)
        wrc = checkpoint_save_prov(r->ckpt_path, cfg, &r->net, &r->opt, &r->state, p, err);
    /* The logs right after the files they describe (see runlog_writer). */
    if (r->leader && wrc == 0)
        wrc = runlog_publish(&r->metrics_log, err) || runlog_publish(&r->steps_log, err) ? -1 : 0;
    if (dist_agree(wrc, err) != 0)
        return -1;
    r->ckpt_written = 1;
    if (r->leader && r->opts->obs.on_epoch)
        r->opts->obs.on_epoch(r->opts->obs.user, rep);
    return 0;
}

/* After a whole epoch: its figures, the evaluation, the files. */
static int finish_epoch(run *r, const epoch_pass *e, tr_error *err)
{
    double train_secs = timer_now() - e->t0;
    r->res->train_seconds += train_secs;
    epoch_report rep = { .epoch = (int)e->epoch + 1, .epochs = r->cfg->epochs, .lr = e->lr, .val_acc = -1.0,
                         .val_loss = -1.0 };
    rep.train_loss = r->state.loss_sum / (double)r->state.seen;
    rep.train_acc = (double)r->state.correct / (double)r->state.seen;
    rep.seconds = train_secs;
    rep.samples_per_s = (double)(r->ntrain - e->done_before) / train_secs;
    if (evaluate_epoch(r, e->epoch, &rep, err) != 0)
        return -1;
    int better = close_epoch(r, e->epoch, rep.val_acc);
    return save_epoch(r, e->epoch, &rep, better, err);
}

int train_run(const config *cfg, const train_options *opts, train_result *res, tr_error *err)
{
    memset(res, 0, sizeof *res);
    run r;
    memset(&r, 0, sizeof r);
    r.stop = opts->stop;
    r.opts = opts;
    r.nthreads = opts->nthreads > 0 ? opts->nthreads : threads_resolve(0).n;
    r.res = res;
    r.leader = dist_rank() == 0;
    int rc = start_run(&r, cfg, err);
    for (uint64_t epoch = r.state.epoch; rc == 0 && epoch < (uint64_t)cfg->epochs; epoch++) {
        epoch_pass e = { .epoch = epoch };
        epoch_end end = run_epoch(&r, &e);
        if (end == EPOCH_STOPPED) {
            rc = stop_run(&r, &e, err);
            break;
        }
        if (end == EPOCH_FAILED)
            rc = tr_fail(err, r.dist_err.code, "%s", r.dist_err.msg);
        else if (end == EPOCH_DIVERGED)
            rc = diverged(&r, &e, err);
        else
            rc = finish_epoch(&r, &e, err);
    }
    runlog_free(&r.metrics_log);
    runlog_free(&r.steps_log);
    teardown(&r);
    return rc;
}
