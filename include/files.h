/* files.h - the file system, done one way for every file the trainer reads
 * or writes: a whole file read into memory (plain or gzip), publication
 * that a reader sees whole or not at all, mkdir -p, the lock a writer holds
 * and the temp files a killed writer left. The formats (IDX, model, CSV,
 * report) live in their own modules and call these. */
#ifndef TRAINER_FILES_H
#define TRAINER_FILES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "error.h"

/* The largest file read, decompressed: far above MNIST (47 MB) yet small
 * enough that a hostile header cannot make us allocate the machine. */
#define FILES_MAX_BYTES ((size_t)1 << 30)
/* The longest path handled here; equal to CONFIG_PATH_MAX. */
#define FILES_PATH_MAX 1024

/* What the first bytes of a file's content say about its size. */
enum { FILES_CONTENT_UNKNOWN, FILES_CONTENT_EXACT, FILES_CONTENT_CAPPED };

/* How many bytes content starting with the N bytes at HEAD may have, or 0
 * while N is too short to tell (AT_END: there is no more); *KIND says how
 * sure that is. EXACT: more is an error; CAPPED: an upper bound; UNKNOWN:
 * read no further than what is there. A format module supplies this. */
typedef size_t (*files_content_limit)(const uint8_t *head, size_t n, int at_end, int *kind);

/* Reads the whole of PATH (gzip, multi-member gzip or plain) into a fresh
 * buffer. Fails on a truncated or corrupt stream, on anything after the
 * last gzip member, and on an empty file, never returning part of a file.
 * LIMIT (NULL: FILES_MAX_BYTES) bounds how far a stream or a gzip member is
 * read. SHA256 (32 bytes, may be NULL) gets the hash of the bytes as stored. */
int files_read_all(const char *path, files_content_limit limit, uint8_t **data, size_t *len, uint8_t *sha256,
                   tr_error *err);

/* malloc(N), with the kernel asked to back it with huge pages when it is
 * big (free it with free): a buffer that will be filled at once, such as
 * the training pixels with data.extra appended, faults in 512 times fewer
 * pages. Only a hint. */
void *files_alloc_big(size_t n);

/* The largest text file (a config) read: a config is a few KB; more means
 * the wrong file was named. */
#define FILES_TEXT_MAX_BYTES ((size_t)1 << 24)

/* Reads PATH as stored (never inflated) into a fresh NUL-terminated
 * buffer: a text file, which may be empty but may hold no NUL byte, and
 * which with its NUL stays below FILES_TEXT_MAX_BYTES. WHAT names the kind of file in the
 * messages ("cannot open config: ...", "config file too large"). */
int files_read_text(const char *path, const char *what, char **text, size_t *len, tr_error *err);

/* Writes LEN bytes to PATH atomically: a temp file beside it (PATH.tmp.
 * XXXXXX), fsync, rename, fsync of the folder. A reader sees the old file
 * or the new one, never a mix; on failure the old one is untouched. */
int atomic_write_file(const char *path, const void *data, size_t len, tr_error *err);

/* The second half of that, for a file a writer has already written and
 * closed at TMP (beside PATH): fsync, rename onto PATH, fsync the folder. */
int files_publish(const char *tmp, const char *path, tr_error *err);

/* Creates the directories above PATH that are missing (mkdir -p). */
int make_parent_dirs(const char *path, tr_error *err);

/* The writer's lock, in two steps so that a caller can compare the lock
 * file's identity (ST) with the ones it holds before it locks: opens (and
 * creates) LOCK_PATH, returning its descriptor or -1 with errno set. */
int files_lock_open(const char *lock_path, struct stat *st);

/* Takes an exclusive flock on FD without waiting and writes our pid into
 * it; the lock lasts while FD stays open. Returns 0, or 1 when another
 * process holds it: then FD is closed and *HOLDER is that process's pid
 * when it still runs (0 when unknown or gone). */
int files_lock_take(int fd, long *holder);

/* Removes the temp files (PATH.tmp.XXXXXX, as mkstemp names them) that a
 * killed writer of PATH left; PATH is a name, never a pattern. Call it only
 * while holding PATH's lock. */
void files_remove_stale_temps(const char *path);

#endif
