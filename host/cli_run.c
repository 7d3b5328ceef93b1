/* cli_run.c - moecard run and bench (placeholder). */
#include <stdio.h>
#include "cli.h"

int cli_run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "moecard: run: not built yet\n");
	return 2;
}
int cli_bench(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "moecard: bench: not built yet\n");
	return 2;
}
