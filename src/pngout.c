#include "pngout.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <string.h>

int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, tr_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return tr_fail(err, TR_ERUNTIME, "%s: cannot create: %s", path, strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory in libpng", path);
    }
    /* libpng reports errors by longjmp; nothing below needs cleaning up
     * beyond what the handler does. */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return tr_fail(err, TR_ERUNTIME, "%s: libpng failed to write the image", path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(rgb + (size_t)y * w * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0)
        return tr_fail(err, TR_ERUNTIME, "%s: write failed: %s", path, strerror(errno));
    return 0;
}
