/*
 * fuzz_tokenizer_encode.c - libFuzzer target for tokenizer_encode / decode / streaming decode on
 * arbitrary bytes (valid or invalid UTF-8, special-token text). Uses the DeepSeek-V3 tokenizer from
 * $MOECARD_TOKENIZER_DIR or build/cache/deepseek_v3_tokenizer (`make deps`), else a small built-in
 * byte-level BPE with DeepSeek-V3's pre-tokenizer regexes. Invariants (abort on violation): the
 * token bytes reproduce the input exactly; streaming decode equals tokenizer_decode.
 * The first input byte picks the encode flags. Seeds: host/fuzz/corpus/fuzz_tokenizer_encode/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "text/tokenizer.h"

static const char builtin[] =
    "{\"added_tokens\":[{\"id\":260,\"content\":\"<\xef\xbd\x9cUser\xef\xbd\x9c>\",\"special\":"
    "false},"
    "{\"id\":261,\"content\":\"<s>\",\"special\":true}],"
    "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
    "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\p{N}{1,3}\"},\"behavior\":\"Isolated\","
    "\"invert\":false},"
    "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-"
    "\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+\"},"
    "\"behavior\":\"Isolated\",\"invert\":false},"
    "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[!\\\"#$%&'()*+,\\\\-./"
    ":;<=>?@\\\\[\\\\\\\\\\\\]^_`{|}~][A-Za-z]+|"
    "[^\\r\\n\\\\p{L}\\\\p{P}\\\\p{S}]?[\\\\p{L}\\\\p{M}]+| "
    "?[\\\\p{P}\\\\p{S}]+[\\r\\n]*|\\\\s*[\\r\\n]+|"
    "\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},"
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]},"
    "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{@BYTES@"
    "\"\xc4\xa0t\":256,\"he\":257,\"\xc4\xa0the\":258,\"\xc4\xa0th\":259},"
    "\"merges\":[\"\xc4\xa0 t\",\"h e\",\"\xc4\xa0t h\",\"\xc4\xa0th e\"]}}";

static struct tokenizer *load(void)
{
	const char *dir = getenv("MOECARD_TOKENIZER_DIR");
	struct tokenizer *t = NULL;
	char err[256];
	if (!dir)
		dir = "build/cache/deepseek_v3_tokenizer";
	if (!tokenizer_load(dir, &t, err, sizeof err))
		return t;
	/* built-in: 256 byte tokens (ids = byte values) spliced into the vocab */
	char bytes[256 * 12], *w = bytes;
	for (int b = 0; b < 256; b++) {
		unsigned cp = b <= 32		       ? 256u + b
			      : (b >= 127 && b <= 160) ? 256u + 33 + (b - 127)
			      : b == 173	       ? 323u
						       : (unsigned)b;
		char s[8];
		if (cp == '"' || cp == '\\')
			snprintf(s, sizeof s, "\\%c", cp);
		else if (cp < 0x80)
			snprintf(s, sizeof s, "%c", cp);
		else
			snprintf(s, sizeof s, "%c%c", 0xC0 | (cp >> 6), 0x80 | (cp & 0x3F));
		w += sprintf(w, "\"%s\":%d,", s, b);
	}
	size_t cap = sizeof builtin + sizeof bytes;
	char *json = malloc(cap);
	static char path[64];
	static char tdir[] = "/tmp/moecard-fuzz-enc-XXXXXX";
	if (!json || !mkdtemp(tdir)) {
		free(json);
		return NULL;
	}
	const char *at = strstr(builtin, "@BYTES@");
	size_t head = (size_t)(at - builtin);
	memcpy(json, builtin, head);
	strcpy(json + head, bytes);
	strcat(json, at + 7);
	snprintf(path, sizeof path, "%s/tokenizer.json", tdir);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs(json, f);
		fclose(f);
	}
	free(json);
	int rc = tokenizer_load(path, &t, err, sizeof err);
	unlink(path);
	rmdir(tdir);
	if (rc) {
		fprintf(stderr, "fuzz_tokenizer_encode: built-in tokenizer: %s\n", err);
		abort();
	}
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tokenizer *t;
	if (!t && !(t = load()))
		return 0;
	if (size == 0)
		return 0;
	unsigned flags = data[0] & (TOKENIZER_ENC_SPLIT_SPECIAL | TOKENIZER_ENC_NO_ADDED);
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	int32_t *ids;
	size_t n;
	if (tokenizer_encode(t, text, len, flags, &ids, &n))
		return 0;
	/* the bytes of the tokens are the input */
	size_t w = 0;
	uint8_t *raw = malloc(len + 1);
	for (size_t i = 0; raw && i < n; i++) {
		size_t l;
		const uint8_t *b = tokenizer_token_bytes(t, ids[i], &l);
		if (!b || w + l > len || memcmp(text + w, b, l))
			abort();
		memcpy(raw + w, b, l);
		w += l;
	}
	if (raw && w != len)
		abort();
	free(raw);
	/* streaming decode == decode */
	char *full;
	size_t fl;
	if (!tokenizer_decode(t, ids, n, 0, &full, &fl)) {
		size_t cap = tokenizer_stream_cap(t), ol, acc = 0;
		char *out = malloc(cap);
		struct tokenizer_stream st;
		tokenizer_stream_init(&st, t, 0);
		for (size_t i = 0; out && i <= n; i++) {
			int rc = i < n ? tokenizer_stream_push(&st, ids[i], out, cap, &ol)
				       : tokenizer_stream_flush(&st, out, cap, &ol);
			if (rc || acc + ol > fl || memcmp(full + acc, out, ol))
				abort();
			acc += ol;
		}
		if (out && acc != fl)
			abort();
		free(out);
		free(full);
	}
	free(ids);
	return 0;
}
