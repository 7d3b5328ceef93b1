/*
 * cli_devices.c - `moecard devices [--boards DIR] [--json]`: the accelerator cards this host has,
 * like `xbutil examine` (docs/cli.md): every AMD/Xilinx PCIe function (vendor 0x10ee) in sysfs
 * with its device id, driver and, where the xocl/xclmgmt driver publishes it, the shell (VBNV);
 * the board tree whose `moecard,platform` matches each shell; and whether XRT opens the card
 * (xrt_dev_open by PCIe address). With no card it says so. MOECARD_SYSFS_PCI overrides
 * /sys/bus/pci/devices (tests build a fake tree there).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "board.h"
#include "backend/xrt_dev.h"
#include "cli/cli.h"
#include "cli/cli_opts.h"

#define DEV_MAX_BOARDS 32

struct dev_board {
	char path[PATH_MAX];
	struct board_desc b;
};

/* The first line of dir/name into out (trailing newline dropped); 0, or -1 when unreadable. */
static int dev_read(const char *dir, const char *name, char *out, size_t cap)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p)
		return -1;
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	if (!fgets(out, (int)cap, f))
		out[0] = 0;
	fclose(f);
	out[strcspn(out, "\r\n")] = 0;
	return 0;
}

/* The shell name: rom*\/VBNV (xocl/xclmgmt) under the function's folder, or "". */
static void dev_vbnv(const char *dir, char *out, size_t cap)
{
	out[0] = 0;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) && !out[0]) {
		if (strncmp(e->d_name, "rom", 3))
			continue;
		char sub[PATH_MAX + 300];
		if (snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= (int)sizeof sub)
			continue;
		dev_read(sub, "VBNV", out, cap);
	}
	closedir(d);
}

/* Board trees (*.dtb) in dir, loaded; returns how many. */
static int dev_boards(const char *dir, struct dev_board *bs, int max)
{
	DIR *d = opendir(dir);
	int n = 0;
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		size_t l = strlen(e->d_name);
		char err[256];
		if (l < 5 || strcmp(e->d_name + l - 4, ".dtb"))
			continue;
		if (snprintf(bs[n].path, sizeof bs[n].path, "%s/%s", dir, e->d_name) >=
		    (int)sizeof bs[n].path)
			continue;
		if (!board_load(bs[n].path, &bs[n].b, err, sizeof err))
			n++;
	}
	closedir(d);
	return n;
}

static void dev_usage(FILE *f)
{
	static const struct cli_help_row rows[] = {
	    {"--boards", "DIR", "the board trees (.dtb) to match the cards with",
	     "board/ next to the program"},
	};
	fprintf(f, "usage: moecard devices [--boards DIR]\n"
		   "  the AMD/Xilinx PCIe cards of this host, their shells, the matching board\n"
		   "  tree and whether XRT opens them\n");
	cli_help_rows(f, rows, sizeof rows / sizeof rows[0]);
}

int cli_devices(int argc, char **argv)
{
	const char *boards = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			dev_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--boards") && i + 1 < argc) {
			boards = argv[++i];
		} else {
			fprintf(stderr, "moecard: devices: unknown option or missing value '%s'\n",
				argv[i]);
			dev_usage(stderr);
			return 2;
		}
	}
	char bdir[PATH_MAX] = "build/board";
	if (boards) {
		snprintf(bdir, sizeof bdir, "%s", boards);
	} else {
		ssize_t n = readlink("/proc/self/exe", bdir, sizeof bdir - 16);
		char *slash = n > 0 ? memrchr(bdir, '/', (size_t)n) : NULL;
		if (slash)
			strcpy(slash, "/board");
		else
			snprintf(bdir, sizeof bdir, "build/board");
	}
	static struct dev_board bs[DEV_MAX_BOARDS];
	int nb = dev_boards(bdir, bs, DEV_MAX_BOARDS);
	const char *root = getenv("MOECARD_SYSFS_PCI");
	if (!root)
		root = "/sys/bus/pci/devices";
	DIR *d = opendir(root);
	if (!d) {
		fprintf(stderr, "moecard: devices: %s: %s\n", root, strerror(errno));
		return 1;
	}
	struct dirent *e;
	int found = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char dir[PATH_MAX], vendor[32], device[32], driver[PATH_MAX], vbnv[128];
		if (snprintf(dir, sizeof dir, "%s/%s", root, e->d_name) >= (int)sizeof dir)
			continue;
		if (dev_read(dir, "vendor", vendor, sizeof vendor) || strcmp(vendor, "0x10ee"))
			continue;
		found++;
		if (dev_read(dir, "device", device, sizeof device))
			snprintf(device, sizeof device, "?");
		char link[PATH_MAX + 16];
		if (snprintf(link, sizeof link, "%s/driver", dir) >= (int)sizeof link)
			continue;
		ssize_t dl = readlink(link, driver, sizeof driver - 1);
		const char *drv = "none";
		if (dl > 0) {
			driver[dl] = 0;
			const char *s = strrchr(driver, '/');
			drv = s ? s + 1 : driver;
		}
		dev_vbnv(dir, vbnv, sizeof vbnv);
		printf("%s  AMD/Xilinx device %s, driver %s, shell %s\n", e->d_name, device, drv,
		       vbnv[0] ? vbnv
			       : "unknown (no rom VBNV: the xocl/xclmgmt driver is not loaded)");
		int matched = 0;
		for (int i = 0; i < nb && vbnv[0]; i++)
			if (!strcmp(bs[i].b.platform, vbnv)) {
				printf("    board tree %s (%s)\n", bs[i].path, bs[i].b.model);
				matched = 1;
			}
		if (!matched)
			printf("    board tree: none in %s has moecard,platform = \"%s\"\n", bdir,
			       vbnv[0] ? vbnv : "?");
		struct xrt_dev *x = NULL;
		char err[512];
		if (!xrt_dev_open(e->d_name, &x, err, sizeof err)) {
			printf("    XRT opens it\n");
			xrt_dev_close(x);
		} else {
			printf("    XRT: %s\n", err);
		}
	}
	closedir(d);
	if (!found)
		printf("no AMD/Xilinx PCIe cards (vendor 0x10ee) in %s: use --backend emu, the "
		       "emulated card\n",
		       root);
	printf("board trees in %s:", bdir);
	for (int i = 0; i < nb; i++)
		printf(" %s (%s)", strrchr(bs[i].path, '/') + 1, bs[i].b.platform);
	printf("%s\n", nb ? "" : " none");
	return 0;
}
