/*
 * test_generate.c - the text side of the generation loop (host/decode/generate.h): streaming output of
 * generated ids through gen_text with a byte-level tokenizer written by the test (one token per
 * byte, so every multi-byte character arrives split), stop strings (held-back prefixes, a stop
 * string across tokens, never printed), and the sampling flag parser. Checks with tests/harness.h.
 */
#include <errno.h>
#include <math.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "decode/generate.h"
#include "decode/sample.h"
#include "text/tokenizer.h"
#include "tests/harness.h"

/* A byte-level BPE with the 256 byte tokens (GPT-2 byte-to-unicode map) and no merges. */
static int write_byte_tokenizer(const char *dir)
{
	json_t *vocab = json_object();
	for (int b = 0; b < 256; b++) {
		int cp = b;
		if (b < 33)
			cp = 256 + b;
		else if (b >= 127 && b <= 160)
			cp = 256 + 33 + (b - 127);
		else if (b == 173)
			cp = 256 + 67;
		char s[4] = {0};
		if (cp < 0x80) {
			s[0] = (char)cp;
		} else {
			s[0] = (char)(0xC0 | (cp >> 6));
			s[1] = (char)(0x80 | (cp & 0x3F));
		}
		json_object_set_new(vocab, s, json_integer(b));
	}
	json_t *j = json_pack("{s:s,s:[],s:n,s:{s:s,s:b,s:b},s:{s:s},s:{s:s,s:o,s:[]}}", "version",
			      "1.0", "added_tokens", "normalizer", "pre_tokenizer", "type",
			      "ByteLevel", "add_prefix_space", 0, "use_regex", 1, "decoder", "type",
			      "ByteLevel", "model", "type", "BPE", "vocab", vocab, "merges");
	char f[600];
	snprintf(f, sizeof f, "%s/tokenizer.json", dir);
	int r = j ? json_dump_file(j, f, 0) : -1;
	json_decref(j);
	return r;
}

/* Valid UTF-8 made of whole characters? */
static int utf8_whole(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t l = c < 0x80	    ? 1
			   : (c >> 5) == 6  ? 2
			   : (c >> 4) == 14 ? 3
			   : (c >> 3) == 30 ? 4
					    : 0;
		if (!l || i + l > n)
			return 0;
		for (size_t k = 1; k < l; k++)
			if (((unsigned char)s[i + k] >> 6) != 2)
				return 0;
		i += l;
	}
	return 1;
}

/* Streams text byte-token by byte-token; returns the output, the push that reported a stop (or
 * -1) and whether every intermediate output was whole UTF-8 and free of a stop string. */
static char *stream(struct tokenizer *tok, const char *text, const char *const *stops, int ns,
		    int *stop_at, int *all_whole, size_t *max_held)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct gen_text t;
	gen_text_init(&t, tok, stops, ns);
	*stop_at = -1;
	*all_whole = 1;
	*max_held = 0;
	size_t n = strlen(text);
	for (size_t i = 0; i < n; i++) {
		int r = gen_text_push(&t, (unsigned char)text[i], f);
		fflush(f);
		*all_whole &= utf8_whole(buf, len);
		for (int k = 0; k < ns; k++)
			*all_whole &= !memmem(buf, len, stops[k], strlen(stops[k]));
		if (i + 1 - len > *max_held)
			*max_held = i + 1 - len;
		if (r == 1) {
			*stop_at = (int)i;
			break;
		}
	}
	gen_text_finish(&t, f);
	gen_text_free(&t);
	fclose(f);
	return buf;
}

int main(void)
{
	char tmp[256], err[256] = "";
	struct tokenizer *tok = NULL;
	if (!harness_mkdtemp(tmp, sizeof tmp, "moecard_gen") || write_byte_tokenizer(tmp) ||
	    tokenizer_load(tmp, &tok, err, sizeof err)) {
		CHECK(0, "setup: the byte-level tokenizer in %s: %s", tmp, err);
		return harness_done();
	}
	int stop_at, whole;
	size_t held;
	/* 1. split multi-byte characters: 2-, 3- and 4-byte UTF-8, each byte its own token */
	const char *text = "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x99\x82!";
	char *out = stream(tok, text, NULL, 0, &stop_at, &whole, &held);
	CHECK(!strcmp(out, text), "stream split utf-8: output '%s' equals the input '%s'", out,
	      text);
	CHECK(whole, "stream split utf-8: every partial output is whole UTF-8");
	CHECK_EQ(held, 3, "stream split utf-8: bytes held back at most (the 4-byte character)");
	free(out);
	/* a character cut off at the end is flushed as U+FFFD */
	out = stream(tok, "ab\xe4\xb8", NULL, 0, &stop_at, &whole, &held);
	CHECK(!strcmp(out, "ab\xef\xbf\xbd"),
	      "stream unfinished char: 'ab' + E4 B8 gives '%s' (want 'ab' U+FFFD)", out);
	free(out);
	/* 2. stop strings */
	static const char *const st1[] = {"STOP"};
	out = stream(tok, "abc xSTx STOP def", st1, 1, &stop_at, &whole, &held);
	CHECK(!strcmp(out, "abc xSTx "), "stop string: output '%s' (want 'abc xSTx ')", out);
	CHECK_EQ(stop_at, 12, "stop string: the byte whose push reports the stop");
	CHECK(whole, "stop string: partial outputs never show it");
	free(out);
	static const char *const st2[] = {"\xe4\xb8\x96\xe7\x95\x8c", "END"};
	out = stream(tok, "hi \xe4\xb8\x96\xe4\xb8\x96\xe7\x95\x8c more", st2, 2, &stop_at, &whole,
		     &held);
	CHECK(!strcmp(out, "hi \xe4\xb8\x96"),
	      "stop multi-byte: a stop across six tokens: output '%s' (want 'hi \xe4\xb8\x96')",
	      out);
	CHECK_EQ(stop_at, 11, "stop multi-byte: the byte whose push reports the stop");
	CHECK(whole, "stop multi-byte: partial outputs are whole UTF-8 and never show it");
	free(out);
	out = stream(tok, "no stop here, EN", st2, 2, &stop_at, &whole, &held);
	CHECK(!strcmp(out, "no stop here, EN"),
	      "stop prefix released: a held-back prefix ('EN') is written at the end: '%s'", out);
	CHECK_EQ(stop_at, -1, "stop prefix released: no stop reported");
	free(out);
	/* 3. sampling flags: values parsed, bad values rejected with -EINVAL */
	struct gen_sampling s;
	gen_sampling_default(&s);
	CHECK_EQ(gen_sampling_flag(&s, "--temp", "0.7"), 1, "sampling flag --temp 0.7");
	CHECK_NEAR(s.temp, 0.7f, 0, "sampling flag --temp 0.7 sets temp");
	CHECK_EQ(gen_sampling_flag(&s, "--top-k", "40"), 1, "sampling flag --top-k 40");
	CHECK_EQ(s.top_k, 40, "sampling flag --top-k 40 sets top_k");
	CHECK_EQ(gen_sampling_flag(&s, "--top-p", "0.9"), 1, "sampling flag --top-p 0.9");
	CHECK_NEAR(s.top_p, 0.9f, 0, "sampling flag --top-p 0.9 sets top_p");
	CHECK_EQ(gen_sampling_flag(&s, "--min-p", "0.05"), 1, "sampling flag --min-p 0.05");
	CHECK_EQ(gen_sampling_flag(&s, "--repeat-penalty", "1.1"), 1,
		 "sampling flag --repeat-penalty 1.1");
	CHECK_EQ(gen_sampling_flag(&s, "--seed", "42"), 1, "sampling flag --seed 42");
	CHECK_EQ(s.seed, 42, "sampling flag --seed 42 sets seed");
	CHECK_EQ(gen_sampling_flag(&s, "--model", "x"), 0, "--model is not a sampling flag");
	static const char *const bad[][2] = {
	    {"--top-p", "0"},  {"--top-p", "1.5"},	  {"--temp", "-1"}, {"--temp", "abc"},
	    {"--top-k", "-3"}, {"--repeat-penalty", "0"}, {"--seed", ""},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_EQ(gen_sampling_flag(&s, bad[i][0], bad[i][1]), -EINVAL,
			 "sampling flag %s '%s' is rejected with -EINVAL", bad[i][0], bad[i][1]);
	/* 4. greedy: sampler_argmax against one strict-greater scan, on random logits with ties,
	 * NaNs (never chosen; a NaN first gives 0), -0 beside +0, every length up to 100 and a
	 * vocabulary's worth */
	static float lg[129280];
	uint64_t r = 0x9E3779B97F4A7C15ull;
	int mism = 0, cases = 0;
	for (int n = 1; n <= 129280; n = n < 100 ? n + 1 : n == 100 ? 129280 : 129281)
		for (int kind = 0; kind < 6; kind++, cases++) {
			for (int i = 0; i < n; i++) {
				r ^= r << 13, r ^= r >> 7, r ^= r << 17;
				int v = (int)(r % 7) - 3; /* many ties */
				lg[i] =
				    kind == 1 ? (float)(r >> 11) / 9007199254740992.0f : (float)v;
				if (kind == 2 && r % 5 == 0)
					lg[i] = NAN;
				if (kind == 3)
					lg[i] = r % 2 ? 0.0f : -0.0f;
				if (kind == 4)
					lg[i] = -1e30f;
			}
			if (kind == 5)
				lg[0] = NAN;
			if (kind == 2 && n > 3)
				lg[n - 1] = 5.0f; /* the largest last, after NaNs */
			int want = 0;
			for (int i = 1; i < n; i++)
				if (lg[i] > lg[want])
					want = i;
			mism += sampler_argmax(lg, n) != want;
		}
	CHECK_EQ(mism, 0, "sampler_argmax equals the scalar scan on %d arrays", cases);
	tokenizer_free(tok);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd))
		printf("could not remove %s\n", tmp);
	return harness_done();
}
