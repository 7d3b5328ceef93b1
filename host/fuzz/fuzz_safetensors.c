/*
 * fuzz_safetensors.c - libFuzzer target: st_parse_header (host/load/safetensors.c) on arbitrary bytes
 * taken as a whole safetensors file image, then st_find on every tensor and st_close. Every
 * accepted tensor must lie inside the buffer with nbytes == numel * dtype size.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "load/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_model m;
	char err[256];
	memset(&m, 0, sizeof m);
	int rc = st_parse_header(&m, data, size, 0, "x.safetensors", err, sizeof err);
	if (rc == 0) {
		for (int i = 0; i < m.n_tensors; i++) {
			const struct st_tensor *t = &m.tensors[i];
			const uint8_t *p = t->data;
			uint64_t numel = 1;
			for (int d = 0; d < t->ndim; d++)
				numel *= (uint64_t)t->shape[d];
			if (p < data || p + t->nbytes > data + size ||
			    numel * st_dtype_size(t->dtype) != t->nbytes ||
			    st_find(&m, t->name) != t)
				abort();
			if (i && strcmp(m.tensors[i - 1].name, t->name) >= 0)
				abort();
		}
	} else if ((rc != -EINVAL && rc != -ENOMEM) || m.n_tensors || strchr(err, '\n')) {
		abort();
	}
	st_close(&m);
	return 0;
}
