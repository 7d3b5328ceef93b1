/*
 * registry.c - the front of the backend interface (backend.h): backend_open finds a backend by
 * name ("ref", "emu", "xrt"), loads the board tree it runs, opens it with its options and checks
 * its ops table (backend_impl.h) before handing it out; the public calls dispatch through that
 * table (docs/architecture.md, interfaces).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "backend/backend_impl.h"
#include "backend/backend_xrt.h"

/* One backend this build can open. */
struct backend_entry {
	const char *name; /* backend_open's name */
	int (*open)(struct backend **out, const struct board_desc *bd, const char *dtb,
		    const struct backend_opts *o, char *err, size_t errlen);
};

static int reg_ref(struct backend **out, const struct board_desc *bd, const char *dtb,
		   const struct backend_opts *o, char *err, size_t errlen)
{
	(void)dtb, (void)o;
	return backend_ref_open(out, bd, err, errlen);
}

static int reg_emu(struct backend **out, const struct board_desc *bd, const char *dtb,
		   const struct backend_opts *o, char *err, size_t errlen)
{
	(void)dtb, (void)o;
	return backend_emu_open(out, bd, err, errlen);
}

static int reg_xrt(struct backend **out, const struct board_desc *bd, const char *dtb,
		   const struct backend_opts *o, char *err, size_t errlen)
{
	struct backend_xrt_opts xo = {.xclbin = o->xclbin, .device = o->device};
	return backend_xrt_open(out, bd, dtb, &xo, err, errlen);
}

static const struct backend_entry backends[] = {
    {.name = "ref", .open = reg_ref},
    {.name = "emu", .open = reg_emu},
    {.name = "xrt", .open = reg_xrt},
};

int backend_iface_check(const struct backend_i *i, char *err, size_t errlen)
{
	if (!i) {
		snprintf(err, errlen, "backend: no ops table");
		return -EPROTO;
	}
	if (i->version != BACKEND_I_VERSION) {
		snprintf(err, errlen, "backend %s: ops table version %u, this build needs %u",
			 i->name ? i->name : "?", i->version, BACKEND_I_VERSION);
		return -EPROTO;
	}
	const char *miss = !i->name	     ? "name"
			   : !i->close	     ? "close"
			   : !i->buf_alloc   ? "buf_alloc"
			   : !i->buf_free    ? "buf_free"
			   : !i->buf_write   ? "buf_write"
			   : !i->buf_read    ? "buf_read"
			   : !i->submit	     ? "submit"
			   : !i->wait	     ? "wait"
			   : !i->completions ? "completions"
			   : !i->supports_op ? "supports_op"
			   : !i->stats	     ? "stats"
			   : !i->fault_set   ? "fault_set"
					     : NULL;
	if (miss) {
		snprintf(err, errlen, "backend %s: ops table has no %s", i->name ? i->name : "?",
			 miss);
		return -EPROTO;
	}
	return 0;
}

int backend_open(struct backend **out, const char *name, const struct backend_opts *o, char *err,
		 size_t errlen)
{
	static const struct backend_opts none;
	struct board_desc bd;
	char exe_dtb[4096];
	*out = NULL;
	if (!o)
		o = &none;
	const struct backend_entry *be = NULL;
	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
		if (!strcmp(name, backends[i].name))
			be = &backends[i];
	if (!be) {
		snprintf(err, errlen, "backend %s: not available in this build", name);
		return -ENODEV;
	}
	const char *dtb = o->board;
	if (!dtb)
		dtb = getenv("MOECARD_BOARD");
	if (!dtb) {
		/* the build puts the program in B/ and the board trees in B/board/ */
		ssize_t n = readlink("/proc/self/exe", exe_dtb, sizeof exe_dtb - 32);
		char *slash = n > 0 ? memrchr(exe_dtb, '/', (size_t)n) : NULL;
		if (slash) {
			strcpy(slash, "/board/emu.dtb");
			if (access(exe_dtb, R_OK) == 0)
				dtb = exe_dtb;
		}
	}
	if (!dtb)
		dtb = "build/board/emu.dtb";
	int r = board_load(dtb, &bd, err, errlen);
	if (r)
		return r < 0 ? r : -EINVAL;
	if ((r = board_set_list(&bd, o->set, err, errlen)))
		return r;
	struct backend *b = NULL;
	if ((r = be->open(&b, &bd, dtb, o, err, errlen)))
		return r;
	if ((r = backend_iface_check(b->iface, err, errlen))) {
		if (b->iface && b->iface->close)
			b->iface->close(b);
		return r;
	}
	*out = b;
	return 0;
}

void backend_close(struct backend *b)
{
	if (b)
		b->iface->close(b);
}

const char *backend_name(const struct backend *b)
{
	return b->iface->name;
}
uint32_t backend_caps(const struct backend *b)
{
	return b->caps;
}
const struct board_desc *backend_board(const struct backend *b)
{
	return &b->board;
}
const struct abi_board *backend_abi_board(const struct backend *b)
{
	return &b->blk;
}

int backend_buf_alloc(struct backend *b, uint32_t bank, size_t bytes, size_t align,
		      struct backend_buf **out)
{
	return b->iface->buf_alloc(b, bank, bytes, align, out);
}

void backend_buf_free(struct backend *b, struct backend_buf *buf)
{
	b->iface->buf_free(b, buf);
}

int backend_buf_write(struct backend *b, struct backend_buf *buf, size_t off, const void *src,
		      size_t n)
{
	return b->iface->buf_write(b, buf, off, src, n);
}

int backend_buf_read(struct backend *b, struct backend_buf *buf, size_t off, void *dst, size_t n)
{
	return b->iface->buf_read(b, buf, off, dst, n);
}

int backend_submit(struct backend *b, uint32_t queue, const struct abi_cmd *cmds, uint32_t n,
		   uint64_t *fence)
{
	return b->iface->submit(b, queue, cmds, n, fence);
}

int backend_wait(struct backend *b, uint64_t fence, uint32_t timeout_ms)
{
	return b->iface->wait(b, fence, timeout_ms);
}

int backend_completions(struct backend *b, const struct abi_cpl **cpl, uint32_t *n)
{
	return b->iface->completions(b, cpl, n);
}

int backend_supports_op(struct backend *b, uint32_t op)
{
	return b->iface->supports_op(b, op);
}

void backend_stats(struct backend *b, struct backend_stats *s)
{
	b->iface->stats(b, s);
}

int backend_fault_set(struct backend *b, enum backend_fault f, uint32_t n)
{
	return b->iface->fault_set(b, f, n);
}
