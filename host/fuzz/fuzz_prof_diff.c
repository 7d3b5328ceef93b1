/*
 * fuzz_prof_diff.c - libFuzzer target: `moecard profile diff` (host/prof/prof_diff.c) on arbitrary
 * summary.json bytes, compared with themselves and with a valid summary (both orders, with and
 * without --only card). Any input must diff (the worst relative difference >= 0) or fail with
 * -EINVAL/-ENOMEM and a one-line message naming the input; never crash, leak or read out of
 * bounds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prof/prof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char good[] =
    "{\"moecard_profile\":1,\"decode_steps\":2,\"token_mean_us\":10,\"ops\":["
    "{\"name\":\"q_b (gemv)\",\"where\":\"card\",\"excl_us\":4},"
    "{\"name\":\"sampling\",\"where\":\"host\",\"excl_us\":2}],"
    "\"layers\":[{\"name\":\"layer 0\",\"layer\":0,\"excl_us\":6}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *out = fopen("/dev/null", "w");
	if (!out)
		return 0;
	const char *in = (const char *)data;
	for (int k = 0; k < 6; k++) {
		char err[256];
		double worst = -1;
		err[0] = 0;
		const char *only = k & 1 ? "card" : NULL;
		int rc =
		    k < 2 ? prof_diff_buf("in.json", in, size, "in.json", in, size, only, out, 1e3,
					  &worst, err, sizeof err)
		    : k < 4 ? prof_diff_buf("in.json", in, size, "good.json", good, sizeof good - 1,
					    only, out, 1e3, &worst, err, sizeof err)
			    : prof_diff_buf("good.json", good, sizeof good - 1, "in.json", in, size,
					    only, out, 1e3, &worst, err, sizeof err);
		if (rc == 0 ? !(worst >= 0)
			    : ((rc != -EINVAL && rc != -ENOMEM) || strchr(err, '\n') ||
			       strncmp(err, "in.json: ", 9)))
			abort();
		if (rc == 0 && k < 2 && worst != 0)
			abort(); /* a summary against itself differs nowhere */
	}
	fclose(out);
	return 0;
}
