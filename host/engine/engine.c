/*
 * engine.c - backend dispatch for engine.h and the cpu engine (model.h's direct forward pass).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "engine/engine.h"

static struct model *cpu_model(struct engine *e)
{
	return e->impl;
}

static int cpu_forward(struct engine *e, const int *t, int T, float *lg, int all, float *hid)
{
	int r = model_forward(cpu_model(e), t, T, lg, all, hid);
	e->pos = cpu_model(e)->pos;
	return r;
}

static int cpu_mtp(struct engine *e, const int *nt, const float *h, int T, float *lg, int all)
{
	int r = model_mtp_forward(cpu_model(e), nt, h, T, lg, all);
	e->mtp_pos = cpu_model(e)->mtp_pos;
	return r;
}

static void cpu_truncate(struct engine *e, int pos, int mtp_pos)
{
	model_truncate(cpu_model(e), pos, mtp_pos);
	e->pos = cpu_model(e)->pos;
	e->mtp_pos = cpu_model(e)->mtp_pos;
}

static void cpu_free(struct engine *e)
{
	if (e->impl) {
		model_free(e->impl);
		free(e->impl);
	}
	e->impl = NULL;
}

/* model_mtp_forward leaves the shared_head.norm output of its rows in m->xn (head_forward). */
static int cpu_mtp_hidden(struct engine *e, int row, float *hidden)
{
	int D = e->c->hidden_size;
	memcpy(hidden, cpu_model(e)->xn + (size_t)row * D, sizeof(float) * (size_t)D);
	return 0;
}

static int cpu_forward_rows(struct engine *e, const int *tokens, int T,
			    const struct model_kv *const *kv, const int *pos, float *logits, int lg)
{
	return model_forward_rows(e->impl, tokens, T, kv, pos, logits, lg);
}

static size_t cpu_kv_block_floats(struct engine *e, int bs)
{
	return model_kv_block_floats(e->impl, bs);
}

static int cpu_set_isa(struct engine *e, const char *name)
{
	const struct kern_isa *isa = kern_isa_by_name(name);
	if (!isa)
		return -ENOTSUP;
	model_set_isa(e->impl, isa);
	e->isa = isa->name;
	return 0;
}

static int cpu_forward_top1(struct engine *e, const int *t, int T, int *id)
{
	int r = model_forward_top1(cpu_model(e), t, T, id);
	e->pos = cpu_model(e)->pos;
	return r;
}

static int cpu_forward_rows_top1(struct engine *e, const int *tokens, int T,
				 const struct model_kv *const *kv, const int *pos, int *ids, int lg)
{
	return model_forward_rows_top1(e->impl, tokens, T, kv, pos, ids, lg);
}

static int cpu_head_screen(struct engine *e, int on, struct head_screen_stats *st)
{
	struct model *m = cpu_model(e);
	if (!m->hs.q)
		return -ENOTSUP;
	if (on >= 0)
		m->hs_off = !on;
	if (st)
		*st = m->hs.st;
	return 0;
}

static const struct engine_ops cpu_ops = {
    .name = "cpu",
    .forward = cpu_forward,
    .mtp_forward = cpu_mtp,
    .truncate = cpu_truncate,
    .free = cpu_free,
    .mtp_hidden = cpu_mtp_hidden,
    .forward_rows = cpu_forward_rows,
    .kv_block_floats = cpu_kv_block_floats,
    .set_isa = cpu_set_isa,
    .forward_top1 = cpu_forward_top1,
    .forward_rows_top1 = cpu_forward_rows_top1,
    .head_screen = cpu_head_screen,
};

const struct model *engine_cpu_model(const struct engine *e)
{
	return e->ops == &cpu_ops ? e->impl : NULL;
}

/* The cpu engine makes its own copy of lm_head: FP8 codes (--head fp8) or, for a BF16 head, the
 * same values packed for gemv_bf16p: the checkpoint's head is then read only once, at open. */
static int engine_head_copied(const char *backend, const struct ckpt *ck,
			      const struct model_opts *o)
{
	return !strcmp(backend, "cpu") && ck->w.lm_head.w &&
	       ((o->head_fp8 && ck->w.lm_head.fmt != QMAT_FP8) ||
		(!o->head_fp8 && ck->w.lm_head.fmt == QMAT_BF16));
}

int engine_cpu_open(struct engine *e, const struct ckpt *ck, const struct model_opts *o,
		    const struct engine_extra *x, char *err, size_t errlen)
{
	(void)x;
	struct model *m = calloc(1, sizeof *m);
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* engine_open left the head file-mapped when it is requantized (unless nothing was
	 * populated, which leaves everything file-mapped): its pages can go as they are read */
	struct model_opts mo = *o;
	mo.head_release = engine_head_copied("cpu", ck, o);
	int r = model_init(m, &ck->cfg, &ck->w, &mo, err, errlen);
	if (r) {
		free(m);
		return r;
	}
	e->ops = &cpu_ops;
	e->impl = m;
	e->max_batch = m->o.max_batch;
	e->max_seq = m->o.max_seq;
	e->act_fp8 = m->o.act_fp8;
	e->isa = m->kc.isa->name;
	e->threads = pool_nthreads(m->pool);
	return 0;
}

/* card_engine.c: the emulated card through host/backend/backend.h */
int card_engine_open(struct engine *e, const struct ckpt *ck, const struct model_opts *o,
		     const struct engine_extra *x, char *err, size_t errlen);

int engine_open(struct engine *e, const char *backend, const struct ckpt *ck,
		const struct model_opts *o, const struct engine_extra *x, char *err, size_t errlen)
{
	static const struct engine_extra none;
	memset(e, 0, sizeof *e);
	e->c = &ck->cfg;
	e->w = &ck->w;
	if (!x)
		x = &none;
	/* fault the weights in now, not in the first decode steps that reach each expert, when the
	 * checkpoint fits in half of RAM (MOECARD_NO_POPULATE=1 skips it); the MTP layer only when
	 * the run may use it. Copied into huge pages (--huge-pages) only for engines that decode
	 * long enough to repay the kernel's zeroing of the fresh pages. */
	const char *hp = x->huge_pages ? x->huge_pages : "auto";
	if (strcmp(hp, "on") && strcmp(hp, "off") && strcmp(hp, "auto")) {
		snprintf(err, errlen, "--huge-pages: '%s': expected on, off or auto", hp);
		return -EINVAL;
	}
	if (!getenv("MOECARD_NO_POPULATE")) {
		long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		int huge =
		    !strcmp(hp, "on") ||
		    (!strcmp(hp, "auto") && (x->long_run || o->max_seq >= ENGINE_HUGE_MIN_SEQ));
		int nt = o->n_threads > 0 ? o->n_threads : ncpu > 0 ? (int)ncpu : 1;
		char mtp[32];
		const char *skip[3] = {NULL, NULL, NULL};
		int ns = 0;
		snprintf(mtp, sizeof mtp, "model.layers.%d.", ck->cfg.num_hidden_layers);
		if (x->no_mtp)
			skip[ns++] = mtp;
		if (engine_head_copied(backend, ck, o))
			skip[ns++] = "lm_head."; /* read once, by the requantization or packing */
		if (pages > 0 && psz > 0)
			st_populate(&ck->st, (size_t)pages * (size_t)psz / 2, skip, huge, nt);
	}
	if (!strcmp(backend, "cpu")) {
		if ((x->kv_format && strcmp(x->kv_format, "f32")) ||
		    (x->attn_datapath && strcmp(x->attn_datapath, "f32"))) {
			snprintf(
			    err, errlen,
			    "--kv-format / --attn-datapath: the cpu backend keeps an f32 cache; "
			    "the card's formats are for --backend emu|xrt");
			return -EINVAL;
		}
		return engine_cpu_open(e, ck, o, x, err, errlen);
	}
	if (!strcmp(backend, "emu"))
		return card_engine_open(e, ck, o, x, err, errlen);
	if (!strcmp(backend, "xrt")) {
		/* the card scheduler on backend xrt (the xclbin goes in the backend options) */
		struct engine_extra xx = *x;
		xx.backend = "xrt";
		return card_engine_open(e, ck, o, &xx, err, errlen);
	}
	snprintf(err, errlen, "--backend: unknown backend '%s' (cpu|emu|xrt)", backend);
	return -EINVAL;
}

void engine_free(struct engine *e)
{
	if (e->ops && e->ops->free)
		e->ops->free(e);
	memset(e, 0, sizeof *e);
}
