#include "outputs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
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
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return tr_fail(err, TR_EINPUT, "%s = %s: cannot create the lock file %s: %s", o->key, o->path, lock,
                       strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return tr_fail(err, TR_ERUNTIME, "%s: cannot stat: %s", lock, strerror(errno));
    }
    for (int i = 0; i < nheld; i++)
        if (held[i].lock_dev == st.st_dev && held[i].lock_ino == st.st_ino) {
            close(fd);
            return tr_fail(err, TR_EINPUT, "%s and %s name the same file, %s", held[i].key, o->key, o->path);
        }
    o->lock_dev = st.st_dev;
    o->lock_ino = st.st_ino;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        /* The pid is the last holder's; name it only if it still runs (a
         * lock taken by other means, flock(1) say, leaves an old one). */
        long holder = strtol(pid, NULL, 10);
        if (holder <= 0 || (kill((pid_t)holder, 0) != 0 && errno != EPERM))
            pid[0] = '\0';
        const char *is_model = !strcmp(o->key, "output.model") ? "this model"
                               : o->is_dir                      ? "this folder"
                                                                : "this file";
        return tr_fail(err, TR_ERUNTIME, "%s: another trainer%s%s%s is writing %s; wait for it or set %s", o->path,
                       pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "", is_model, o->key);
    }
    char line[32];
    int len = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        /* The lock holds without the pid; the pid only makes the message nicer. */
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
        train_steps_path(cfg->metrics, outs[n++].path, sizeof outs[0].path);
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
            outputs_remove_stale_temps(outs[i].path);
    return 0;
}

void outputs_remove_stale_temps(const char *path)
{
    char dir[CONFIG_PATH_MAX + 24];
    const char *base = base_name(path);
    size_t dlen = (size_t)(base - path), blen = strlen(base);
    if (dlen >= sizeof dir || blen == 0)
        return;
    memcpy(dir, path, dlen);
    dir[dlen] = '\0';
    DIR *d = opendir(dlen ? dir : ".");
    if (!d)
        return;
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        /* NAME.tmp. and the six characters mkstemp chose, compared as text. */
        if (strncmp(name, base, blen) != 0 || strncmp(name + blen, ".tmp.", 5) != 0)
            continue;
        const char *tail = name + blen + 5;
        if (strlen(tail) != 6 || strspn(tail, alnum) != 6)
            continue;
        char victim[2 * CONFIG_PATH_MAX + 64];
        if (snprintf(victim, sizeof victim, "%s%s", dir, name) < (int)sizeof victim)
            unlink(victim);
    }
    closedir(d);
}
