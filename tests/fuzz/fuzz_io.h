/* fuzz_io.h - gives fuzz input a file name, since the readers under test
 * take paths: an anonymous memory file, named through /proc/self/fd. */
#ifndef FUZZ_IO_H
#define FUZZ_IO_H

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static int fuzz_file(const unsigned char *data, size_t size, char *path, size_t path_size)
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    snprintf(path, path_size, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
