/* digest.h - SHA-256 (nettle) for the provenance of models and data files:
 * what a model was trained on, and whether two models or two runs are the
 * same, reduce to comparing hex strings. */
#ifndef TRAINER_DIGEST_H
#define TRAINER_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include <nettle/sha2.h>

#define DIGEST_SIZE 32
#define DIGEST_HEX_SIZE (2 * DIGEST_SIZE + 1)

typedef struct sha256_ctx digest_ctx;

void digest_init(digest_ctx *ctx);
void digest_update(digest_ctx *ctx, const void *data, size_t len);
void digest_final(digest_ctx *ctx, uint8_t out[DIGEST_SIZE]);

/* SHA-256 of LEN bytes in one call. */
void digest_bytes(const void *data, size_t len, uint8_t out[DIGEST_SIZE]);

/* Lower-case hex, NUL-terminated. */
void digest_hex(const uint8_t d[DIGEST_SIZE], char hex[DIGEST_HEX_SIZE]);

#endif
