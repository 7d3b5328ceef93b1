/*
 * npy.h - writes float32 NumPy .npy files (format version 1.0), used by --dump-logits and the
 * golden tests. Written to a temporary file and renamed, so an existing file is replaced whole or
 * not at all.
 */
#ifndef MOECARD_NPY_H
#define MOECARD_NPY_H

#include <stddef.h>

/* npy_write_f32 - data [rows][cols] row-major to path. 0 or -errno (message in err). */
int npy_write_f32(const char *path, const float *data, size_t rows, size_t cols, char *err,
		  size_t errlen);

/* npy_read_f32 - reads a 2-D '<f4' C-order array; *data is malloc'd. 0 or -errno/-EINVAL. */
int npy_read_f32(const char *path, float **data, size_t *rows, size_t *cols, char *err,
		 size_t errlen);

#endif
