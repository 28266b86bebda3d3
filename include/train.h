/* train.h - the training loop: epochs of shuffled mini-batches, each batch
 * split across OpenMP threads, then one deterministic reduction and one
 * optimizer step; evaluation, metrics and a checkpoint after every epoch.
 *
 * Reproducibility: a batch is cut into at most train.blocks contiguous
 * blocks of samples, a cut that depends only on the configuration. Each block's
 * gradient is summed in sample order into its own buffer, whichever thread
 * runs it, and the buffers are summed over a fixed binary tree of the
 * blocks (tree.h). The model bytes are therefore the same for any thread
 * count. Threads claim blocks (and then
 * reduction chunks) from shared counters rather than meeting at barriers,
 * so a thread the OS has descheduled delays nothing: which thread runs
 * what varies from run to run, the bytes do not. With MPI (dist.h) the
 * blocks are also shared out across ranks; each sums its whole subtrees
 * and the ranks finish the same tree, so the bytes do not depend on the
 * rank count either. */
#ifndef TRAINER_TRAIN_H
#define TRAINER_TRAIN_H

#include <signal.h>
#include <stddef.h>

#include "config.h"
#include "error.h"

/* The ceiling of train.blocks, the gradient blocks per batch. The blocks
 * cap the threads (of all ranks together) that one batch can keep busy;
 * each costs a gradient buffer to clear and sum (24 KB for the default
 * network). 16 blocks of 4 samples at batch 64 ran 5-7% faster than 64
 * blocks of one on 1 and on 2 cores (scripts/bench.sh), and keep up to 16
 * threads busy; a machine with more cores raises train.blocks. */
#define TRAIN_MAX_BLOCKS 256

/* A batch loss above this many times the run's first batch loss (or above
 * this many nats when that was below 1) is divergence, as a non-finite one
 * is: a loss that explodes but stays finite trains nothing either. */
#define TRAIN_LOSS_BLOWUP 100

typedef struct {
    int epoch, epochs;                 /* epoch is 1-based */
    double train_loss, train_acc;
    double val_acc, test_acc;          /* -1 when there is no such set */
    double val_loss, test_loss;        /* mean cross-entropy; -1 when there is no such set */
    double lr;                         /* at the epoch's last step */
    double samples_per_s, seconds;     /* training only, evaluation excluded */
    double eval_seconds;
    int saved_model;                   /* output.model was written this epoch */
} epoch_report;

typedef struct {
    size_t train_count, val_count, test_count;
    size_t nparams;
    int nthreads;
    int threads_cut_from;              /* rank 0's: what OMP_NUM_THREADS or the default asked for, where nthreads is fewer; else 0 */
    size_t nblocks, block_samples;     /* a full batch's gradient blocks, and samples per block */
    double load_seconds;
    int resumed_epoch, resumed_batch;  /* -1 when starting fresh */
    const char *checkpoint;
    int nranks;                        /* MPI ranks (1 without MPI) */
    /* Over all ranks (gathered at start: binding can give ranks different
     * counts): threads in all, the fewest and most of one rank, and how
     * many have no block of a full batch to work on (a rank works only
     * its own share of the blocks). */
    size_t threads_all, threads_idle;
    int threads_min, threads_max;
    size_t step_bytes_min, step_bytes_max; /* what a rank sends per full batch, over the ranks (dist.h) */
    const char *kernels;               /* each layer's kernel path (net_kernel_summary) */
    double flops_per_sample;           /* net_train_flops */
    double live_flops_per_sample;      /* net_live_train_flops: what the passes compute */
} train_start_info;

typedef struct {
    void (*on_start)(void *user, const train_start_info *info);
    void (*on_progress)(void *user, size_t done, size_t total, double samples_per_s);
    void (*on_epoch)(void *user, const epoch_report *r);
    void *user;
} train_observer;

typedef struct {
    const char *resume;                /* checkpoint to continue from, or NULL */
    const char *init_from;             /* model whose weights replace the random init (warm start), or NULL */
    int nthreads;                      /* 0: threads_resolve(0) */
    int threads_cut_from;              /* threads_resolve's, for the start-up line */
    volatile sig_atomic_t *stop;       /* set to a signal number to stop after the batch */
    volatile sig_atomic_t *armed;      /* set to 1 once a stop would be honoured (training has begun) */
    train_observer obs;
} train_options;

typedef struct {
    int interrupted_by;                /* the signal that stopped training, or 0 */
    double test_acc;
    size_t test_correct, test_total;
    double train_seconds;
    char checkpoint[CONFIG_PATH_MAX + 8];
} train_result;

int train_run(const config *cfg, const train_options *opts, train_result *res, tr_error *err);

/* The checkpoint path: output.checkpoint, or output.model + ".ckpt". */
void train_checkpoint_path(const config *cfg, char *out, size_t size);

#endif
