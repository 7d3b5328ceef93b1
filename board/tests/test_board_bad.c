/*
 * test_board_bad.c - the deliberately broken trees: every board/tests/<name>.dts names its expected
 * result in a comment line "expect: -BOARD_E<CODE> <token>..." (or "expect: OK"). This program
 * compiles each with dtc into $B/board/tests/, runs board_load on it and checks that the parser
 * returns exactly that code and that the one-line message names the .dtb file and every token (the
 * node and the property). Plain program; ends with "N passed, N failed".
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"

static const struct {
	const char *name; /* code as written in the expect line */
	int code;	  /* negative board code */
} codes[] = {
    {"OK", 0},
    {"-BOARD_EBADDTB", -BOARD_EBADDTB},
    {"-BOARD_ENOTCARD", -BOARD_ENOTCARD},
    {"-BOARD_EMISSING", -BOARD_EMISSING},
    {"-BOARD_EBADSIZE", -BOARD_EBADSIZE},
    {"-BOARD_EBADVALUE", -BOARD_EBADVALUE},
    {"-BOARD_EOVERLAP", -BOARD_EOVERLAP},
    {"-BOARD_ENOBANK", -BOARD_ENOBANK},
    {"-BOARD_ECLOCK", -BOARD_ECLOCK},
    {"-BOARD_ETOOMANY", -BOARD_ETOOMANY},
    {"-BOARD_EDUP", -BOARD_EDUP},
    {"-BOARD_EEMPTY", -BOARD_EEMPTY},
    {"-BOARD_ERANGE", -BOARD_ERANGE},
};

/* Reads the "expect:" line of path into line; 0 or -1. */
static int read_expect(const char *path, char *line, size_t n)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char buf[512];
	int rc = -1;
	while (fgets(buf, sizeof buf, f)) {
		char *p = strstr(buf, "expect:");
		if (p) {
			p += strlen("expect:");
			p[strcspn(p, "\n")] = '\0';
			snprintf(line, n, "%s", p);
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

int main(void)
{
	const char *b = getenv("B") ? getenv("B") : "build";
	char outdir[512];
	snprintf(outdir, sizeof outdir, "%s/board/tests", b);
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "mkdir -p '%s'", outdir);
	if (system(cmd) != 0) {
		printf("cannot create %s\n0 passed, 1 failed\n", outdir);
		return 1;
	}
	glob_t g;
	if (glob("board/tests/*.dts", 0, NULL, &g) != 0 || g.gl_pathc < 10) {
		printf("fewer than 10 board/tests/*.dts found (run from the repository root)\n"
		       "0 passed, 1 failed\n");
		return 1;
	}
	int pass = 0, fail = 0, nbad = 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *dts = g.gl_pathv[i];
		char expect[512], dtb[768], name[128];
		const char *base = strrchr(dts, '/') + 1;
		snprintf(name, sizeof name, "%.*s", (int)(strlen(base) - 4), base);
		snprintf(dtb, sizeof dtb, "%s/%s.dtb", outdir, name);
		if (read_expect(dts, expect, sizeof expect)) {
			printf("FAIL %s: no \"expect:\" line\n", dts);
			fail++;
			continue;
		}
		char *tok = strtok(expect, " \t");
		int want = 1;
		for (size_t k = 0; tok && k < sizeof codes / sizeof codes[0]; k++)
			if (!strcmp(tok, codes[k].name))
				want = codes[k].code;
		if (want == 1) {
			printf("FAIL %s: unknown expected code \"%s\"\n", dts, tok ? tok : "");
			fail++;
			continue;
		}
		nbad += want != 0;
		snprintf(cmd, sizeof cmd, "dtc -q -I dts -O dtb -o '%s' '%s'", dtb, dts);
		if (system(cmd) != 0) {
			printf("FAIL %s: dtc could not compile it\n", dts);
			fail++;
			continue;
		}
		static struct board_desc desc;
		char err[BOARD_ERR_MAX];
		int rc = board_load(dtb, &desc, err, sizeof err);
		int ok = rc == want;
		if (!ok)
			printf("FAIL %s: got %d (%s), expected %d (%s); message: %s\n", name, rc,
			       board_strerror(rc), want, board_strerror(want), err);
		if (ok && want) {
			if (strncmp(err, dtb, strlen(dtb)) != 0) {
				printf("FAIL %s: message does not start with the file name: %s\n",
				       name, err);
				ok = 0;
			}
			while (ok && (tok = strtok(NULL, " \t"))) {
				char needle[160];
				snprintf(needle, sizeof needle, " %s:", tok);
				if (!strstr(err, needle)) {
					printf("FAIL %s: message lacks \"%s\": %s\n", name, tok,
					       err);
					ok = 0;
				}
			}
		}
		if (ok) {
			printf("ok   %-22s %s\n", name, want ? err : "parses");
			pass++;
		} else {
			fail++;
		}
	}
	globfree(&g);
	if (nbad < 10) {
		printf("FAIL only %d bad trees\n", nbad);
		fail++;
	}
	printf("%d passed, %d failed\n", pass, fail);
	return fail != 0;
}
