/*
 * gen.c - build tool (not part of the library): turns a board .dtb into the v++ link configuration
 * or the metadata xclbin. make runs it for every board/<card>.dts:
 *   gen cfg    <card>.dtb <out>/connectivity.cfg
 *   gen xclbin <card>.dtb <out>.xclbin
 *   gen kernels <card>.dtb <out>/kernels.txt (make xclbin: per kernel its sources and -D flags)
 *   gen args                  (the kernel argument table: kernel arg bundle|- offset, one a line)
 * Errors go to stderr as one line naming the file and field; exit 1 on error, 2 on usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitstream.h"

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "args")) {
		for (uint32_t i = 0; i < bitstream_kernel_count(); i++) {
			const struct bitstream_kernel *k = bitstream_kernel_at(i);
			for (uint32_t a = 0; a < k->n_args; a++)
				printf("%s %s %s 0x%x\n", k->name, k->arg[a].name,
				       k->arg[a].bundle ? k->arg[a].bundle : "-", k->arg[a].offset);
		}
		return 0;
	}
	if (argc != 4 ||
	    (strcmp(argv[1], "cfg") && strcmp(argv[1], "xclbin") && strcmp(argv[1], "kernels"))) {
		fprintf(stderr, "usage: gen cfg|xclbin|kernels BOARD.dtb OUT | gen args\n");
		return 2;
	}
	static struct board_desc b;
	char err[BOARD_ERR_MAX];
	int rc = board_load(argv[2], &b, err, sizeof err);
	if (rc) {
		fprintf(stderr, "gen: %s (%s)\n", err, board_strerror(rc));
		return 1;
	}
	if ((rc = bitstream_check(&b, argv[2], err, sizeof err))) {
		fprintf(stderr, "gen: %s\n", err);
		return 1;
	}
	FILE *f = fopen(argv[3], "wb");
	if (!f) {
		perror(argv[3]);
		return 1;
	}
	if (!strcmp(argv[1], "cfg")) {
		rc = bitstream_cfg_write(&b, argv[2], f);
	} else if (!strcmp(argv[1], "kernels")) {
		rc = bitstream_kernels_write(&b, argv[2], f, err, sizeof err);
		if (rc == -EINVAL) {
			fclose(f);
			remove(argv[3]);
			fprintf(stderr, "gen: %s\n", err);
			return 1;
		}
	} else {
		uint8_t *x = NULL;
		size_t n = 0;
		rc = bitstream_xclbin_build(&b, argv[2], &x, &n);
		if (!rc && fwrite(x, 1, n, f) != n)
			rc = -5;
		free(x);
	}
	if (fclose(f) != 0 && !rc)
		rc = -5;
	if (rc) {
		fprintf(stderr, "gen: %s: cannot write: %s\n", argv[3], board_strerror(rc));
		remove(argv[3]);
		return 1;
	}
	return 0;
}
