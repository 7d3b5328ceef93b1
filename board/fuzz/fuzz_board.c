/*
 * fuzz_board.c - libFuzzer target for the board parser: board_parse() on arbitrary bytes, and on
 * success the consumers of a parsed board (info print, bank names, fit). It must never crash, read
 * out of bounds or hang. Seeds: board/fuzz/corpus/fuzz_board/ (compiled card and test trees).
 */
#include <stdint.h>
#include <stdio.h>

#include "board.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct board_desc b;
	static FILE *sink;
	char err[BOARD_ERR_MAX];
	if (!sink)
		sink = fopen("/dev/null", "w");
	int rc = board_parse(data, size, "fuzz.dtb", &b, err, sizeof err);
	(void)board_strerror(rc);
	if (rc == 0) {
		char name[32];
		for (uint32_t i = 0; i < b.n_banks; i++)
			board_bank_name(&b, i, name, sizeof name);
		struct board_fit fit;
		board_fit_compute(&b, 1ull << 30, 44ull << 20, 70272, 4096, &fit);
		if (sink) {
			board_info_print(&b, sink);
			board_fit_print(&fit, 44ull << 20, 4096, sink);
		}
	}
	return 0;
}
