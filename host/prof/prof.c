/*
 * prof.c - the profiler's recorder (prof.h has the timeline's rule) and the Chrome trace writer.
 */
#include "prof/prof.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct prof *prof_g;

/* wall mode: the calling thread's mark, track and name */
static __thread uint64_t tl_mark;
static __thread int tl_track = -1;
static __thread const char *tl_name;

uint64_t prof_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int prof_start(void)
{
	prof_stop();
	struct prof *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	p->mark = prof_now();
	prof_g = p;
	return 0;
}

int prof_start_wall(void)
{
	int r = prof_start();
	if (!r) {
		prof_g->wall = 1;
		prof_g->t_base = prof_g->mark;
		tl_mark = prof_g->mark;
	}
	return r;
}

void prof_thread_name(const char *name)
{
	tl_name = name;
	tl_track = -1;
	tl_mark = prof_now();
}

void prof_stop(void)
{
	struct prof *p = prof_g;
	if (!p)
		return;
	prof_g = NULL;
	pthread_mutex_destroy(&p->mu);
	free(p->ev);
	free(p->tok_end);
	free(p->pc_tok);
	free(p->fill_tok);
	free(p->lists_at);
	free(p);
}

/* Room for token p->token in the per-token arrays. 0 or -ENOMEM. */
static int prof_tok_room(struct prof *p)
{
	if (p->token < p->cap_tok)
		return 0;
	int cap = p->cap_tok ? p->cap_tok * 2 : 64;
	while (cap <= p->token)
		cap *= 2;
	double *te = realloc(p->tok_end, sizeof(double) * (size_t)cap);
	if (te)
		p->tok_end = te;
	double *pt = realloc(p->pc_tok, sizeof(double) * PROF_MAX_PCS * (size_t)cap);
	if (pt)
		p->pc_tok = pt;
	double *ft = realloc(p->fill_tok, sizeof(double) * (size_t)cap);
	if (ft)
		p->fill_tok = ft;
	if (!te || !pt || !ft)
		return -ENOMEM;
	memset(pt + (size_t)PROF_MAX_PCS * p->cap_tok, 0,
	       sizeof(double) * PROF_MAX_PCS * (size_t)(cap - p->cap_tok));
	memset(ft + p->cap_tok, 0, sizeof(double) * (size_t)(cap - p->cap_tok));
	p->cap_tok = cap;
	return 0;
}

static int prof_track(struct prof *p, int kind, int unit, const char *name)
{
	for (int i = 0; i < p->n_tracks; i++)
		if (p->track[i].kind == kind && p->track[i].unit == unit)
			return i;
	if (p->n_tracks == PROF_MAX_TRACKS)
		return PROF_MAX_TRACKS - 1;
	struct prof_track *t = &p->track[p->n_tracks];
	t->kind = kind;
	t->unit = unit;
	snprintf(t->name, sizeof t->name, "%s", name);
	return p->n_tracks++;
}

static struct prof_ev *prof_ev_new(struct prof *p)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4096;
		struct prof_ev *e = realloc(p->ev, cap * sizeof *e);
		if (!e) {
			p->oom = 1;
			return NULL;
		}
		p->ev = e;
		p->cap = cap;
	}
	struct prof_ev *e = &p->ev[p->n++];
	memset(e, 0, sizeof *e);
	e->token = p->token;
	e->layer = -1;
	e->expert = -1;
	e->hit = -1;
	e->pc0 = e->pc1 = -1;
	return e;
}

void prof_mark(void)
{
	if (prof_g && prof_g->wall)
		tl_mark = prof_now();
	else if (prof_g)
		prof_g->mark = prof_now();
}

/* The calling thread's host track (wall mode: one per thread, named by prof_thread_name). */
static int prof_host_track(struct prof *p)
{
	if (!p->wall)
		return prof_track(p, PROF_HOST, 0, "host: main thread");
	if (tl_track < 0) {
		char nm[PROF_NAME];
		snprintf(nm, sizeof nm, "%s (%d)", tl_name ? tl_name : "host: thread", p->n_tracks);
		tl_track = prof_track(p, PROF_HOST, 1000 + p->n_tracks, nm);
	}
	return tl_track;
}

void prof_span(const char *name, const char *cat, uint64_t t0, uint64_t t1)
{
	struct prof *p = prof_g;
	if (!p || !p->wall)
		return;
	pthread_mutex_lock(&p->mu);
	struct prof_ev *e = prof_ev_new(p);
	if (e) {
		e->t0 = (double)(t0 - p->t_base);
		e->t1 = (double)(t1 - p->t_base);
		e->name = name;
		e->cat = cat;
		e->track = prof_host_track(p);
		e->card_t0 = t0;
	}
	pthread_mutex_unlock(&p->mu);
}

/* The end of a recording call that began at now: the host resumes work (the mark, the thread's
 * in wall mode), the recorder's own time is counted, the lock released. */
static void prof_done(struct prof *p, uint64_t now)
{
	uint64_t end = prof_now();
	if (p->wall)
		tl_mark = end;
	else
		p->mark = end;
	p->self_ns += (double)(end - now);
	pthread_mutex_unlock(&p->mu);
}

void prof_host(const char *name, const char *cat, int layer)
{
	prof_host_bytes(name, cat, layer, 0);
}

void prof_host_bytes(const char *name, const char *cat, int layer, uint64_t bytes)
{
	struct prof *p = prof_g;
	if (!p)
		return;
	uint64_t now = prof_now();
	pthread_mutex_lock(&p->mu);
	uint64_t mark = p->wall ? tl_mark : p->mark;
	double d = (double)(now - mark), t0 = p->wall ? (double)(mark - p->t_base) : p->cursor;
	struct prof_ev *e = prof_ev_new(p);
	if (e) {
		e->t0 = t0;
		e->t1 = t0 + d;
		e->name = name;
		e->cat = cat;
		e->layer = layer;
		e->track = prof_host_track(p);
		e->card_t0 = mark;
		e->bytes = bytes;
	}
	if (!p->wall)
		p->cursor += d;
	prof_done(p, now);
}

void prof_link(int dir, uint64_t bytes, double ns)
{
	struct prof *p = prof_g;
	if (!p || ns <= 0)
		return;
	uint64_t now = prof_now();
	/* the host work before the transfer is its own slice */
	prof_host("schedule", "host", -1);
	pthread_mutex_lock(&p->mu);
	/* wall mode: the transfer ends where the host saw it done */
	double t0 = p->wall ? (double)(prof_now() - p->t_base) - ns : p->cursor;
	struct prof_ev *e = prof_ev_new(p);
	if (e) {
		e->t0 = t0;
		e->t1 = t0 + ns;
		e->name = dir ? "link c2h" : "link h2c";
		e->cat = "LINK";
		e->bytes = bytes;
		e->track = prof_track(p, PROF_LINK, dir,
				      dir ? "link: card to host" : "link: host to card");
	}
	if (!p->wall)
		p->cursor += ns;
	prof_done(p, now);
}

void prof_card_list(const struct abi_cmd *cmd, const struct abi_cpl *cpl, const char *const *what,
		    const int16_t *layer, const struct prof_cmd *info, uint32_t n, double busy_ns)
{
	struct prof *p = prof_g;
	if (!p || !n)
		return;
	uint64_t now = prof_now();
	uint64_t c0 = UINT64_MAX, c1 = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (cpl[i].t_start < c0)
			c0 = cpl[i].t_start;
		if (cpl[i].t_end > c1)
			c1 = cpl[i].t_end;
	}
	double span = c1 > c0 ? (double)(c1 - c0) : 0;
	double q = busy_ns > span ? busy_ns - span : 0; /* queueing before the first start */
	double d = q + span > busy_ns ? q + span : busy_ns;
	pthread_mutex_lock(&p->mu);
	/* where the list starts: the cursor, or (wall mode) d before the host saw it complete */
	double base = p->wall ? (double)(now - p->t_base) - d : p->cursor;
	int room = !prof_tok_room(p);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t op = ABI_CPL_OP(cpl[i].word1), cu = ABI_CPL_CU(cpl[i].word1);
		if (op == ABI_OP_BARRIER || op == ABI_OP_FENCE || op == ABI_OP_NOP)
			continue;
		struct prof_ev *e = prof_ev_new(p);
		if (!e)
			break;
		e->t0 = base + q + (double)(cpl[i].t_start - c0);
		e->t1 = base + q + (double)(cpl[i].t_end - c0);
		e->card_t0 = cpl[i].t_start;
		e->name = what && what[i] ? what[i] : abi_op_name(op);
		e->cat = abi_op_name(op);
		e->layer = layer ? layer[i] : -1;
		char tn[PROF_NAME];
		if (op == ABI_OP_DMA_FILL) {
			uint32_t ch = ABI_DMA_WORD_CHAN(cmd[i].u.dma.word);
			snprintf(tn, sizeof tn, "DMA channel %u", ch);
			e->track = prof_track(p, PROF_DMA, (int)ch, tn);
			e->bytes = cmd[i].u.dma.bytes;
			e->expert = (int)ABI_DMA_WORD_SLOT(cmd[i].u.dma.word);
			e->hit = 0;
			p->fills++;
			if (room)
				p->fill_tok[p->token] += 1;
		} else {
			snprintf(tn, sizeof tn, "CU %u", cu);
			e->track = prof_track(p, PROF_CU, (int)cu, tn);
		}
		if (info) {
			const struct prof_cmd *c = &info[i];
			if (op != ABI_OP_DMA_FILL)
				e->bytes = c->bytes;
			e->macs = c->macs;
			e->pc0 = c->pc0;
			e->pc1 = c->pc1;
			if (c->expert >= 0)
				e->expert = c->expert;
			if (room && c->pc0 >= 0 && c->pc1 < PROF_MAX_PCS && c->pc1 >= c->pc0) {
				double *row = p->pc_tok + (size_t)PROF_MAX_PCS * p->token;
				int np = c->pc1 - c->pc0 + 1;
				for (int b = c->pc0; b <= c->pc1; b++)
					row[b] += c->pc_bytes ? (double)c->pc_bytes[b - c->pc0]
							      : (double)c->bytes / np;
			}
		}
		const struct abi_cmd *k = &cmd[i];
		switch (op) {
		case ABI_OP_GEMV:
			snprintf(e->shape, sizeof e->shape, "ng %u m %u", k->u.gemv.ng,
				 k->u.gemv.m);
			break;
		case ABI_OP_GEMM_FP8:
			snprintf(e->shape, sizeof e->shape, "%ux%ux%u", k->u.gemm.m, k->u.gemm.n,
				 k->u.gemm.k);
			break;
		case ABI_OP_MLA_ATTN_LANES:
			snprintf(e->shape, sizeof e->shape, "%u heads ctx %u", k->u.mlal.n_heads,
				 k->u.mlal.n_ctx);
			break;
		case ABI_OP_MLA_ATTN:
			snprintf(e->shape, sizeof e->shape, "%u heads ctx %u", k->u.mla.n_heads,
				 k->u.mla.n_ctx);
			break;
		case ABI_OP_MOE_ROUTE:
			snprintf(e->shape, sizeof e->shape, "e %u k %u", k->u.route.e,
				 k->u.route.k);
			break;
		case ABI_OP_KV_APPEND:
			snprintf(e->shape, sizeof e->shape, "row %u pos %u rows %u", k->u.kv.row,
				 k->u.kv.pos, k->u.kv.rows > 1 ? k->u.kv.rows : 1);
			break;
		case ABI_OP_DMA_FILL:
			snprintf(e->shape, sizeof e->shape, "%llu B",
				 (unsigned long long)k->u.dma.bytes);
			break;
		default:
			snprintf(e->shape, sizeof e->shape, "%ux%u", k->u.vec.rows, k->u.vec.cols);
		}
	}
	p->map_tl = base + q;
	p->map_card = (double)c0;
	if ((p->lists & (p->lists - 1)) == 0) { /* grows at powers of two */
		struct prof_span *ls =
		    realloc(p->lists_at, sizeof *ls * (size_t)(p->lists ? 2 * p->lists : 1));
		if (ls)
			p->lists_at = ls;
		else
			p->oom = 1;
	}
	if (!p->oom)
		p->lists_at[p->lists] = (struct prof_span){base, base + d, p->token};
	if (!p->wall)
		p->cursor += d;
	p->list_ns += d;
	p->lists++;
	prof_done(p, now);
}

void prof_card_async(const char *name, uint32_t ch, uint64_t c0, uint64_t c1, uint64_t bytes,
		     int slot)
{
	struct prof *p = prof_g;
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	struct prof_ev *e = prof_ev_new(p);
	if (!e) {
		pthread_mutex_unlock(&p->mu);
		return;
	}
	char tn[PROF_NAME];
	snprintf(tn, sizeof tn, "DMA channel %u", ch);
	e->track = prof_track(p, PROF_DMA, (int)ch, tn);
	e->t0 = p->map_tl + ((double)c0 - p->map_card);
	e->t1 = e->t0 + (double)(c1 - c0);
	e->card_t0 = c0;
	e->name = name;
	e->cat = "DMA_FILL";
	e->bytes = bytes;
	e->expert = slot;
	e->hit = 0;
	snprintf(e->shape, sizeof e->shape, "%llu B", (unsigned long long)bytes);
	p->fills++;
	if (!prof_tok_room(p))
		p->fill_tok[p->token] += 1;
	pthread_mutex_unlock(&p->mu);
}

void prof_token_end(void)
{
	struct prof *p = prof_g;
	if (!p || p->wall) /* a server's sequences have no one token order */
		return;
	if (prof_tok_room(p)) {
		p->oom = 1;
		return;
	}
	p->tok_end[p->token] = p->cursor;
	p->n_tok = p->token + 1;
	p->token++;
	if (prof_tok_room(p))
		p->oom = 1;
}

/* --- Chrome trace-event JSON ------------------------------------------------------------- */
void prof_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

int prof_write_trace(const struct prof *p, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"clock\":\"moecard timeline: host "
		   "work (CLOCK_MONOTONIC), link (modeled) and card lists (card clock) laid end to "
		   "end; waits for the card do not move it\",\"card\":");
	prof_json_str(f, p->card.valid ? p->card.model : "none");
	if (p->other)
		p->other(p->other_ctx, f);
	fprintf(f, "},\"traceEvents\":[\n");
	/* track names: pid 0 host, 1 link, 2 card CUs, 3 DMA */
	static const char *const pn[4] = {"host", "link", "card CUs", "card DMA"};
	for (int k = 0; k < 4; k++)
		fprintf(f,
			"%s{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
			"\"args\":{\"name\":\"%s\"}}\n",
			k ? "," : "", k, pn[k]);
	for (int i = 0; i < p->n_tracks; i++) {
		fprintf(f,
			",{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{"
			"\"name\":",
			p->track[i].kind, i);
		prof_json_str(f, p->track[i].name);
		fprintf(f, "}}\n");
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct prof_ev *e = &p->ev[i];
		fputs(",{\"name\":", f);
		prof_json_str(f, e->name);
		fputs(",\"cat\":", f);
		prof_json_str(f, e->cat);
		fprintf(f,
			",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,\"args\":{"
			"\"token\":%d,\"layer\":%d",
			p->track[e->track].kind, e->track, e->t0 / 1e3, (e->t1 - e->t0) / 1e3,
			e->token, e->layer);
		if (e->shape[0]) {
			fputs(",\"shape\":", f);
			prof_json_str(f, e->shape);
		}
		if (e->bytes)
			fprintf(f, ",\"bytes\":%llu", (unsigned long long)e->bytes);
		if (e->macs > 0)
			fprintf(f, ",\"macs\":%.0f", e->macs);
		if (e->expert >= 0)
			fprintf(f, ",\"expert\":%d", e->expert);
		if (e->hit >= 0)
			fprintf(f, ",\"hit\":%s", e->hit ? "true" : "false");
		if (e->pc0 >= 0)
			fprintf(f, ",\"pc\":\"%d-%d\"", e->pc0, e->pc1);
		if (p->track[e->track].kind >= PROF_CU)
			fprintf(f, ",\"card_ns\":%llu", (unsigned long long)e->card_t0);
		fputs("}}\n", f);
	}
	fprintf(f, "]}\n");
	return fclose(f) ? -EIO : 0;
}
