/*
 * npy.c - float32 .npy writer and reader (npy.h). Format: magic "\x93NUMPY", version 1.0, a
 * little-endian u16 header length, a Python-dict header padded with spaces to a multiple of 64
 * bytes ending in '\n', then the raw little-endian data.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "util/npy.h"

int npy_write_f32(const char *path, const float *data, size_t rows, size_t cols, char *err,
		  size_t errlen)
{
	char hdr[256], tmp[4096];
	int n =
	    snprintf(hdr, sizeof hdr,
		     "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", rows, cols);
	int total = 10 + n + 1;
	int pad = (64 - total % 64) % 64;
	memset(hdr + n, ' ', (size_t)pad);
	hdr[n + pad] = '\n';
	uint16_t hl = (uint16_t)(n + pad + 1);
	snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot create: %s", path, strerror(e));
		return -e;
	}
	unsigned char lead[10] = {0x93,
				  'N',
				  'U',
				  'M',
				  'P',
				  'Y',
				  1,
				  0,
				  (unsigned char)(hl & 0xFF),
				  (unsigned char)(hl >> 8)};
	int ok = fwrite(lead, 1, 10, f) == 10 && fwrite(hdr, 1, hl, f) == hl &&
		 fwrite(data, sizeof(float), rows * cols, f) == rows * cols;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path)) {
		int e = errno ? errno : EIO;
		unlink(tmp);
		snprintf(err, errlen, "%s: write failed: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

int npy_read_f32(const char *path, float **data, size_t *rows, size_t *cols, char *err,
		 size_t errlen)
{
	unsigned char lead[10];
	char hdr[1024];
	*data = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (fread(lead, 1, 10, f) != 10 || memcmp(lead, "\x93NUMPY", 6) || lead[6] != 1)
		goto bad;
	size_t hl = lead[8] | (size_t)lead[9] << 8;
	if (hl >= sizeof hdr || fread(hdr, 1, hl, f) != hl)
		goto bad;
	hdr[hl] = 0;
	char *sh = strstr(hdr, "'shape': (");
	if (!strstr(hdr, "'<f4'") || strstr(hdr, "'fortran_order': True") || !sh ||
	    sscanf(sh, "'shape': (%zu, %zu)", rows, cols) != 2)
		goto bad;
	if (*rows && *cols > SIZE_MAX / sizeof(float) / *rows)
		goto bad;
	*data = malloc(*rows * *cols * sizeof(float) + 1);
	if (!*data || fread(*data, sizeof(float), *rows * *cols, f) != *rows * *cols)
		goto bad;
	fclose(f);
	return 0;
bad:
	fclose(f);
	free(*data);
	*data = NULL;
	snprintf(err, errlen, "%s: header: not a 2-D float32 C-order .npy file", path);
	return -EINVAL;
}
