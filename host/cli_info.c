/* cli_info.c - moecard info (placeholder until its owner lands it). */
#include <stdio.h>
#include "cli.h"

int cli_info(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "moecard: info: not built yet\n");
	return 2;
}
