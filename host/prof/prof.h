/*
 * prof.h - the latency profiler (docs/profiling.md): one timeline of everything a token costs,
 * recorded while a run goes and written as a Chrome trace, a summary (text and JSON) and a
 * self-contained HTML report.
 *
 * The timeline. Its clock is the sum of the parts a token is made of, laid end to end in the order
 * the host did them: host work is measured on CLOCK_MONOTONIC from the moment the host resumed
 * (prof_mark) to the end of the part (prof_host); a transfer over the link takes its modeled link
 * time (prof_link); a command list takes the card's own clock from its submission to its last
 * completion, each command at its completion stamps relative to the list (prof_card_list). Time
 * the host spends waiting for the card (on the emulated card: the emulation itself) is not host
 * work and does not move the timeline, so the timeline is the modeled end-to-end time: card +
 * link + host parts. On a real card the same rule holds with the card's hardware clock.
 *
 * Always compiled in; off it is one NULL test per hook (prof_g).
 */
#ifndef MOECARD_PROF_H
#define MOECARD_PROF_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "abi_cmd.h"

#define PROF_MAX_TRACKS 256
#define PROF_MAX_PCS 64
#define PROF_NAME 48
/* A summary row's key: an op name (longer than a track's name) or "layer N". */
#define PROF_KEY 96

enum prof_track_kind { PROF_HOST = 0, PROF_LINK = 1, PROF_CU = 2, PROF_DMA = 3 };

/* One slice of the timeline. */
struct prof_ev {
	double t0, t1;	  /* ns on the timeline */
	const char *name; /* static label ("q_b (gemv)", "sampling") */
	const char *cat;  /* op class: the opcode for card commands, the host part's class */
	int track;	  /* index into prof.track */
	int layer;	  /* decoder layer, -1 none (head, host parts) */
	int token;	  /* 0: the prompt (up to the first token), n: the n-th decode step */
	uint64_t bytes;	  /* bytes it reads (card), moves (link); 0 unknown */
	double macs;	  /* multiply-adds (GEMV, attention), 0 otherwise */
	char shape[32];	  /* e.g. "ng 3 m 1", "1x1024" */
	int expert;	  /* expert id (fills), -1 */
	int hit;	  /* expert cache: 1 hit, 0 miss (a fill), -1 n/a */
	int pc0, pc1;	  /* the pseudo-channels it reads, [pc0, pc1], -1 none */
	uint64_t card_t0; /* card clock ns of its start (card), 0 */
};

struct prof_track {
	char name[PROF_NAME];
	int kind; /* enum prof_track_kind */
	int unit; /* CU index, DMA channel, link direction */
};

/* Per-PC peak rate and per-CU roofs the summary compares against (from the board). */
struct prof_card {
	int valid;
	char model[64];
	int n_pcs;		      /* banks */
	double pc_gbps[PROF_MAX_PCS]; /* data-sheet bandwidth per bank, GB/s */
	double eff;		      /* sustained share (mem-efficiency-pct / 100) */
	int lanes;		      /* GEMV lanes (0: none) */
	double clock_mhz;	      /* kernel clock */
	int attn_lane_macs;	      /* attention MACs per lane per cycle */
	double link_gbps;	      /* host link per direction, GB/s */
};

struct prof {
	/* wall mode (prof_start_wall: a server's threads): every slice at its own host time since
	 * t_base, one track per thread; card lists end where the host saw them complete */
	int wall;
	uint64_t t_base;
	pthread_mutex_t mu; /* every recording call holds it (threads of a server) */
	struct prof_ev *ev;
	size_t n, cap;
	struct prof_track track[PROF_MAX_TRACKS];
	int n_tracks;
	double cursor;	 /* ns: where the next part starts */
	uint64_t mark;	 /* host CLOCK_MONOTONIC ns when the host resumed work */
	int token;	 /* the token being made */
	double *tok_end; /* [n_tok] timeline ns where each token ended (after sampling) */
	int n_tok, cap_tok;
	struct prof_span {
		double t0, t1;
		int token;
	} * lists_at;		 /* [lists] where each card list sits on the timeline */
	double list_ns;		 /* card lists: their card time, summed */
	double map_tl, map_card; /* the last list: timeline ns where its card clock map_card was */
	uint64_t lists;		 /* card lists recorded */
	double self_ns;		 /* host time spent inside the recorder itself */
	struct prof_card card;
	uint64_t fills;	  /* expert fills (misses) recorded */
	double *pc_tok;	  /* [cap_tok][PROF_MAX_PCS] bytes read per bank, per token */
	double *fill_tok; /* [cap_tok] expert fills per token */
	int oom;	  /* an allocation failed: events were dropped */
	/* the trace's otherData members (the card's DMA figures): written by other(other_ctx, f) as
	 * ",\"key\":value..." when set (the card engine sets it and clears it when it closes) */
	void (*other)(void *ctx, FILE *f);
	void *other_ctx;
};

/* The process's profile; NULL when profiling is off (every hook tests it first). */
extern struct prof *prof_g;

/* prof_start - turns profiling on (a fresh prof_g). 0 or -ENOMEM. */
int prof_start(void);
/* prof_start_wall - profiling on in wall mode (a server: many threads, no token order): host
 * slices at their CLOCK_MONOTONIC times, a track per thread (prof_thread_name). 0 or -ENOMEM. */
int prof_start_wall(void);
/* Names the calling thread's track (wall mode), e.g. "http: connection". */
void prof_thread_name(const char *name);
/* A slice [t0, t1) of host CLOCK_MONOTONIC ns on the calling thread's track (wall mode). */
void prof_span(const char *name, const char *cat, uint64_t t0, uint64_t t1);
/* prof_stop - frees prof_g and turns profiling off. */
void prof_stop(void);

/* Host CLOCK_MONOTONIC, ns. */
uint64_t prof_now(void);

/* The host resumes work now (after a wait, or at the start). */
void prof_mark(void);
/* The host work since the mark is one slice `name` of class cat; the mark moves to now. */
void prof_host(const char *name, const char *cat, int layer);
/* prof_host_bytes - prof_host with the bytes the part read (the weights and caches of a cpu
 * engine step), for the summary's GB/s. */
void prof_host_bytes(const char *name, const char *cat, int layer, uint64_t bytes);
/* A transfer over the link: dir 0 host to card, 1 back; its bytes and modeled ns. */
void prof_link(int dir, uint64_t bytes, double ns);
/* A command list that ran: cmd[i] completed as cpl[i] (card clock), labelled what[i], in decoder
 * layer layer[i] (NULL: all -1); busy_ns is the card time the backend charged for the list (the
 * firmware's queueing before the first start included; 0: from the stamps). DMA fills go on
 * their channel's track, barriers and fences are not slices. The caller closes the host work
 * before the submission (prof_host); the wait is not host work: the mark moves to now. */
struct prof_cmd {
	uint64_t bytes;		  /* bytes the command reads from card memory */
	double macs;		  /* its multiply-adds (GEMV, attention) */
	int pc0, pc1;		  /* the banks it reads, [pc0, pc1]; -1 none */
	const uint64_t *pc_bytes; /* bytes per bank pc0..pc1 (NULL: spread evenly) */
	int expert;		  /* DMA fill: the expert slot, else -1 */
};
void prof_card_list(const struct abi_cmd *cmd, const struct abi_cpl *cpl, const char *const *what,
		    const int16_t *layer, const struct prof_cmd *info, uint32_t n, double busy_ns);
/* A DMA transfer that ran beside the lists (a detached expert fill on channel ch, card clock
 * [c0, c1)), placed by the last list's card-to-timeline offset; slot: its expert slot. */
void prof_card_async(const char *name, uint32_t ch, uint64_t c0, uint64_t c1, uint64_t bytes,
		     int slot);
/* The token being made ended here (after its sampling). */
void prof_token_end(void);

/* --- the summary (prof_sum.c) -------------------------------------------------------------- */
struct prof_stat {
	char key[PROF_KEY]; /* op name, or "layer N" */
	const char *cat;
	int kind;  /* track kind of its slices */
	int layer; /* per-layer rows: the layer */
	uint64_t count;
	double total_ns; /* sum of the slices' durations */
	double excl_ns;	 /* its exclusive share of the timeline (overlaps split evenly) */
	double mean_ns, p50_ns, p99_ns, max_ns;
	double bytes, macs;
	double bw_frac;	 /* bytes / total time against the ports' sustained rate (card) */
	double mac_frac; /* macs against the CU's peak MAC rate (attention), else 0 */
	double *d;	 /* durations (working buffer) */
	size_t nd, capd;
};

struct prof_summary {
	char backend[16];
	char model[256];
	int prompt_len, gen;
	int seqs;	/* > 0: that many sequences decoded together, each step a token of each */
	double wall_ns; /* the timeline's span */
	double idle_ns; /* card lists' time with no command running (firmware, queueing) */
	double ttft_ns; /* the prompt up to the first token */
	double tok_p50_ns, tok_p99_ns, tok_max_ns, tok_mean_ns; /* decode steps */
	double *tok_ns;						/* [n_tok] decode step latencies */
	int n_tok;
	double decode_ns;     /* the decode steps' span */
	struct prof_stat *op; /* decode steps, per op, sorted by exclusive time */
	size_t n_op;
	struct prof_stat *layer; /* decode steps, per layer (layer -1 = outside layers) */
	size_t n_layer;
	double cls_ns[4];	       /* decode: exclusive ns by track kind (host link cu dma) */
	double pc_bytes[PROF_MAX_PCS]; /* decode: bytes read per pseudo-channel, per token */
	int n_pcs;
	double *pc_tok;	   /* [n_tok][n_pcs] bytes per PC per decode step (heat map) */
	double *fills_tok; /* [n_tok] expert fills per decode step */
	uint64_t events, lists;
	double self_ns;		    /* the recorder's own host time */
	double ovh_on_s, ovh_off_s; /* --overhead: a pass's host wall time, profiler on / off */
	struct prof_card card;
};

/* prof_summarize - the summary of p (ns figures on the timeline). 0 or -ENOMEM. */
int prof_summarize(const struct prof *p, struct prof_summary *s);
void prof_summary_free(struct prof_summary *s);

/* s as a JSON string (quoted, escaped) on f. */
void prof_json_str(FILE *f, const char *s);
/* Writers: 0 or -errno. */
int prof_write_trace(const struct prof *p, const char *path);
int prof_write_summary_json(const struct prof_summary *s, const char *path);
int prof_write_summary_txt(const struct prof_summary *s, FILE *f);
int prof_write_report(const struct prof *p, const struct prof_summary *s, const char *path);
/* A what-if sweep's page: n values v of key, decode tok/s and TTFT ms of [0] the model's shapes
 * and [1] 671B, one SVG line chart each. */
int prof_write_sweep_html(const char *path, const char *key, const char *model, const double *v,
			  const double (*tok_s)[2], const double (*ttft)[2], int n);

/* prof_diff - compares two summary.json files: per op and per layer, the largest differences
 * first, printed on out; only "card" or "host" (NULL: all) keeps the ops of that side and no
 * layer rows. Returns the largest relative difference of an op or layer's exclusive
 * time that is at least min_ns (fraction, >= 0) into *worst, 0 or -errno / -EINVAL (message in
 * err naming the file and field). */
int prof_diff(const char *a, const char *b, const char *only, FILE *out, double min_ns,
	      double *worst, char *err, size_t errlen);
/* prof_diff on two summaries in memory (abuf[0..alen), bbuf[0..blen); a and b name them). */
int prof_diff_buf(const char *a, const char *abuf, size_t alen, const char *b, const char *bbuf,
		  size_t blen, const char *only, FILE *out, double min_ns, double *worst, char *err,
		  size_t errlen);

#endif
