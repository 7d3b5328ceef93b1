/*
 * expert_cache.h - the host side of the expert cache (docs/expert-cache.md): routed experts live
 * in host memory (the mmapped checkpoint); a fixed number of expert slots in card memory hold
 * the ones in use.
 *
 * Data flow: router on the host picks (layer, expert) -> expert_cache_lookup: hit = a card slot;
 * miss -> either a DMA of the expert into a slot chosen by the policy (expert_cache_fill, then
 * drivers/dma.h with expert_slot_sg: six SG elements straight from the checkpoint mmap) or, when
 * the DMA would finish too late, the expert runs on the host CPU with the cpu kernels and its
 * output is merged. Look-ahead prefetch (the next layer's gate on the current residual stream,
 * expert_trace.h) fills slots before the layer needs them. Every decision can go to a JSONL
 * event trace.
 *
 * This header holds three parts:
 *   1. slot layout (the fp8_gemm kernel's operands: row-major E4M3 codes + F32 block scales),
 *      the DMA that fills a slot and the host view of a filled one (the card scheduler places
 *      the slots round-robin over the HBM pseudo-channels, card_experts.c);
 *   2. the cache itself: keys (layer * n_experts + expert), slots, and the replacement policies
 *      LRU, LFU, PIN (hottest experts by measured load pinned, LRU for the rest: the single-card
 *      analogue of DeepSeek's EPLB) and BELADY (offline MIN, needs the next use of every access);
 *   3. the replay of a routing trace under a policy with a modeled timeline (card compute,
 *      PCIe link, host CPU), used by `moecard cache-sim` and the tests. Every time it reports is
 *      MODELED, not measured.
 */
#ifndef MOECARD_EXPERT_CACHE_H
#define MOECARD_EXPERT_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "load/ckpt.h"
#include "dma.h"
#include "sched/expert_trace.h"

/* ---- 1. slot layout --------------------------------------------------------------------- */

#define EXPERT_SLOT_ALIGN 64  /* sub-buffer alignment, bytes (one 512-bit AXI beat) */
#define EXPERT_SLOT_PAGE 4096 /* slot size granularity, bytes */
#define EXPERT_SLOT_PARTS 6   /* gate, up, down codes; gate, up, down scales */

/* Where each part of one expert sits inside a slot. */
struct expert_slot_layout {
	uint64_t off[EXPERT_SLOT_PARTS]; /* byte offset of part p inside the slot; up follows gate
	                                    directly (codes and scales), the others start on
	                                    EXPERT_SLOT_ALIGN */
	uint64_t len[EXPERT_SLOT_PARTS]; /* bytes of part p: codes [I][D], [I][D], [D][I] (E4M3),
	                                    then scales [ceil(I/128)][ceil(D/128)] x2 and
	                                    [ceil(D/128)][ceil(I/128)] (F32) */
	uint64_t bytes;			 /* slot size, bytes (multiple of EXPERT_SLOT_PAGE) */
	uint64_t payload;		 /* sum of len[], bytes (the DMA volume of one miss) */
};

/* expert_slot_layout_init - layout for hidden_size D and moe_intermediate_size I of c.
 * Returns 0, or -EINVAL for non-positive sizes. */
int expert_slot_layout_init(const struct config *c, struct expert_slot_layout *l);

/*
 * expert_slot_sg - the scatter-gather list that DMAs expert f (FP8 weights in the checkpoint
 * mmap) into the slot at (bank, card_off): sg[EXPERT_SLOT_PARTS], H2C. Returns the number of
 * elements (6), or -EINVAL when f is not FP8 or its shapes differ from the layout's.
 */
int expert_slot_sg(const struct ffn_weights *f, const struct expert_slot_layout *l, uint32_t bank,
		   uint64_t card_off, struct dma_sg *sg);

/*
 * expert_slot_view - the ffn_weights of the expert held in slot memory base (a host view of the
 * card bank, e.g. dma_dev_bank_ptr + card_off), so the host kernels or the card read it there;
 * names are taken from like. Returns 0 or -EINVAL.
 */
int expert_slot_view(const struct expert_slot_layout *l, const void *base,
		     const struct ffn_weights *like, struct ffn_weights *out);

/* ---- 2. the cache ------------------------------------------------------------------------ */

enum expert_policy {
	EXPERT_POLICY_LRU = 0, /* least recently used */
	EXPERT_POLICY_LFU = 1, /* least frequently used (counts kept across evictions), LRU ties */
	EXPERT_POLICY_PIN = 2, /* hottest experts by measured load pinned; LRU for the rest */
	EXPERT_POLICY_BELADY = 3, /* evict the one used furthest in the future (offline optimum) */
	EXPERT_POLICY_N
};
const char *expert_policy_name(enum expert_policy p);

/* Slot flags (bit values of expert_cache.flags[]). */
#define EXPERT_SLOT_PINNED 0x1u	  /* never evicted until re-pinning */
#define EXPERT_SLOT_PREFETCH 0x2u /* filled by a prefetch and not used since */
#define EXPERT_SLOT_LOCKED 0x4u	  /* in use by the current layer step; not evictable */
#define EXPERT_SLOT_INFLIGHT                                                                       \
	0x8u /* a detached fill (a list of its own, running across layer
				     steps) is writing it: not evictable or refillable until the
				     engine clears the flag when that list completed */

/* Decision counters. */
struct expert_cache_stats {
	uint64_t accesses;	  /* demand accesses (lookups by the router's choice) */
	uint64_t hits;		  /* demand accesses found resident */
	uint64_t fills;		  /* slots filled (demand misses DMA'd + prefetches + pins) */
	uint64_t evictions;	  /* resident experts replaced */
	uint64_t prefetch_issued; /* prefetch fills */
	uint64_t prefetch_used;	  /* prefetched experts later hit */
	uint64_t prefetch_wasted; /* prefetched experts evicted unused */
	uint64_t pin_fills;	  /* fills done by re-pinning */
};

/* Decision kinds of the event trace. */
enum expert_event {
	EXPERT_EV_HIT,
	EXPERT_EV_MISS_DMA,
	EXPERT_EV_MISS_HOST,
	EXPERT_EV_PREFETCH,
	EXPERT_EV_PREFETCH_USED,
	EXPERT_EV_PREFETCH_WASTED,
	EXPERT_EV_EVICT,
	EXPERT_EV_PIN,
};

struct expert_cache {
	int n_keys;    /* n_layers * n_experts */
	int n_experts; /* experts per layer (key = layer * n_experts + expert) */
	int n_slots;   /* card slots */
	enum expert_policy policy;
	int32_t *slot_key; /* [n_slots] key held, -1 = empty */
	int32_t *key_slot; /* [n_keys] slot holding the key, -1 = not resident */
	uint64_t *stamp;   /* [n_slots] clock of the last use (LRU) */
	uint64_t *next;	   /* [n_slots] index of the next use of the held key (BELADY) */
	uint64_t *count;   /* [n_keys] demand accesses so far (LFU, PIN load) */
	uint8_t *flags;	   /* [n_slots] EXPERT_SLOT_* */
	int32_t *locked;   /* [n_slots] slots locked in this step */
	int n_locked;	   /* entries of locked[] */
	uint64_t clock;	   /* advances on every use */
	struct expert_cache_stats st;
	FILE *events;	/* JSONL decision trace, or NULL */
	int64_t ev_pos; /* token position stamped on events */
};

/* expert_cache_init - n_layers x n_experts keys, n_slots slots (>= 1). 0, -EINVAL or -ENOMEM. */
int expert_cache_init(struct expert_cache *c, int n_layers, int n_experts, int n_slots,
		      enum expert_policy policy);
void expert_cache_free(struct expert_cache *c);

/* expert_cache_lookup - the slot holding (layer, e), or -1. No side effects. */
int expert_cache_lookup(const struct expert_cache *c, int layer, int e);

/*
 * expert_cache_access - one demand access by the router: counts the load, and on a hit touches
 * and locks the slot (a prefetched slot counts as prefetch_used). Returns the slot (hit) or -1
 * (miss; the caller then fills or runs the expert on the host). next_use: access index of the
 * key's next use (BELADY), UINT64_MAX = never.
 */
int expert_cache_access(struct expert_cache *c, int layer, int e, uint64_t next_use);

/*
 * expert_cache_fill - makes (layer, e) resident in a slot chosen by the policy (an empty one
 * first), locks it unless prefetch, flags it EXPERT_SLOT_PREFETCH when prefetch. *victim (may be
 * NULL) gets the evicted key or -1. Returns the slot, the current slot when already resident, or
 * -ENOSPC when every slot is pinned or locked.
 */
int expert_cache_fill(struct expert_cache *c, int layer, int e, uint64_t next_use, int prefetch,
		      int *victim);

/* expert_cache_victim - the slot a fill would take now (an empty one first), or -1 when every
 * slot is pinned or locked. No side effects. */
int expert_cache_victim(const struct expert_cache *c);

/* expert_cache_drop - empties slot s (its fill failed: the data is not there); the key is no
 * longer resident. Flags other than EXPERT_SLOT_LOCKED are cleared. */
void expert_cache_drop(struct expert_cache *c, int s);

/* expert_cache_lock - locks slot s until the next expert_cache_unlock (a fill in flight that
 * no other fill of the same step may take over). */
void expert_cache_lock(struct expert_cache *c, int s);

/* expert_cache_unlock - ends a layer step: unlocks the slots locked since the last call. */
void expert_cache_unlock(struct expert_cache *c);

/*
 * expert_cache_repin - PIN policy: pins the n_pin keys with the highest measured load (count),
 * unpinning the others; pinned keys not resident are filled. Returns the number of fills
 * (>= 0; each is a DMA), or -ENOSPC when n_pin >= n_slots.
 */
int expert_cache_repin(struct expert_cache *c, int n_pin);

/* expert_cache_event - writes one JSONL decision line when c->events is set. */
void expert_cache_event(struct expert_cache *c, enum expert_event ev, int layer, int e);

/* ---- 3. modeled replay of a routing trace ------------------------------------------------- */

/*
 * expert_miss_on_host - the hybrid rule for an expert whose weights are not on the card (a miss,
 * or a prefetch still in flight), shared by the card engine (--expert-host auto) and the replay
 * (host_exec). All arguments are times in seconds on one modeled clock: dma_end, when its weights
 * would have landed on the card; need, the earliest time the card could run it; host_end, when
 * the host CPU would have computed it; merge, the time to move its f32 output to the card;
 * card_exp, the card's time to run it. Returns 1 (run it on the host) when the link would make the
 * card wait (dma_end > need) and the host's output reaches the card no later than the card's own
 * would be done (host_end + merge <= dma_end + card_exp); else 0 (DMA it).
 */
int expert_miss_on_host(double dma_end, double need, double host_end, double merge,
			double card_exp);

struct expert_sim_cfg {
	enum expert_policy policy;
	int lookahead;	       /* 0 none; 1: layer L's predicted experts (trace pred1, from the
	                            residual after layer L-1) are prefetched when layer L starts;
	                            2: layer L+1's (trace pred2 of L+1, from the residual after
	                            layer L-1) are prefetched when layer L starts, a layer earlier */
	int host_exec;	       /* 1: hybrid. A miss runs on the host CPU when that finishes before
	                            its DMA would (the card never waits on the link for it), and is
	                            then filled in the background; prefetches and background fills
	                            are only issued when the link can deliver them before their use
	                            (link budget), and a prefetched expert still in flight runs on
	                            the host when that is sooner */
	int n_slots;	       /* card slots (>= 1) */
	int pin_slots;	       /* PIN: pinned slots (0 = half of n_slots) */
	int repin_every;       /* PIN: tokens between re-pinning on the measured load (0 = 32) */
	double card_bw;	       /* card memory bandwidth for decode GEMVs, bytes/s */
	double link_bw;	       /* host->card link bandwidth, bytes/s */
	double host_bw;	       /* host CPU expert GEMV rate, weight bytes/s */
	double desc_lat;       /* per-DMA latency, s */
	uint64_t expert_bytes; /* 0 = the trace's */
	uint64_t layer_bytes;  /* 0 = the trace's */
	uint64_t other_bytes;  /* 0 = the trace's */
	double layer_scale;    /* each traced MoE layer stands for this many layers (what-if for
	                            deeper models); 0 = 1 */
	FILE *events;	       /* JSONL decisions, or NULL */
};

struct expert_sim_result {
	uint64_t tokens;     /* tokens replayed */
	uint64_t accesses;   /* expert accesses */
	uint64_t hits;	     /* resident at lookup (incl. prefetched, arrived or in flight) */
	uint64_t ready;	     /* hits whose weights had arrived when the router chose them */
	uint64_t late_host;  /* hits still in flight that the host ran instead (hybrid) */
	uint64_t miss_dma;   /* misses fetched over the link while the card waits */
	uint64_t miss_host;  /* misses run on the host CPU */
	uint64_t bg_fills;   /* background fills after a host-run miss (hybrid) */
	uint64_t pf_skipped; /* prefetches not issued: too late for the link (hybrid) or, for
	                            BELADY, not worth a slot (optimal admission) */
	uint64_t prefetch_issued, prefetch_used, prefetch_wasted, pin_fills;
	double hit_rate;   /* hits / accesses */
	double ready_rate; /* ready / accesses */
	double dma_bytes;  /* bytes over the link (misses, prefetches, pins), times layer_scale */
	double dma_bytes_per_token;
	double dma_busy_s;  /* modeled link busy time */
	double dma_wait_s;  /* card time spent waiting for a DMA to land (exposed DMA time) */
	double host_wait_s; /* card time spent waiting for host-run experts */
	double time_s;	    /* modeled decode time of all tokens */
	double ideal_s;	    /* modeled time with every expert resident */
	double stall_s;	    /* time_s - ideal_s (>= 0 up to rounding) */
	double dma_hidden;  /* 1 - dma_wait_s / dma_busy_s: share of link busy time that ran
	                            behind compute (1 when nothing was DMA'd) */
	double tok_s;	    /* modeled decode tokens/s */
	double ideal_tok_s; /* modeled tokens/s with every expert resident */
	double host_tok_s;  /* modeled tokens/s of an all-host run (every byte at host_bw) */
};

/*
 * expert_sim_run - replays trace t (records taken in token order, then layer order) under cfg.
 * Per MoE layer the card runs attention (layer_bytes at card_bw), then the k experts in the
 * order their weights are ready (expert_bytes at card_bw each); the link moves one expert at a
 * time (expert_bytes / link_bw + desc_lat); the host runs an expert in expert_bytes / host_bw
 * and merges its f32 output over the link. Returns 0, -EINVAL (bad cfg: slots < 1,
 * non-positive bandwidths; or the trace has no predictions while lookahead > 0), or -ENOMEM.
 */
int expert_sim_run(const struct expert_trace *t, const struct expert_sim_cfg *cfg,
		   struct expert_sim_result *r);

#endif
