#include "outputs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "runlog.h"
#include "train.h"

typedef struct {
    const char *key;                  /* the config key that names it, for messages */
    char path[CONFIG_PATH_MAX + 24];  /* the file (for the report: the folder) */
    int is_dir;
    dev_t lock_dev;                   /* the lock file, to catch two keys naming one file */
    ino_t lock_ino;
} output;

/* Where a file's name begins in PATH. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int check_path(const output *o, const config *cfg, tr_error *err)
{
    const char *p = o->path;
    if (!p[0])
        return tr_fail(err, TR_EINPUT, "%s is empty: it must name a %s", o->key, o->is_dir ? "folder" : "file");
    if (!o->is_dir && (p[strlen(p) - 1] == '/' || !strcmp(base_name(p), ".") || !strcmp(base_name(p), "..")))
        return tr_fail(err, TR_EINPUT, "%s = %s names a folder; it must name a file", o->key, p);
    struct stat st;
    if (stat(p, &st) == 0) {
        if (o->is_dir && !S_ISDIR(st.st_mode))
            return tr_fail(err, TR_EINPUT, "%s = %s is not a folder", o->key, p);
        if (!o->is_dir && S_ISDIR(st.st_mode))
            return tr_fail(err, TR_EINPUT, "%s = %s is a folder; it must name a file", o->key, p);
        /* The trainer replaces what it writes (a rename): never a device. */
        if (!o->is_dir && !S_ISREG(st.st_mode))
            return tr_fail(err, TR_EINPUT, "%s = %s is not a regular file (a device, FIFO or socket)", o->key, p);
        /* Replacing a data file would destroy what the run reads. */
        const char *data[] = { cfg->train_images, cfg->train_labels, cfg->test_images, cfg->test_labels };
        const char *names[] = { "data.train_images", "data.train_labels", "data.test_images", "data.test_labels" };
        for (int i = 0; i < 4; i++) {
            struct stat ds;
            if (stat(data[i], &ds) == 0 && ds.st_dev == st.st_dev && ds.st_ino == st.st_ino)
                return tr_fail(err, TR_EINPUT, "%s = %s is %s, which the run reads", o->key, p, names[i]);
        }
    } else if (errno != ENOENT) {
        return tr_fail(err, TR_EINPUT, "%s = %s: %s", o->key, p, strerror(errno));
    }
    return 0;
}

/* Creates the folders above O and takes its lock. */
static int lock_one(output *o, int nheld, const output *held, tr_error *err)
{
    char lock[CONFIG_PATH_MAX + 48];
    if (snprintf(lock, sizeof lock, o->is_dir ? "%s/report.html.lock" : "%s.lock", o->path) >= (int)sizeof lock)
        return tr_fail(err, TR_EINPUT, "%s = %s: path too long", o->key, o->path);
    tr_error mk = { 0 };
    if (make_parent_dirs(lock, &mk) != 0)
        return tr_fail(err, TR_EINPUT, "%s: %s", o->key, mk.msg);
    struct stat st;
    int fd = files_lock_open(lock, &st);
    if (fd < 0)
        return tr_fail(err, TR_EINPUT, "%s = %s: cannot create the lock file %s: %s", o->key, o->path, lock,
                       strerror(errno));
    for (int i = 0; i < nheld; i++)
        if (held[i].lock_dev == st.st_dev && held[i].lock_ino == st.st_ino) {
            close(fd);
            return tr_fail(err, TR_EINPUT, "%s and %s name the same file, %s", held[i].key, o->key, o->path);
        }
    o->lock_dev = st.st_dev;
    o->lock_ino = st.st_ino;
    long holder;
    if (files_lock_take(fd, &holder) != 0) {
        char pid[48] = "";
        if (holder)
            snprintf(pid, sizeof pid, " (pid %ld)", holder);
        const char *is_model = !strcmp(o->key, "output.model") ? "this model"
                               : o->is_dir                      ? "this folder"
                                                                : "this file";
        return tr_fail(err, TR_ERUNTIME, "%s: another trainer%s is writing %s; wait for it or set %s", o->path, pid,
                       is_model, o->key);
    }
    return 0; /* fd stays open: the lock lasts until the process exits */
}

int outputs_claim(const config *cfg, tr_error *err)
{
    output outs[5];
    int n = 0;
    memset(outs, 0, sizeof outs);
    outs[n].key = "output.model";
    snprintf(outs[n++].path, sizeof outs[0].path, "%s", cfg->model);
    outs[n].key = cfg->checkpoint[0] ? "output.checkpoint" : "output.checkpoint (output.model + .ckpt)";
    train_checkpoint_path(cfg, outs[n++].path, sizeof outs[0].path);
    if (cfg->metrics[0]) {
        outs[n].key = "output.metrics";
        snprintf(outs[n++].path, sizeof outs[0].path, "%s", cfg->metrics);
        outs[n].key = "output.metrics (its step log)";
        runlog_steps_path(cfg->metrics, outs[n++].path, sizeof outs[0].path);
    }
    if (cfg->report[0]) {
        outs[n].key = "output.report";
        outs[n].is_dir = 1;
        snprintf(outs[n++].path, sizeof outs[0].path, "%s", cfg->report);
    }
    /* Every path is checked before the first folder or lock is made. */
    for (int i = 0; i < n; i++)
        if (check_path(&outs[i], cfg, err) != 0)
            return -1;
    for (int i = 0; i < n; i++)
        if (lock_one(&outs[i], i, outs, err) != 0)
            return -1;
    /* The locks are ours: no one else is mid-write. */
    for (int i = 0; i < n; i++)
        if (!outs[i].is_dir)
            files_remove_stale_temps(outs[i].path);
    return 0;
}
