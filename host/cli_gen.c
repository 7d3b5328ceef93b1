/* cli_gen.c - moecard gen (placeholder until its owner lands it). */
#include <stdio.h>
#include "cli.h"

int cli_gen(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "moecard: gen: not built yet\n");
	return 2;
}
