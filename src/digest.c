#include "digest.h"

void digest_init(digest_ctx *ctx)
{
    sha256_init(ctx);
}

void digest_update(digest_ctx *ctx, const void *data, size_t len)
{
    sha256_update(ctx, len, data);
}

void digest_final(digest_ctx *ctx, uint8_t out[DIGEST_SIZE])
{
    sha256_digest(ctx, DIGEST_SIZE, out);
}

void digest_bytes(const void *data, size_t len, uint8_t out[DIGEST_SIZE])
{
    digest_ctx ctx;
    digest_init(&ctx);
    digest_update(&ctx, data, len);
    digest_final(&ctx, out);
}

void digest_hex(const uint8_t d[DIGEST_SIZE], char hex[DIGEST_HEX_SIZE])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < DIGEST_SIZE; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * DIGEST_SIZE] = '\0';
}
