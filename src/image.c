#include "image.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "pgm.h"

image_format image_sniff(const uint8_t *d, size_t len)
{
    static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    if (len >= 8 && !memcmp(d, png_sig, 8))
        return IMAGE_PNG;
    if (len >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
        return IMAGE_JPEG;
    if (pgm_sniff(d, len))
        return IMAGE_PNM;
    return IMAGE_NONE;
}

void image_free(gray_image *img)
{
    free(img->pixels);
    img->pixels = NULL;
}

static int check_size(const char *path, const char *format, size_t w, size_t h, tr_error *err)
{
    if (w == 0 || h == 0)
        return tr_fail(err, TR_EINPUT, "%s: the %s header says %zux%zu: an empty image", path, format, w, h);
    if (w > IMAGE_MAX_PIXELS || h > IMAGE_MAX_PIXELS / w)
        return tr_fail(err, TR_EINPUT, "%s: the %s header says %zux%zu, more than the %zu-megapixel limit", path,
                       format, w, h, IMAGE_MAX_PIXELS >> 20);
    return 0;
}

static uint32_t luma(uint32_t r, uint32_t g, uint32_t b)
{
    return (299 * r + 587 * g + 114 * b + 500) / 1000;
}

/* RGBA to grey. Where the image is see-through, the background shows: the
 * colour opposite to the average of what is drawn, so that strokes keep
 * their contrast whether they are dark or light. */
static void rgba_to_gray(const uint8_t *rgba, size_t n, uint8_t *out)
{
    uint64_t weight = 0, sum = 0;
    int see_through = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgba + 4 * i;
        see_through |= p[3] < 255;
        weight += p[3];
        sum += (uint64_t)p[3] * luma(p[0], p[1], p[2]);
    }
    uint32_t fill = see_through && weight && sum / weight < 128 ? 255 : 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgba + 4 * i;
        out[i] = (uint8_t)((p[3] * luma(p[0], p[1], p[2]) + (255u - p[3]) * fill + 127) / 255);
    }
}

/* ---- PNG (libpng) ---- */

typedef struct {
    const uint8_t *data;
    size_t len, pos;
    char msg[200]; /* libpng's own words for what went wrong */
} png_source;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_source *src = png_get_error_ptr(png);
    snprintf(src->msg, sizeof src->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png; /* a damaged ancillary chunk does not stop the image */
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
    png_source *src = png_get_io_ptr(png);
    if (src->len - src->pos < n)
        png_error(png, "the file ends early (truncated)");
    memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

static int decode_png(const char *path, const uint8_t *data, size_t len, gray_image *out, tr_error *err)
{
    png_source src = { data, len, 0, "" };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return tr_fail(err, TR_ERUNTIME, "%s: out of memory in libpng", path);
    }
    /* Set after setjmp and freed when libpng jumps back: volatile. */
    uint8_t *volatile rgba = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rgba);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        if (!err->msg[0]) /* check_size may have said why already */
            tr_fail(err, TR_EINPUT, "%s: bad or truncated PNG: %s", path, src.msg);
        return -1;
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (check_size(path, "PNG", w, h, err) != 0)
        png_longjmp(png, 1);
    /* Whatever the colour type and depth: 8-bit RGBA rows. */
    int type = png_get_color_type(png, info);
    png_set_expand(png); /* palette -> RGB, 1/2/4-bit grey -> 8, tRNS -> alpha */
    png_set_scale_16(png);
    if (!(type & PNG_COLOR_MASK_COLOR))
        png_set_gray_to_rgb(png);
    if (!(type & PNG_COLOR_MASK_ALPHA) && !png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 4)
        png_error(png, "unexpected row size after conversion to RGBA");
    rgba = malloc((size_t)w * h * 4);
    rows = malloc((size_t)h * sizeof *rows);
    if (!rgba || !rows)
        png_error(png, "out of memory");
    for (size_t y = 0; y < h; y++)
        rows[y] = rgba + y * w * 4;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    uint8_t *gray = malloc((size_t)w * h);
    if (!gray)
        png_error(png, "out of memory");
    rgba_to_gray(rgba, (size_t)w * h, gray);
    free(rgba);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    *out = (gray_image){ w, h, gray };
    return 0;
}

/* ---- JPEG (libjpeg-turbo) ---- */

typedef struct {
    struct jpeg_error_mgr mgr; /* first: libjpeg hands us a pointer to it */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_failure *f = (jpeg_failure *)c->err;
    c->err->format_message(c, f->msg);
    longjmp(f->jump, 1);
}

/* libjpeg pads a truncated file with grey and only warns: refuse it. Other
 * warnings (stray bytes between markers) leave a usable image. */
static void jpeg_on_message(j_common_ptr c, int level)
{
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_failure *f = (jpeg_failure *)c->err;
        snprintf(f->msg, sizeof f->msg, "the file ends early (truncated)");
        longjmp(f->jump, 1);
    }
}

static int decode_jpeg(const char *path, const uint8_t *data, size_t len, gray_image *out, tr_error *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail;
    uint8_t *volatile gray = NULL;
    cinfo.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = jpeg_on_error;
    fail.mgr.emit_message = jpeg_on_message;
    fail.msg[0] = '\0';
    if (setjmp(fail.jump)) {
        free(gray);
        jpeg_destroy_decompress(&cinfo);
        if (!err->msg[0])
            tr_fail(err, TR_EINPUT, "%s: bad or truncated JPEG: %s", path, fail.msg);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    if (check_size(path, "JPEG", cinfo.image_width, cinfo.image_height, err) != 0)
        longjmp(fail.jump, 1);
    cinfo.out_color_space = JCS_GRAYSCALE; /* libjpeg's luma, from YCbCr's Y */
    jpeg_start_decompress(&cinfo);
    size_t w = cinfo.output_width, h = cinfo.output_height;
    if (cinfo.output_components != 1) {
        snprintf(fail.msg, sizeof fail.msg, "%d components after conversion to grey", cinfo.output_components);
        longjmp(fail.jump, 1);
    }
    gray = malloc(w * h);
    if (!gray) {
        snprintf(fail.msg, sizeof fail.msg, "out of memory");
        longjmp(fail.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = gray + (size_t)cinfo.output_scanline * w;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *out = (gray_image){ (uint32_t)w, (uint32_t)h, gray };
    return 0;
}

int image_decode(const char *path, const uint8_t *data, size_t len, gray_image *out, tr_error *err)
{
    *out = (gray_image){ 0 };
    switch (image_sniff(data, len)) {
    case IMAGE_PNG:
        return decode_png(path, data, len, out, err);
    case IMAGE_JPEG:
        return decode_jpeg(path, data, len, out, err);
    case IMAGE_PNM:
        return pgm_parse(path, data, len, &out->pixels, &out->height, &out->width, err);
    case IMAGE_NONE:
        break;
    }
    return tr_fail(err, TR_EINPUT, "%s: not a PNG, JPEG, PGM/PPM or IDX image file", path);
}
