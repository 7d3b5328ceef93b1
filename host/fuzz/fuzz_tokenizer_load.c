/*
 * fuzz_tokenizer_load.c - libFuzzer target for tokenizer.json loading (host/text/tokenizer.c): the input
 * is written as a tokenizer.json and loaded; when it loads, a few texts are encoded and decoded
 * and the bytes must come back. Must never crash, leak, read out of bounds or hang.
 * Seeds: host/fuzz/corpus/fuzz_tokenizer_load/ (small byte-level BPE tokenizer.json files using
 * every Split behavior, a normalizer and added tokens).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "text/tokenizer.h"

static char dir[] = "/tmp/moecard-fuzz-tok-XXXXXX", path[64];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!path[0]) {
		if (!mkdtemp(dir))
			return 0;
		snprintf(path, sizeof path, "%s/tokenizer.json", dir);
		atexit(cleanup);
	}
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	struct tokenizer *t;
	char err[256];
	if (tokenizer_load(path, &t, err, sizeof err))
		return 0;
	static const char *texts[] = {"Hello, world! 123456 a-b--c",
				      "\xe4\xbd\xa0\xe5\xa5\xbd \xff\xc3", "<s>x</s>  \r\n\t"};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		int32_t *ids;
		size_t n;
		if (tokenizer_encode(t, texts[i], strlen(texts[i]), TOKENIZER_ENC_ADD_SPECIAL, &ids,
				     &n))
			continue;
		char *s;
		size_t sl;
		if (!tokenizer_decode(t, ids, n, 0, &s, &sl))
			free(s);
		for (size_t k = 0; k < n; k++)
			(void)tokenizer_token_str(t, ids[k]);
		free(ids);
	}
	tokenizer_free(t);
	return 0;
}
