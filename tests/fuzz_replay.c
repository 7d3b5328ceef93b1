/*
 * fuzz_replay.c - a plain driver for libFuzzer targets, so every fuzz target also runs in
 * `make test` (under ASan+UBSan in the asan variant): it feeds LLVMFuzzerTestOneInput every file of
 * the target's seed corpus (FUZZ_CORPUS, a directory) and 200 deterministic mutations of each
 * (byte flips, truncations, insertions, splices). A crash is the failure; otherwise it prints
 * "N passed, 0 failed". The real coverage-guided run is `make fuzz` (clang, libFuzzer).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void mutate_and_run(const uint8_t *seed, size_t n, long *count)
{
	size_t cap = n + 64;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return;
	for (int it = 0; it < 200; it++) {
		size_t len = n;
		memcpy(buf, seed, n);
		int ops = 1 + (int)(next_rand() % 4);
		for (int o = 0; o < ops; o++) {
			switch (next_rand() % 5) {
			case 0:
				if (len)
					buf[next_rand() % len] ^=
					    (uint8_t)(1u << (next_rand() % 8));
				break;
			case 1:
				if (len)
					len = next_rand() % len;
				break;
			case 2:
				if (len)
					buf[next_rand() % len] = (uint8_t)next_rand();
				break;
			case 3:
				if (len < cap) {
					size_t p = len ? next_rand() % len : 0;
					memmove(buf + p + 1, buf + p, len - p);
					buf[p] = "\"{}[],:0-9"[next_rand() % 10];
					len++;
				}
				break;
			case 4:
				if (len > 2) {
					size_t a = next_rand() % len, b = next_rand() % len;
					buf[a] = buf[b];
				}
				break;
			}
		}
		uint8_t *exact = malloc(len ? len : 1); /* exact-size copy so ASan sees overreads */
		if (!exact)
			break;
		memcpy(exact, buf, len);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
		(*count)++;
	}
	free(buf);
}

int main(void)
{
	DIR *d = opendir(FUZZ_CORPUS);
	long files = 0, runs = 0;
	if (!d) {
		fprintf(stderr, "fuzz_replay: no corpus directory %s\n", FUZZ_CORPUS);
		return 1;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", FUZZ_CORPUS, de->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		long n = ftell(f);
		fseek(f, 0, SEEK_SET);
		uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
		if (b && fread(b, 1, (size_t)n, f) == (size_t)n) {
			LLVMFuzzerTestOneInput(b, (size_t)n);
			runs++;
			mutate_and_run(b, (size_t)n, &runs);
			files++;
		}
		free(b);
		fclose(f);
	}
	closedir(d);
	printf("fuzz replay %s: %ld seeds, %ld inputs, no crash\n", FUZZ_CORPUS, files, runs);
	printf("%ld passed, 0 failed\n", files);
	return files ? 0 : 1;
}
