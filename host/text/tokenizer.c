/*
 * tokenizer.c - Hugging Face tokenizer.json byte-level BPE (DeepSeek-V3's) with PCRE2
 * pre-tokenizer regexes: loading, encoding, decoding and streaming decoding. See tokenizer.h for
 * the pipeline and where it sits in the host data flow.
 *
 * Reference semantics: huggingface/tokenizers (Rust): added-token matching (leftmost-longest,
 * AddedVocabulary), Split pre-tokenizer behaviors (NormalizedString::split), ByteLevel
 * bytes_to_unicode, BPE merge order (lowest rank first, leftmost among equal ranks), ByteLevel
 * decoder with String::from_utf8_lossy.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "text/tokenizer.h"
#include "util/errmsg.h"

#define TOK_MAX_ID (1 << 21) /* ids from here up are refused at load (bad input) */
#define TOK_MAX_STAGES 8     /* pre-tokenizer Split stages */
#define TOK_MAX_NORM 8	     /* normalizer steps */
#define TOK_CACHE_SLOTS (1u << 15)
#define TOK_CACHE_MAXB 32 /* pieces up to this many bytes are cached */
#define TOK_CACHE_ARENA (1u << 21)
#define TOK_SMALL_BPE 48 /* pieces up to this many symbols use the array merge loop */

/* Token flags, tokenizer.flags[id]. */
#define TOK_F_PRESENT 1u /* the id names a token */
#define TOK_F_ADDED 2u	 /* listed in added_tokens */
#define TOK_F_SPECIAL 4u /* added token with "special": true */

enum tok_behavior {
	TOK_SPLIT_REMOVED,
	TOK_SPLIT_ISOLATED,
	TOK_SPLIT_MERGED_PREV,
	TOK_SPLIT_MERGED_NEXT,
	TOK_SPLIT_CONTIGUOUS,
};

/* One pre-tokenizer Split stage. */
struct tok_stage {
	pcre2_code *re;		/* compiled pattern (UTF, UCP; PCRE2_LITERAL for String patterns) */
	pcre2_match_data *md;	/* match data for re (scratch) */
	bool jit;		/* re was JIT-compiled */
	int behavior;		/* enum tok_behavior */
	bool invert;		/* Split.invert: the pattern's matches are the gaps */
	struct tok_span *spans; /* [cap_spans] scratch for the merging behaviors */
	size_t cap_spans;	/* entries allocated in spans */
};

/* A byte range of a piece and whether the pattern matched it. */
struct tok_span {
	size_t a, b; /* [a, b) byte offsets in the piece */
	bool match;  /* produced by the pattern (after invert) */
};

/* One normalizer step (Replace of a literal string, or Prepend). */
struct tok_norm {
	char *from;    /* Replace pattern String (NULL for Prepend) */
	size_t n_from; /* bytes in from */
	char *to;      /* Replace content / Prepend string */
	size_t n_to;   /* bytes in to */
};

/* One added token as matched in the text. */
struct tok_added {
	int32_t id;	  /* token id */
	uint32_t len;	  /* bytes of content */
	const char *s;	  /* content (points into str_pool) */
	bool special;	  /* "special": true */
	bool lstrip;	  /* absorb whitespace on the left */
	bool rstrip;	  /* absorb whitespace on the right */
	bool single_word; /* only match when not inside a word */
};

/* Word cache slot: a piece's bytes and its ids, stored in cache_arena. */
struct tok_cache_slot {
	uint64_t h;   /* hash of the piece bytes, 0 = empty */
	uint32_t off; /* byte offset in cache_arena: nb bytes, padded to 4, then ni int32 ids */
	uint8_t nb;   /* piece bytes, 1..TOK_CACHE_MAXB */
	uint8_t ni;   /* ids, 1..TOK_CACHE_MAXB */
};

struct tokenizer {
	int32_t n_ids;	      /* largest id + 1 */
	uint32_t *byte_off;   /* [n_ids + 1] offsets of each token's bytes in byte_pool */
	uint8_t *byte_pool;   /* decoded token bytes */
	uint32_t *str_off;    /* [n_ids + 1] offsets of each token's json string in str_pool */
	char *str_pool;	      /* NUL-terminated json strings (vocab keys / added contents) */
	uint8_t *flags;	      /* [n_ids] TOK_F_* */
	size_t max_tok_bytes; /* longest token, bytes */
	int32_t byte_id[256]; /* id of the single-byte token for each byte */

	int32_t *str_slots; /* [str_cap] open-addressing hash of json string -> id, -1 empty */
	size_t str_cap;	    /* power of two */

	uint64_t *merge_keys; /* [merge_cap] (left id << 32 | right id), UINT64_MAX empty */
	uint32_t *merge_rank; /* [merge_cap] rank = line in model.merges */
	int32_t *merge_id;    /* [merge_cap] id of the merged token */
	size_t merge_cap;     /* power of two */
	size_t n_merges;      /* entries in model.merges */
	bool ignore_merges;   /* model.ignore_merges: a piece that is a vocab token is kept whole */

	struct tok_added *added; /* [n_added] sorted by first byte, then longest first */
	size_t n_added;
	uint32_t added_first[257]; /* added[added_first[b] .. added_first[b+1]) start with byte b */

	struct tok_norm norm[TOK_MAX_NORM]; /* normalizer steps in order */
	int n_norm;
	struct tok_stage stage[TOK_MAX_STAGES]; /* pre-tokenizer Split stages in order */
	int n_stages;
	pcre2_match_context *mctx; /* holds the JIT stack */
	pcre2_jit_stack *jstack;

	bool add_bos, add_eos;	/* tokenizer_config add_bos_token / add_eos_token */
	int32_t bos_id, eos_id; /* -1 when unset */

	/* scratch (not thread-safe) */
	int32_t *sym;		      /* [cap_sym] BPE symbols */
	uint32_t *sym_rank;	      /* [cap_sym] rank of the pair (i, i+1) */
	int32_t *sym_new;	      /* [cap_sym] merged id of the pair (i, i+1) */
	int32_t *sym_next, *sym_prev; /* [cap_sym] linked list for long pieces */
	uint64_t *heap; /* [cap_sym] (rank << 32 | position) min-heap for long pieces */
	size_t cap_sym;
	uint8_t *norm_buf; /* normalizer output */
	size_t cap_norm;
	struct tok_cache_slot *cache; /* [TOK_CACHE_SLOTS] word cache */
	uint8_t *cache_arena;	      /* [TOK_CACHE_ARENA] */
	size_t cache_used;	      /* bytes used in cache_arena */
};

/* Output vector of ids. */
struct tok_vec {
	int32_t *v;
	size_t n, cap;
};

/* The message into err (errmsg_fail's: one line; the caller returns its own code). */
#define tok_err(err, errlen, ...) ((void)errmsg_fail((err), (errlen), 0, __VA_ARGS__))

static int vec_push(struct tok_vec *o, int32_t id)
{
	if (o->n == o->cap) {
		size_t nc = o->cap ? o->cap * 2 : 64;
		int32_t *nv = realloc(o->v, nc * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		o->v = nv;
		o->cap = nc;
	}
	o->v[o->n++] = id;
	return 0;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	h ^= h >> 29;
	return h ? h : 1;
}

static uint64_t hash_u64(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ull;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dull;
	x ^= x >> 33;
	return x;
}

/* ---- ByteLevel: GPT-2 bytes_to_unicode ---------------------------------------------------- */

/*
 * The code point that byte b is written as in a byte-level vocab: printable Latin-1 bytes stand
 * for themselves, the other 68 (0..32, 127..160, 173) become U+0100.. in byte order.
 */
static uint32_t bl_byte_cp(uint8_t b)
{
	if (b <= 32)
		return 256u + b;
	if (b >= 127 && b <= 160)
		return 256u + 33 + (b - 127u);
	if (b == 173)
		return 256u + 67;
	return b;
}

/* The byte that code point c stands for, or -1. */
static int bl_cp_byte(uint32_t c)
{
	if ((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))
		return (int)c;
	if (c >= 256 && c < 256 + 33)
		return (int)(c - 256);
	if (c >= 256 + 33 && c < 256 + 67)
		return (int)(c - 256 - 33 + 127);
	if (c == 256 + 67)
		return 173;
	return -1;
}

static size_t utf8_put(uint32_t c, char *o)
{
	if (c < 0x80) {
		o[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (char)(0xC0 | (c >> 6));
		o[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (char)(0xE0 | (c >> 12));
		o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		o[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (c >> 18));
	o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
	o[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/* ---- UTF-8 scanning (maximal subparts, Unicode 3.9 / Rust from_utf8_lossy) ------------------ */

enum { U8_OK, U8_BAD, U8_SHORT };

/*
 * Classifies the sequence at p[0..n), n >= 1: U8_OK a whole valid character (returns its length);
 * U8_BAD an invalid maximal subpart to replace by one U+FFFD (returns its length, >= 1);
 * U8_SHORT a valid prefix cut off by the end of the buffer (returns n).
 */
static size_t utf8_scan(const uint8_t *p, size_t n, int *kind)
{
	uint8_t c = p[0];
	if (c < 0x80) {
		*kind = U8_OK;
		return 1;
	}
	size_t need;
	uint8_t lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0;
		if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;
	} else {
		*kind = U8_BAD;
		return 1;
	}
	for (size_t i = 1; i <= need; i++) {
		if (i >= n) {
			*kind = U8_SHORT;
			return n;
		}
		uint8_t b = p[i];
		bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
		if (!ok) {
			*kind = U8_BAD;
			return i;
		}
	}
	*kind = U8_OK;
	return need + 1;
}

/* Decodes the valid character at p (length n from utf8_scan == U8_OK). */
static uint32_t utf8_cp(const uint8_t *p, size_t n)
{
	if (n == 1)
		return p[0];
	if (n == 2)
		return ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
	if (n == 3)
		return ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) |
		       (p[2] & 0x3F);
	return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
	       ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

/* Length of the valid UTF-8 prefix of p[0..n). */
static size_t utf8_valid_prefix(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		int k;
		size_t l = utf8_scan(p + i, n - i, &k);
		if (k != U8_OK)
			break;
		i += l;
	}
	return i;
}

/* ---- lookups ------------------------------------------------------------------------------- */

static const char *tok_str(const struct tokenizer *t, int32_t id)
{
	return t->str_pool + t->str_off[id];
}

static int32_t str_lookup(const struct tokenizer *t, const char *s, size_t n)
{
	if (!t->str_cap)
		return -1;
	size_t m = t->str_cap - 1;
	for (size_t i = hash_bytes(s, n) & m;; i = (i + 1) & m) {
		int32_t id = t->str_slots[i];
		if (id < 0)
			return -1;
		const char *k = tok_str(t, id);
		if (!strncmp(k, s, n) && k[n] == 0)
			return id;
	}
}

static int str_insert(struct tokenizer *t, int32_t id)
{
	const char *s = tok_str(t, id);
	size_t m = t->str_cap - 1;
	for (size_t i = hash_bytes(s, strlen(s)) & m;; i = (i + 1) & m) {
		if (t->str_slots[i] < 0) {
			t->str_slots[i] = id;
			return 0;
		}
		if (!strcmp(tok_str(t, t->str_slots[i]), s))
			return 0; /* first id wins */
	}
}

static inline bool merge_lookup(const struct tokenizer *t, int32_t a, int32_t b, uint32_t *rank,
				int32_t *id)
{
	uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
	size_t m = t->merge_cap - 1;
	for (size_t i = hash_u64(key) & m;; i = (i + 1) & m) {
		uint64_t k = t->merge_keys[i];
		if (k == key) {
			*rank = t->merge_rank[i];
			*id = t->merge_id[i];
			return true;
		}
		if (k == UINT64_MAX)
			return false;
	}
}

/* ---- BPE ----------------------------------------------------------------------------------- */

static int sym_reserve(struct tokenizer *t, size_t n)
{
	if (n <= t->cap_sym)
		return 0;
	size_t c = t->cap_sym ? t->cap_sym : 256;
	while (c < n)
		c *= 2;
	int32_t *a = realloc(t->sym, c * sizeof *a);
	if (a)
		t->sym = a;
	uint32_t *b = realloc(t->sym_rank, c * sizeof *b);
	if (b)
		t->sym_rank = b;
	int32_t *d = realloc(t->sym_new, c * sizeof *d);
	if (d)
		t->sym_new = d;
	int32_t *e = realloc(t->sym_next, c * sizeof *e);
	if (e)
		t->sym_next = e;
	int32_t *f = realloc(t->sym_prev, c * sizeof *f);
	if (f)
		t->sym_prev = f;
	uint64_t *g = realloc(t->heap, c * 3 * sizeof *g);
	if (g)
		t->heap = g;
	if (!a || !b || !d || !e || !f || !g)
		return -ENOMEM;
	t->cap_sym = c;
	return 0;
}

static void pair_eval(const struct tokenizer *t, size_t i)
{
	uint32_t r;
	int32_t id;
	if (merge_lookup(t, t->sym[i], t->sym[i + 1], &r, &id)) {
		t->sym_rank[i] = r;
		t->sym_new[i] = id;
	} else {
		t->sym_rank[i] = UINT32_MAX;
	}
}

/* Merges sym[0..n) in place with the array loop; returns the symbol count left. */
static size_t bpe_small(struct tokenizer *t, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		pair_eval(t, i);
	while (n > 1) {
		uint32_t best = UINT32_MAX;
		size_t bi = 0;
		for (size_t i = 0; i + 1 < n; i++)
			if (t->sym_rank[i] < best) {
				best = t->sym_rank[i];
				bi = i;
			}
		if (best == UINT32_MAX)
			break;
		t->sym[bi] = t->sym_new[bi];
		size_t tail = n - bi - 2;
		memmove(t->sym + bi + 1, t->sym + bi + 2, tail * sizeof *t->sym);
		memmove(t->sym_rank + bi + 1, t->sym_rank + bi + 2, tail * sizeof *t->sym_rank);
		memmove(t->sym_new + bi + 1, t->sym_new + bi + 2, tail * sizeof *t->sym_new);
		n--;
		if (bi > 0)
			pair_eval(t, bi - 1);
		if (bi + 1 < n)
			pair_eval(t, bi);
	}
	return n;
}

static void heap_push(uint64_t *h, size_t *n, uint64_t v)
{
	size_t i = (*n)++;
	while (i) {
		size_t p = (i - 1) / 2;
		if (h[p] <= v)
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
	uint64_t top = h[0], v = h[--(*n)];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1] < h[c])
			c++;
		if (v <= h[c])
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n)
		h[i] = v;
	return top;
}

/*
 * Merges sym[0..n) with a min-heap of (rank, position) over a linked list: O(n log n) for long
 * pieces, same order as bpe_small (lowest rank, then leftmost). Compacts sym; returns the count.
 */
static size_t bpe_large(struct tokenizer *t, size_t n)
{
	size_t hn = 0;
	for (size_t i = 0; i < n; i++) {
		t->sym_next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
		t->sym_prev[i] = (int32_t)i - 1;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		uint32_t r;
		int32_t id;
		if (merge_lookup(t, t->sym[i], t->sym[i + 1], &r, &id))
			heap_push(t->heap, &hn, ((uint64_t)r << 32) | i);
	}
	while (hn) {
		uint64_t e = heap_pop(t->heap, &hn);
		uint32_t r = (uint32_t)(e >> 32), i = (uint32_t)e;
		if (t->sym[i] < 0)
			continue;
		int32_t j = t->sym_next[i];
		if (j < 0)
			continue;
		uint32_t r2;
		int32_t id;
		if (!merge_lookup(t, t->sym[i], t->sym[j], &r2, &id) || r2 != r)
			continue; /* stale entry */
		t->sym[i] = id;
		t->sym[j] = -1;
		int32_t k = t->sym_next[j];
		t->sym_next[i] = k;
		if (k >= 0)
			t->sym_prev[k] = (int32_t)i;
		int32_t p = t->sym_prev[i];
		if (p >= 0 && merge_lookup(t, t->sym[p], t->sym[i], &r2, &id))
			heap_push(t->heap, &hn, ((uint64_t)r2 << 32) | (uint32_t)p);
		if (k >= 0 && merge_lookup(t, t->sym[i], t->sym[k], &r2, &id))
			heap_push(t->heap, &hn, ((uint64_t)r2 << 32) | i);
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (t->sym[i] >= 0)
			t->sym[m++] = t->sym[i];
	return m;
}

static void cache_clear(struct tokenizer *t)
{
	memset(t->cache, 0, TOK_CACHE_SLOTS * sizeof *t->cache);
	t->cache_used = 0;
}

/* Encodes one pre-tokenized piece (raw bytes) with BPE, appending ids to o. */
static int bpe_piece(struct tokenizer *t, const uint8_t *p, size_t n, struct tok_vec *o)
{
	if (n == 0)
		return 0;
	if (n == 1)
		return vec_push(o, t->byte_id[p[0]]);
	uint64_t h = 0;
	struct tok_cache_slot *slot = NULL;
	if (n <= TOK_CACHE_MAXB && t->cache) {
		h = hash_bytes(p, n);
		for (uint32_t k = 0; k < 8; k++) {
			struct tok_cache_slot *s = &t->cache[(h + k) & (TOK_CACHE_SLOTS - 1)];
			if (!s->h) {
				slot = s;
				break;
			}
			if (s->h == h && s->nb == n && !memcmp(t->cache_arena + s->off, p, n)) {
				const int32_t *ids =
				    (const int32_t *)(t->cache_arena + s->off + ((n + 3) & ~3u));
				for (uint32_t q = 0; q < s->ni; q++)
					if (vec_push(o, ids[q]))
						return -ENOMEM;
				return 0;
			}
		}
	}
	if (t->ignore_merges) {
		char buf[4 * TOK_CACHE_MAXB + 1];
		if (n <= TOK_CACHE_MAXB) {
			size_t m = 0;
			for (size_t i = 0; i < n; i++)
				m += utf8_put(bl_byte_cp(p[i]), buf + m);
			int32_t id = str_lookup(t, buf, m);
			if (id >= 0 && !(t->flags[id] & TOK_F_ADDED))
				return vec_push(o, id);
		}
	}
	int rc = sym_reserve(t, n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		t->sym[i] = t->byte_id[p[i]];
	size_t m = n <= TOK_SMALL_BPE ? bpe_small(t, n) : bpe_large(t, n);
	for (size_t i = 0; i < m; i++)
		if (vec_push(o, t->sym[i]))
			return -ENOMEM;
	if (n <= TOK_CACHE_MAXB && t->cache) {
		size_t need = ((n + 3) & ~3u) + m * 4;
		if (!slot || t->cache_used + need > TOK_CACHE_ARENA) {
			cache_clear(t);
			slot = &t->cache[h & (TOK_CACHE_SLOTS - 1)];
		}
		slot->h = h;
		slot->off = (uint32_t)t->cache_used;
		slot->nb = (uint8_t)n;
		slot->ni = (uint8_t)m;
		memcpy(t->cache_arena + t->cache_used, p, n);
		memcpy(t->cache_arena + t->cache_used + ((n + 3) & ~3u), t->sym, m * 4);
		t->cache_used += need;
	}
	return 0;
}

/* ---- pre-tokenizer ------------------------------------------------------------------------- */

static int pre_stage(struct tokenizer *t, int st, const uint8_t *p, size_t n, struct tok_vec *o);

static int span_push(struct tok_stage *s, size_t *ns, size_t a, size_t b, bool match)
{
	if (*ns == s->cap_spans) {
		size_t nc = s->cap_spans ? s->cap_spans * 2 : 64;
		struct tok_span *v = realloc(s->spans, nc * sizeof *v);
		if (!v)
			return -ENOMEM;
		s->spans = v;
		s->cap_spans = nc;
	}
	s->spans[(*ns)++] = (struct tok_span){a, b, match};
	return 0;
}

/*
 * Applies Split stage st to piece p[0..n) and passes each resulting piece to stage st + 1 (or to
 * BPE after the last stage). Spans alternate gap/match as the tokenizers library's
 * Pattern::find_matches gives them; behaviors follow NormalizedString::split; empty pieces drop.
 */
static int pre_stage(struct tokenizer *t, int st, const uint8_t *p, size_t n, struct tok_vec *o)
{
	if (n == 0)
		return 0;
	if (st == t->n_stages)
		return bpe_piece(t, p, n, o);
	struct tok_stage *s = &t->stage[st];
	bool direct = s->behavior == TOK_SPLIT_ISOLATED || s->behavior == TOK_SPLIT_REMOVED;
	size_t ns = 0, prev = 0, pos = 0;
	int rc;
	for (;;) {
		int m = s->jit
			    ? pcre2_jit_match(s->re, p, n, pos, PCRE2_NO_UTF_CHECK, s->md, t->mctx)
			    : pcre2_match(s->re, p, n, pos, PCRE2_NO_UTF_CHECK, s->md, t->mctx);
		if (m == PCRE2_ERROR_NOMATCH)
			break;
		if (m < 0)
			return -EOVERFLOW;
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
		size_t ms = ov[0], me = ov[1];
		if (ms < prev || me < ms || me > n)
			return -EOVERFLOW; /* \K tricks; not produced by the patterns we accept */
		bool spans[2] = {s->invert, !s->invert}; /* gap, match after invert */
		if (direct) {
			if (ms > prev && (s->behavior == TOK_SPLIT_ISOLATED || !spans[0]))
				if ((rc = pre_stage(t, st + 1, p + prev, ms - prev, o)))
					return rc;
			if (me > ms && (s->behavior == TOK_SPLIT_ISOLATED || !spans[1]))
				if ((rc = pre_stage(t, st + 1, p + ms, me - ms, o)))
					return rc;
		} else {
			if (ms > prev && (rc = span_push(s, &ns, prev, ms, spans[0])))
				return rc;
			if ((rc = span_push(s, &ns, ms, me, spans[1])))
				return rc;
		}
		prev = me;
		if (me == ms) {
			if (me >= n)
				break;
			int k;
			pos = me + utf8_scan(p + me, n - me, &k);
		} else {
			pos = me;
		}
		if (pos > n)
			break;
	}
	if (direct) {
		/* Removed keeps non-matches: with invert the trailing gap is a match and goes */
		if (prev < n && (s->behavior == TOK_SPLIT_ISOLATED || !s->invert))
			return pre_stage(t, st + 1, p + prev, n - prev, o);
		return 0;
	}
	if (prev < n && (rc = span_push(s, &ns, prev, n, s->invert)))
		return rc;
	/* Merge spans in place into pieces [a, b) (tokenizers: split() with the behavior). */
	size_t np = 0;
	bool prev_match = false;
	if (s->behavior == TOK_SPLIT_MERGED_NEXT) {
		/* walk backwards: a match joins the piece after it unless that one was a match */
		size_t w = ns;
		for (size_t i = ns; i-- > 0;) {
			struct tok_span sp = s->spans[i];
			if (sp.match && !prev_match && w < ns)
				s->spans[w].a = sp.a;
			else
				s->spans[--w] = sp;
			prev_match = sp.match;
		}
		for (size_t i = w; i < ns; i++)
			s->spans[np++] = s->spans[i];
	} else {
		for (size_t i = 0; i < ns; i++) {
			struct tok_span sp = s->spans[i];
			bool join = s->behavior == TOK_SPLIT_MERGED_PREV ? (sp.match && !prev_match)
									 : (sp.match == prev_match);
			if (join && np)
				s->spans[np - 1].b = sp.b;
			else
				s->spans[np++] = sp;
			prev_match = sp.match;
		}
	}
	/* The deeper stages use their own span arrays, so ours stays valid while we recurse. */
	for (size_t i = 0; i < np; i++) {
		struct tok_span sp = s->spans[i];
		if ((rc = pre_stage(t, st + 1, p + sp.a, sp.b - sp.a, o)))
			return rc;
	}
	return 0;
}

/* Normalizes and pre-tokenizes one stretch of text between added tokens. */
static int encode_text(struct tokenizer *t, const uint8_t *p, size_t n, struct tok_vec *o)
{
	if (n == 0)
		return 0;
	if (t->n_norm) {
		/* Each step rewrites p into norm_buf (worst case grows by a factor per step). */
		for (int k = 0; k < t->n_norm; k++) {
			struct tok_norm *nm = &t->norm[k];
			size_t worst = nm->from ? n / (nm->n_from ? nm->n_from : 1) * nm->n_to + n
						: n + nm->n_to;
			uint8_t *buf = malloc(worst + 1);
			if (!buf)
				return -ENOMEM;
			size_t w = 0;
			if (!nm->from) {
				memcpy(buf, nm->to, nm->n_to);
				memcpy(buf + nm->n_to, p, n);
				w = n + nm->n_to;
			} else {
				for (size_t i = 0; i < n;) {
					if (i + nm->n_from <= n &&
					    !memcmp(p + i, nm->from, nm->n_from)) {
						memcpy(buf + w, nm->to, nm->n_to);
						w += nm->n_to;
						i += nm->n_from;
					} else {
						buf[w++] = p[i++];
					}
				}
			}
			free(t->norm_buf);
			t->norm_buf = buf;
			t->cap_norm = worst + 1;
			p = buf;
			n = w;
		}
	}
	/* Valid UTF-8 runs go through the regexes; each invalid byte is a piece of its own. */
	size_t i = 0;
	while (i < n) {
		size_t v = utf8_valid_prefix(p + i, n - i);
		if (v) {
			int rc = pre_stage(t, 0, p + i, v, o);
			if (rc)
				return rc;
			i += v;
		} else {
			if (vec_push(o, t->byte_id[p[i]]))
				return -ENOMEM;
			i++;
		}
	}
	return 0;
}

static bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_word_byte(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       c == '_' || c >= 0x80;
}

/*
 * Finds the leftmost-longest added token in p[from..n). Returns its index in t->added and sets
 * [*a, *b) to the span it takes (with lstrip/rstrip whitespace), or returns -1.
 */
static long added_find(const struct tokenizer *t, const uint8_t *p, size_t from, size_t n,
		       unsigned flags, size_t *a, size_t *b)
{
	for (size_t i = from; i < n; i++) {
		uint8_t c = p[i];
		for (uint32_t k = t->added_first[c]; k < t->added_first[c + 1]; k++) {
			const struct tok_added *ad = &t->added[k];
			if (ad->len > n - i || memcmp(p + i, ad->s, ad->len))
				continue;
			if (ad->special && (flags & TOKENIZER_ENC_SPLIT_SPECIAL))
				continue;
			size_t s0 = i, e0 = i + ad->len;
			if (ad->single_word && ((s0 > 0 && is_word_byte(p[s0 - 1])) ||
						(e0 < n && is_word_byte(p[e0]))))
				continue;
			if (ad->lstrip)
				while (s0 > from && is_ws(p[s0 - 1]))
					s0--;
			if (ad->rstrip)
				while (e0 < n && is_ws(p[e0]))
					e0++;
			*a = s0;
			*b = e0;
			return (long)k;
		}
	}
	return -1;
}

int tokenizer_encode(struct tokenizer *tok, const char *text, size_t len, unsigned flags,
		     int32_t **ids, size_t *n_ids)
{
	struct tok_vec o = {0};
	int rc = 0;
	const uint8_t *p = (const uint8_t *)text;
	*ids = NULL;
	*n_ids = 0;
	o.cap = len / 3 + 16;
	o.v = malloc(o.cap * sizeof *o.v);
	if (!o.v)
		return -ENOMEM;
	if ((flags & TOKENIZER_ENC_ADD_SPECIAL) && tok->add_bos && tok->bos_id >= 0)
		rc = vec_push(&o, tok->bos_id);
	size_t i = 0;
	while (!rc && i < len) {
		size_t a = len, b = len;
		long k = tok->n_added && !(flags & TOKENIZER_ENC_NO_ADDED)
			     ? added_find(tok, p, i, len, flags, &a, &b)
			     : -1;
		rc = encode_text(tok, p + i, (k < 0 ? len : a) - i, &o);
		if (rc || k < 0)
			break;
		rc = vec_push(&o, tok->added[k].id);
		i = b;
	}
	if (!rc && (flags & TOKENIZER_ENC_ADD_SPECIAL) && tok->add_eos && tok->eos_id >= 0)
		rc = vec_push(&o, tok->eos_id);
	if (rc) {
		free(o.v);
		return rc;
	}
	*ids = o.v;
	*n_ids = o.n;
	return 0;
}

/* ---- decoding ------------------------------------------------------------------------------ */

int32_t tokenizer_n_vocab(const struct tokenizer *tok)
{
	return tok->n_ids;
}
int32_t tokenizer_bos_id(const struct tokenizer *tok)
{
	return tok->bos_id;
}
int32_t tokenizer_eos_id(const struct tokenizer *tok)
{
	return tok->eos_id;
}

const char *tokenizer_bos_str(const struct tokenizer *tok)
{
	return tok->bos_id >= 0 ? tok_str(tok, tok->bos_id) : "";
}

const uint8_t *tokenizer_token_bytes(const struct tokenizer *tok, int32_t id, size_t *len)
{
	if (id < 0 || id >= tok->n_ids || !(tok->flags[id] & TOK_F_PRESENT)) {
		*len = 0;
		return NULL;
	}
	*len = tok->byte_off[id + 1] - tok->byte_off[id];
	return tok->byte_pool + tok->byte_off[id];
}

const char *tokenizer_token_str(const struct tokenizer *tok, int32_t id)
{
	if (id < 0 || id >= tok->n_ids || !(tok->flags[id] & TOK_F_PRESENT))
		return NULL;
	return tok_str(tok, id);
}

int tokenizer_token_is_special(const struct tokenizer *tok, int32_t id)
{
	return id >= 0 && id < tok->n_ids && (tok->flags[id] & TOK_F_SPECIAL);
}

int tokenizer_token_is_control(const struct tokenizer *tok, int32_t id)
{
	if (tokenizer_token_is_special(tok, id))
		return 1;
	if (id < 0 || id >= tok->n_ids || !(tok->flags[id] & TOK_F_ADDED))
		return 0;
	const char *s = tok_str(tok, id);
	size_t n = s ? strlen(s) : 0;
	static const char open[] = "<\xef\xbd\x9c", close[] = "\xef\xbd\x9c>"; /* <｜ ｜> */
	return n >= 8 && !memcmp(s, open, 4) && !memcmp(s + n - 4, close, 4);
}

int32_t tokenizer_token_id(const struct tokenizer *tok, const char *s)
{
	return str_lookup(tok, s, strlen(s));
}

/*
 * Appends the lossy UTF-8 form of p[0..n) to out (room for 3 * n bytes); with hold, a trailing
 * incomplete character is not emitted and its length is returned in *held.
 */
static size_t lossy_append(const uint8_t *p, size_t n, char *out, bool hold, size_t *held)
{
	size_t w = 0, i = 0;
	*held = 0;
	while (i < n) {
		if (p[i] < 0x80) {
			out[w++] = (char)p[i++];
			continue;
		}
		int k;
		size_t l = utf8_scan(p + i, n - i, &k);
		if (k == U8_SHORT && hold) {
			*held = l;
			break;
		}
		if (k == U8_OK) {
			memcpy(out + w, p + i, l);
			w += l;
		} else {
			memcpy(out + w, "\xEF\xBF\xBD", 3);
			w += 3;
		}
		i += l;
	}
	return w;
}

int tokenizer_decode(const struct tokenizer *tok, const int32_t *ids, size_t n, unsigned flags,
		     char **out, size_t *out_len)
{
	size_t raw_n = 0;
	*out = NULL;
	*out_len = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l;
		if (tokenizer_token_bytes(tok, ids[i], &l) &&
		    !((flags & TOKENIZER_DEC_SKIP_SPECIAL) &&
		      tokenizer_token_is_control(tok, ids[i])))
			raw_n += l;
	}
	uint8_t *raw = malloc(raw_n + 1);
	char *s = malloc(3 * raw_n + 1);
	if (!raw || !s) {
		free(raw);
		free(s);
		return -ENOMEM;
	}
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l;
		const uint8_t *b = tokenizer_token_bytes(tok, ids[i], &l);
		if (b && !((flags & TOKENIZER_DEC_SKIP_SPECIAL) &&
			   tokenizer_token_is_control(tok, ids[i]))) {
			memcpy(raw + w, b, l);
			w += l;
		}
	}
	size_t held;
	size_t sl = lossy_append(raw, w, s, false, &held);
	s[sl] = 0;
	free(raw);
	*out = s;
	*out_len = sl;
	return 0;
}

void tokenizer_stream_init(struct tokenizer_stream *s, const struct tokenizer *tok, unsigned flags)
{
	memset(s, 0, sizeof *s);
	s->tok = tok;
	s->flags = flags;
}

size_t tokenizer_stream_cap(const struct tokenizer *tok)
{
	return 3 * (tok->max_tok_bytes + 4) + 1;
}

int tokenizer_stream_push(struct tokenizer_stream *s, int32_t id, char *out, size_t cap,
			  size_t *out_len)
{
	*out_len = 0;
	if (cap < tokenizer_stream_cap(s->tok))
		return -ENOSPC;
	out[0] = 0;
	size_t n;
	const uint8_t *b = tokenizer_token_bytes(s->tok, id, &n);
	if (!b ||
	    ((s->flags & TOKENIZER_DEC_SKIP_SPECIAL) && tokenizer_token_is_control(s->tok, id)))
		return 0;
	size_t w = 0, used = 0;
	if (s->n_pend) {
		/* Finish (or reject) the held-back character with the first bytes of this token. */
		uint8_t tmp[8];
		size_t k = n < 4 ? n : 4;
		memcpy(tmp, s->pend, s->n_pend);
		memcpy(tmp + s->n_pend, b, k);
		int kind;
		size_t l = utf8_scan(tmp, s->n_pend + k, &kind);
		if (kind == U8_SHORT) {
			memcpy(s->pend, tmp, s->n_pend + k);
			s->n_pend = (uint8_t)(s->n_pend + k);
			return 0;
		}
		if (kind == U8_OK) {
			memcpy(out, tmp, l);
			w = l;
			used = l - s->n_pend;
		} else {
			memcpy(out, "\xEF\xBF\xBD", 3);
			w = 3;
			used = l - s->n_pend; /* the bad byte is at or past the held ones */
		}
		s->n_pend = 0;
	}
	size_t held;
	w += lossy_append(b + used, n - used, out + w, true, &held);
	memcpy(s->pend, b + n - held, held);
	s->n_pend = (uint8_t)held;
	out[w] = 0;
	*out_len = w;
	return 0;
}

int tokenizer_stream_flush(struct tokenizer_stream *s, char *out, size_t cap, size_t *out_len)
{
	*out_len = 0;
	if (cap < 4)
		return -ENOSPC;
	size_t w = 0;
	if (s->n_pend) {
		memcpy(out, "\xEF\xBF\xBD", 3);
		w = 3;
	}
	s->n_pend = 0;
	out[w] = 0;
	*out_len = w;
	return 0;
}

/* ---- loading ------------------------------------------------------------------------------- */

void tokenizer_free(struct tokenizer *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->n_stages; i++) {
		pcre2_match_data_free(t->stage[i].md);
		pcre2_code_free(t->stage[i].re);
		free(t->stage[i].spans);
	}
	for (int i = 0; i < t->n_norm; i++) {
		free(t->norm[i].from);
		free(t->norm[i].to);
	}
	pcre2_match_context_free(t->mctx);
	pcre2_jit_stack_free(t->jstack);
	free(t->byte_off);
	free(t->byte_pool);
	free(t->str_off);
	free(t->str_pool);
	free(t->flags);
	free(t->str_slots);
	free(t->merge_keys);
	free(t->merge_rank);
	free(t->merge_id);
	free(t->added);
	free(t->sym);
	free(t->sym_rank);
	free(t->sym_new);
	free(t->sym_next);
	free(t->sym_prev);
	free(t->heap);
	free(t->norm_buf);
	free(t->cache);
	free(t->cache_arena);
	free(t);
}

/* Loader context: file names for messages. */
struct tok_ld {
	const char *file; /* tokenizer.json path as given */
	char *err;
	size_t errlen;
};

static int add_stage(struct tokenizer *t, struct tok_ld *ld, const char *field, json_t *sp)
{
	if (t->n_stages == TOK_MAX_STAGES) {
		tok_err(ld->err, ld->errlen, "%s: %s: more than %d Split stages", ld->file, field,
			TOK_MAX_STAGES);
		return -ENOTSUP;
	}
	json_t *pat = json_object_get(sp, "pattern");
	const char *rx = json_string_value(json_object_get(pat, "Regex"));
	const char *lit = json_string_value(json_object_get(pat, "String"));
	if (!rx && !lit) {
		tok_err(ld->err, ld->errlen, "%s: %s.pattern: needs a Regex or String", ld->file,
			field);
		return -EINVAL;
	}
	const char *beh = json_string_value(json_object_get(sp, "behavior"));
	static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
				      "Contiguous"};
	int b = -1;
	for (int i = 0; i < 5 && beh; i++)
		if (!strcmp(beh, names[i]))
			b = i;
	if (b < 0) {
		tok_err(ld->err, ld->errlen, "%s: %s.behavior: '%s' is not a Split behavior",
			ld->file, field, beh ? beh : "(missing)");
		return -EINVAL;
	}
	struct tok_stage *s = &t->stage[t->n_stages];
	int ec;
	PCRE2_SIZE eo;
	const char *src = rx ? rx : lit;
	s->re =
	    pcre2_compile((PCRE2_SPTR)src, strlen(src),
			  rx ? PCRE2_UTF | PCRE2_UCP : PCRE2_UTF | PCRE2_LITERAL, &ec, &eo, NULL);
	if (!s->re) {
		PCRE2_UCHAR msg[128];
		pcre2_get_error_message(ec, msg, sizeof msg);
		tok_err(ld->err, ld->errlen, "%s: %s.pattern: regex does not compile at %zu: %s",
			ld->file, field, (size_t)eo, (char *)msg);
		return -EINVAL;
	}
	s->md = pcre2_match_data_create_from_pattern(s->re, NULL);
	if (!s->md) {
		pcre2_code_free(s->re);
		s->re = NULL;
		return -ENOMEM;
	}
	s->jit = pcre2_jit_compile(s->re, PCRE2_JIT_COMPLETE) == 0;
	s->behavior = b;
	s->invert = json_is_true(json_object_get(sp, "invert"));
	t->n_stages++;
	return 0;
}

static int load_pre(struct tokenizer *t, struct tok_ld *ld, json_t *pt, const char *field,
		    bool *byte_level)
{
	if (!pt || json_is_null(pt))
		return 0;
	const char *type = json_string_value(json_object_get(pt, "type"));
	char sub[96];
	if (type && !strcmp(type, "Sequence")) {
		json_t *arr = json_object_get(pt, "pretokenizers");
		if (!json_is_array(arr)) {
			tok_err(ld->err, ld->errlen, "%s: %s.pretokenizers: not an array", ld->file,
				field);
			return -EINVAL;
		}
		size_t i;
		json_t *v;
		json_array_foreach(arr, i, v)
		{
			snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", field, i);
			int rc = load_pre(t, ld, v, sub, byte_level);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (type && !strcmp(type, "Split"))
		return add_stage(t, ld, field, pt);
	if (type && !strcmp(type, "ByteLevel")) {
		if (json_is_true(json_object_get(pt, "add_prefix_space"))) {
			tok_err(ld->err, ld->errlen,
				"%s: %s.add_prefix_space: true is not supported", ld->file, field);
			return -ENOTSUP;
		}
		*byte_level = true;
		json_t *ur = json_object_get(pt, "use_regex");
		if (!ur || json_is_true(ur)) {
			/* the GPT-2 pattern ByteLevel splits with when use_regex is true */
			json_t *sp = json_pack(
			    "{s:{s:s},s:s}", "pattern", "Regex",
			    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
			    "\\s+(?!\\S)|\\s+",
			    "behavior", "Isolated");
			if (!sp)
				return -ENOMEM;
			int rc = add_stage(t, ld, field, sp);
			json_decref(sp);
			return rc;
		}
		return 0;
	}
	tok_err(ld->err, ld->errlen, "%s: %s.type: '%s' is not supported", ld->file, field,
		type ? type : "(missing)");
	return -ENOTSUP;
}

static int load_norm(struct tokenizer *t, struct tok_ld *ld, json_t *nj, const char *field)
{
	if (!nj || json_is_null(nj))
		return 0;
	const char *type = json_string_value(json_object_get(nj, "type"));
	char sub[96];
	if (type && !strcmp(type, "Sequence")) {
		json_t *arr = json_object_get(nj, "normalizers");
		size_t i;
		json_t *v;
		json_array_foreach(arr, i, v)
		{
			snprintf(sub, sizeof sub, "%s.normalizers[%zu]", field, i);
			int rc = load_norm(t, ld, v, sub);
			if (rc)
				return rc;
		}
		return 0;
	}
	bool rep = type && !strcmp(type, "Replace"), pre = type && !strcmp(type, "Prepend");
	if (!rep && !pre) {
		tok_err(ld->err, ld->errlen, "%s: %s.type: '%s' is not supported", ld->file, field,
			type ? type : "(missing)");
		return -ENOTSUP;
	}
	if (t->n_norm == TOK_MAX_NORM) {
		tok_err(ld->err, ld->errlen, "%s: %s: too many normalizer steps", ld->file, field);
		return -ENOTSUP;
	}
	const char *from =
	    rep ? json_string_value(json_object_get(json_object_get(nj, "pattern"), "String"))
		: NULL;
	const char *to = json_string_value(json_object_get(nj, rep ? "content" : "prepend"));
	if ((rep && (!from || !*from)) || !to) {
		tok_err(ld->err, ld->errlen, "%s: %s: needs %s", ld->file, field,
			rep ? "pattern.String (non-empty) and content" : "prepend");
		return rep && from == NULL ? -ENOTSUP : -EINVAL;
	}
	struct tok_norm *nm = &t->norm[t->n_norm];
	nm->from = from ? strdup(from) : NULL;
	nm->n_from = from ? strlen(from) : 0;
	nm->to = strdup(to);
	nm->n_to = strlen(to);
	if ((from && !nm->from) || !nm->to)
		return -ENOMEM;
	t->n_norm++;
	return 0;
}

static int cmp_added(const void *x, const void *y)
{
	const struct tok_added *a = x, *b = y;
	uint8_t ca = (uint8_t)a->s[0], cb = (uint8_t)b->s[0];
	if (ca != cb)
		return ca < cb ? -1 : 1;
	if (a->len != b->len)
		return a->len > b->len ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* Token string (vocab key or added content) to its bytes, the ByteLevel decoder's way. */
static size_t bl_decode_str(const char *s, uint8_t *out)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s), w = 0;
	for (size_t i = 0; i < n;) {
		int k;
		size_t l = utf8_scan(p + i, n - i, &k);
		int b = k == U8_OK ? bl_cp_byte(utf8_cp(p + i, l)) : -1;
		if (b < 0) {
			memcpy(
			    out, s,
			    n); /* a char outside the map: the raw bytes (tokenizers does this) */
			return n;
		}
		out[w++] = (uint8_t)b;
		i += l;
	}
	return w;
}

static int read_config(struct tokenizer *t, const char *cfg_path, char *err, size_t errlen)
{
	struct stat st;
	if (stat(cfg_path, &st))
		return 0; /* optional */
	json_error_t je;
	json_t *c = json_load_file(cfg_path, 0, &je);
	if (!c) {
		tok_err(err, errlen, "%s: line %d: %s", cfg_path, je.line, je.text);
		return -EINVAL;
	}
	int rc = 0;
	t->add_bos = json_is_true(json_object_get(c, "add_bos_token"));
	t->add_eos = json_is_true(json_object_get(c, "add_eos_token"));
	static const char *keys[2] = {"bos_token", "eos_token"};
	int32_t *dst[2] = {&t->bos_id, &t->eos_id};
	for (int k = 0; k < 2 && !rc; k++) {
		json_t *v = json_object_get(c, keys[k]);
		const char *s = json_is_string(v)
				    ? json_string_value(v)
				    : json_string_value(json_object_get(v, "content"));
		if (!v || json_is_null(v))
			continue;
		if (!s) {
			tok_err(err, errlen, "%s: %s: not a string or {content}", cfg_path,
				keys[k]);
			rc = -EINVAL;
		} else if ((*dst[k] = str_lookup(t, s, strlen(s))) < 0) {
			tok_err(err, errlen, "%s: %s: '%s' is not a token of the vocabulary",
				cfg_path, keys[k], s);
			rc = -EINVAL;
		}
	}
	if (!rc && t->add_bos && t->bos_id < 0) {
		tok_err(err, errlen, "%s: add_bos_token: true but bos_token is not set", cfg_path);
		rc = -EINVAL;
	}
	if (!rc && t->add_eos && t->eos_id < 0) {
		tok_err(err, errlen, "%s: add_eos_token: true but eos_token is not set", cfg_path);
		rc = -EINVAL;
	}
	json_decref(c);
	return rc;
}

/* Splits path into the tokenizer.json file and the tokenizer_config.json beside it. */
static int resolve_paths(const char *path, char **tj, char **tc)
{
	struct stat st;
	*tj = *tc = NULL;
	if (stat(path, &st))
		return -ENOENT;
	size_t n = strlen(path);
	if (S_ISDIR(st.st_mode)) {
		*tj = malloc(n + 32);
		*tc = malloc(n + 32);
		if (!*tj || !*tc)
			return -ENOMEM;
		snprintf(*tj, n + 32, "%s/tokenizer.json", path);
		snprintf(*tc, n + 32, "%s/tokenizer_config.json", path);
		return stat(*tj, &st) ? -ENOENT : 0;
	}
	*tj = strdup(path);
	*tc = malloc(n + 32);
	if (!*tj || !*tc)
		return -ENOMEM;
	const char *sl = strrchr(path, '/');
	size_t d = sl ? (size_t)(sl - path) + 1 : 0;
	memcpy(*tc, path, d);
	strcpy(*tc + d, "tokenizer_config.json");
	return 0;
}

/* model: a BPE model without the options this tokenizer does not implement (subword prefix or
 * suffix, dropout); reads model.ignore_merges. */
static int load_model_opts(struct tokenizer *t, struct tok_ld *ld, json_t *model)
{
	const char *F = ld->file;
	if (!json_is_object(model)) {
		tok_err(ld->err, ld->errlen, "%s: model: missing or not an object", F);
		return -EINVAL;
	}
	const char *mtype = json_string_value(json_object_get(model, "type"));
	if (mtype && strcmp(mtype, "BPE")) {
		tok_err(ld->err, ld->errlen, "%s: model.type: '%s' is not supported (BPE only)", F,
			mtype);
		return -ENOTSUP;
	}
	static const char *unsup[] = {"continuing_subword_prefix", "end_of_word_suffix"};
	for (int i = 0; i < 2; i++) {
		const char *v = json_string_value(json_object_get(model, unsup[i]));
		if (v && *v) {
			tok_err(ld->err, ld->errlen, "%s: model.%s: not supported", F, unsup[i]);
			return -ENOTSUP;
		}
	}
	json_t *dr = json_object_get(model, "dropout");
	if (dr && !json_is_null(dr) && json_number_value(dr) != 0.0) {
		tok_err(ld->err, ld->errlen, "%s: model.dropout: BPE dropout is not supported", F);
		return -ENOTSUP;
	}
	t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
	return 0;
}

/* model.vocab and added_tokens: checks every id and content, and sizes the tables: *n_ids =
 * largest id + 1, *str_bytes = bytes of all strings with their NULs. */
static int size_ids(struct tok_ld *ld, json_t *vocab, json_t *added, int32_t *n_ids,
		    size_t *str_bytes)
{
	const char *F = ld->file;
	int64_t max_id = -1;
	size_t sb = 0, ai;
	const char *key;
	json_t *v;
	json_object_foreach(vocab, key, v)
	{
		json_int_t id = json_integer_value(v);
		if (!json_is_integer(v) || id < 0 || id >= TOK_MAX_ID) {
			tok_err(ld->err, ld->errlen,
				"%s: model.vocab[\"%s\"]: id must be an integer in [0, %d)", F, key,
				TOK_MAX_ID);
			return -EINVAL;
		}
		if (id > max_id)
			max_id = id;
		sb += strlen(key) + 1;
	}
	json_array_foreach(added, ai, v)
	{
		json_t *jid = json_object_get(v, "id");
		const char *c = json_string_value(json_object_get(v, "content"));
		json_int_t id = json_integer_value(jid);
		if (!json_is_integer(jid) || id < 0 || id >= TOK_MAX_ID || !c || !*c) {
			tok_err(
			    ld->err, ld->errlen,
			    "%s: added_tokens[%zu]: needs an id in [0, %d) and a non-empty content",
			    F, ai, TOK_MAX_ID);
			return -EINVAL;
		}
		if (id > max_id)
			max_id = id;
		sb += strlen(c) + 1;
	}
	if (max_id < 0) {
		tok_err(ld->err, ld->errlen, "%s: model.vocab: empty", F);
		return -EINVAL;
	}
	*n_ids = (int32_t)max_id + 1;
	*str_bytes = sb;
	return 0;
}

/* The per-id tables for n ids, the pools for str_bytes of strings, an empty string hash. */
static int alloc_ids(struct tokenizer *t, int32_t n, size_t str_bytes)
{
	t->n_ids = n;
	t->byte_off = calloc((size_t)n + 1, sizeof *t->byte_off);
	t->str_off = calloc((size_t)n + 1, sizeof *t->str_off);
	t->flags = calloc((size_t)n, 1);
	t->str_pool = malloc(str_bytes + 1);
	t->byte_pool = malloc(str_bytes + 1);
	t->str_cap = 16;
	while (t->str_cap < 2 * (size_t)n)
		t->str_cap *= 2;
	t->str_slots = malloc(t->str_cap * sizeof *t->str_slots);
	if (!t->byte_off || !t->str_off || !t->flags || !t->str_pool || !t->byte_pool ||
	    !t->str_slots)
		return -ENOMEM;
	memset(t->str_slots, 0xff, t->str_cap * sizeof *t->str_slots);
	return 0;
}

/* model.vocab and added_tokens: each id's string, bytes and flags, and the string hash. Added
 * tokens override vocab entries with the same id. The pools are filled in id order so that the
 * offsets are [n + 1] arrays: first each id's string pointer is collected in sp. */
static int load_strings(struct tokenizer *t, struct tok_ld *ld, json_t *vocab, json_t *added)
{
	const char *F = ld->file;
	int32_t n = t->n_ids;
	const char **sp = calloc((size_t)n, sizeof *sp);
	if (!sp)
		return -ENOMEM;
	const char *key;
	json_t *v;
	size_t ai;
	json_object_foreach(vocab, key, v)
	{
		json_int_t id = json_integer_value(v);
		if (sp[id]) {
			tok_err(ld->err, ld->errlen, "%s: model.vocab[\"%s\"]: id %lld used twice",
				F, key, (long long)id);
			free(sp);
			return -EINVAL;
		}
		sp[id] = key;
	}
	json_array_foreach(added, ai, v)
	{
		json_int_t id = json_integer_value(json_object_get(v, "id"));
		const char *c = json_string_value(json_object_get(v, "content"));
		if (sp[id] && (t->flags[id] & TOK_F_ADDED)) {
			tok_err(ld->err, ld->errlen, "%s: added_tokens[%zu]: id %lld used twice", F,
				ai, (long long)id);
			free(sp);
			return -EINVAL;
		}
		sp[id] = c;
		t->flags[id] |= TOK_F_ADDED;
		if (json_is_true(json_object_get(v, "special")))
			t->flags[id] |= TOK_F_SPECIAL;
	}
	size_t so = 0, bo = 0;
	for (int32_t id = 0; id < n; id++) {
		t->str_off[id] = (uint32_t)so;
		t->byte_off[id] = (uint32_t)bo;
		if (!sp[id])
			continue;
		t->flags[id] |= TOK_F_PRESENT;
		size_t l = strlen(sp[id]);
		memcpy(t->str_pool + so, sp[id], l + 1);
		so += l + 1;
		size_t bl = bl_decode_str(sp[id], t->byte_pool + bo);
		bo += bl;
		if (bl > t->max_tok_bytes)
			t->max_tok_bytes = bl;
	}
	t->str_off[n] = (uint32_t)so;
	t->byte_off[n] = (uint32_t)bo;
	free(sp);
	for (int32_t id = 0; id < n; id++)
		if (t->flags[id] & TOK_F_PRESENT)
			str_insert(t, id);
	return 0;
}

/* model.vocab: the single-byte token of every byte (byte-level BPE has all 256). */
static int load_byte_ids(struct tokenizer *t, struct tok_ld *ld, json_t *vocab)
{
	for (int b = 0; b < 256; b++) {
		char s[8];
		size_t l = utf8_put(bl_byte_cp((uint8_t)b), s);
		s[l] = 0;
		json_t *jv = json_object_get(vocab, s);
		if (!jv) {
			tok_err(ld->err, ld->errlen,
				"%s: model.vocab: no token for byte 0x%02x ('%s'); only byte-level "
				"BPE is supported",
				ld->file, b, s);
			return -ENOTSUP;
		}
		t->byte_id[b] = (int32_t)json_integer_value(jv);
	}
	return 0;
}

/* One entry of model.merges, "a b" or [a, b]: its two parts (not NUL-terminated in the string
 * form). 0, or -EINVAL when it is neither form or a part is empty. */
static int merge_parts(json_t *v, const char **a, size_t *la, const char **b, size_t *lb)
{
	*a = *b = NULL;
	*la = *lb = 0;
	if (json_is_string(v)) {
		const char *s = json_string_value(v), *spc = strchr(s, ' ');
		if (spc && !strchr(spc + 1, ' ')) {
			*a = s;
			*la = (size_t)(spc - s);
			*b = spc + 1;
			*lb = strlen(*b);
		}
	} else if (json_is_array(v) && json_array_size(v) == 2) {
		*a = json_string_value(json_array_get(v, 0));
		*b = json_string_value(json_array_get(v, 1));
		*la = *a ? strlen(*a) : 0;
		*lb = *b ? strlen(*b) : 0;
	}
	return *a && *b && *la && *lb ? 0 : -EINVAL;
}

/* Records merge rank of the pair key = (left id << 32 | right id) -> merged id; a pair listed
 * twice keeps its first (lowest) rank. */
static void merge_insert(struct tokenizer *t, uint64_t key, uint32_t rank, int32_t merged)
{
	size_t m = t->merge_cap - 1;
	for (size_t i = hash_u64(key) & m;; i = (i + 1) & m) {
		if (t->merge_keys[i] == key)
			return;
		if (t->merge_keys[i] == UINT64_MAX) {
			t->merge_keys[i] = key;
			t->merge_rank[i] = rank;
			t->merge_id[i] = merged;
			return;
		}
	}
}

/* model.merges: the pair hash (left id, right id) -> (rank, merged id). Both parts and their
 * concatenation must be tokens of model.vocab. */
static int load_merges(struct tokenizer *t, struct tok_ld *ld, json_t *vocab, json_t *merges)
{
	size_t nm = json_array_size(merges);
	t->n_merges = nm;
	t->merge_cap = 16;
	while (t->merge_cap < 2 * nm + 2)
		t->merge_cap *= 2;
	t->merge_keys = malloc(t->merge_cap * sizeof *t->merge_keys);
	t->merge_rank = malloc(t->merge_cap * sizeof *t->merge_rank);
	t->merge_id = malloc(t->merge_cap * sizeof *t->merge_id);
	if (!t->merge_keys || !t->merge_rank || !t->merge_id)
		return -ENOMEM;
	memset(t->merge_keys, 0xff, t->merge_cap * sizeof *t->merge_keys);
	size_t cat_cap = 256, mi;
	char *cat = malloc(cat_cap);
	if (!cat)
		return -ENOMEM;
	json_t *v;
	int rc = 0;
	json_array_foreach(merges, mi, v)
	{
		const char *a, *b;
		size_t la, lb;
		if (merge_parts(v, &a, &la, &b, &lb)) {
			tok_err(ld->err, ld->errlen, "%s: model.merges[%zu]: not \"a b\" or [a, b]",
				ld->file, mi);
			rc = -EINVAL;
			break;
		}
		if (la + lb + 1 > cat_cap) {
			cat_cap = 2 * (la + lb + 1);
			char *nc = realloc(cat, cat_cap);
			if (!nc) {
				rc = -ENOMEM;
				break;
			}
			cat = nc;
		}
		memcpy(cat, a, la);
		cat[la] = 0;
		json_t *ja = json_object_get(vocab, cat);
		memcpy(cat, b, lb);
		cat[lb] = 0;
		json_t *jb = json_object_get(vocab, cat);
		memcpy(cat, a, la);
		memcpy(cat + la, b, lb);
		cat[la + lb] = 0;
		json_t *jab = json_object_get(vocab, cat);
		if (!ja || !jb || !jab) {
			tok_err(ld->err, ld->errlen, "%s: model.merges[%zu]: '%s' %s", ld->file, mi,
				cat,
				!jab ? "(the merged token) is not in model.vocab"
				     : "has a part that is not in model.vocab");
			rc = -EINVAL;
			break;
		}
		merge_insert(
		    t, ((uint64_t)json_integer_value(ja) << 32) | (uint64_t)json_integer_value(jb),
		    (uint32_t)mi, (int32_t)json_integer_value(jab));
	}
	free(cat);
	return rc;
}

/* added_tokens: the table the encoder matches them with, sorted by first byte, then longest
 * first, with the start of each first byte's run in added_first. */
static int load_added(struct tokenizer *t, json_t *added)
{
	size_t ai;
	json_t *v;
	t->n_added = json_array_size(added);
	t->added = calloc(t->n_added + 1, sizeof *t->added);
	if (!t->added)
		return -ENOMEM;
	json_array_foreach(added, ai, v)
	{
		struct tok_added *ad = &t->added[ai];
		ad->id = (int32_t)json_integer_value(json_object_get(v, "id"));
		ad->s = tok_str(t, ad->id);
		ad->len = (uint32_t)strlen(ad->s);
		ad->special = json_is_true(json_object_get(v, "special"));
		ad->lstrip = json_is_true(json_object_get(v, "lstrip"));
		ad->rstrip = json_is_true(json_object_get(v, "rstrip"));
		ad->single_word = json_is_true(json_object_get(v, "single_word"));
	}
	qsort(t->added, t->n_added, sizeof *t->added, cmp_added);
	for (int b = 0, k = 0; b <= 256; b++) {
		while (b < 256 && (size_t)k < t->n_added && (uint8_t)t->added[k].s[0] < b)
			k++;
		t->added_first[b] = (uint32_t)k;
	}
	t->added_first[256] = (uint32_t)t->n_added;
	return 0;
}

/* decoder: absent, null or ByteLevel (what tokenizer_decode implements). */
static int load_decoder(struct tok_ld *ld, json_t *dec)
{
	const char *dtype = json_string_value(json_object_get(dec, "type"));
	if (dec && !json_is_null(dec) && (!dtype || strcmp(dtype, "ByteLevel"))) {
		tok_err(ld->err, ld->errlen,
			"%s: decoder.type: '%s' is not supported (ByteLevel only)", ld->file,
			dtype ? dtype : "(missing)");
		return -ENOTSUP;
	}
	return 0;
}

/* The whole of tokenizer.json, part by part: model (vocab, merges), added_tokens, normalizer,
 * pre_tokenizer, decoder. */
static int load_json(struct tokenizer *t, json_t *root, struct tok_ld *ld)
{
	const char *F = ld->file;
	json_t *model = json_object_get(root, "model");
	int rc = load_model_opts(t, ld, model);
	if (rc)
		return rc;
	json_t *vocab = json_object_get(model, "vocab");
	json_t *merges = json_object_get(model, "merges");
	json_t *added = json_object_get(root, "added_tokens");
	if (!json_is_object(vocab)) {
		tok_err(ld->err, ld->errlen, "%s: model.vocab: missing or not an object", F);
		return -EINVAL;
	}
	if (!json_is_array(merges)) {
		tok_err(ld->err, ld->errlen, "%s: model.merges: missing or not an array", F);
		return -EINVAL;
	}
	if (added && !json_is_null(added) && !json_is_array(added)) {
		tok_err(ld->err, ld->errlen, "%s: added_tokens: not an array", F);
		return -EINVAL;
	}
	int32_t n;
	size_t str_bytes;
	if ((rc = size_ids(ld, vocab, added, &n, &str_bytes)) ||
	    (rc = alloc_ids(t, n, str_bytes)) || (rc = load_strings(t, ld, vocab, added)) ||
	    (rc = load_byte_ids(t, ld, vocab)) || (rc = load_merges(t, ld, vocab, merges)) ||
	    (rc = load_added(t, added)))
		return rc;
	if ((rc = load_norm(t, ld, json_object_get(root, "normalizer"), "normalizer")))
		return rc;
	bool byte_level = false;
	rc = load_pre(t, ld, json_object_get(root, "pre_tokenizer"), "pre_tokenizer", &byte_level);
	if (rc)
		return rc;
	if (!byte_level) {
		tok_err(ld->err, ld->errlen,
			"%s: pre_tokenizer: no ByteLevel step; only byte-level BPE is supported",
			F);
		return -ENOTSUP;
	}
	return load_decoder(ld, json_object_get(root, "decoder"));
}

int tokenizer_load(const char *path, struct tokenizer **out, char *err, size_t errlen)
{
	*out = NULL;
	char *tj, *tc;
	int rc = resolve_paths(path, &tj, &tc);
	struct stat pst;
	if (rc == -ENOENT && stat(path, &pst)) { /* the folder itself is missing: say that */
		tok_err(err, errlen, "%s: %s", path, strerror(errno));
		free(tj);
		free(tc);
		return rc;
	}
	if (rc) {
		tok_err(err, errlen, "%s: %s", rc == -ENOENT && tj ? tj : path,
			rc == -ENOENT ? "no tokenizer.json there" : strerror(-rc));
		free(tj);
		free(tc);
		return rc;
	}
	json_error_t je;
	json_t *root = json_load_file(tj, 0, &je);
	if (!root) {
		tok_err(err, errlen, "%s: line %d column %d: %s", tj, je.line, je.column, je.text);
		free(tj);
		free(tc);
		return -EINVAL;
	}
	struct tokenizer *t = calloc(1, sizeof *t);
	if (!t) {
		rc = -ENOMEM;
		goto out;
	}
	t->bos_id = t->eos_id = -1;
	struct tok_ld ld = {tj, err, errlen};
	if (!json_is_object(root)) {
		tok_err(err, errlen, "%s: top level: not an object", tj);
		rc = -EINVAL;
		goto out;
	}
	rc = load_json(t, root, &ld);
	if (!rc)
		rc = read_config(t, tc, err, errlen);
	if (rc)
		goto out;
	t->mctx = pcre2_match_context_create(NULL);
	t->jstack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
	t->cache = calloc(TOK_CACHE_SLOTS, sizeof *t->cache);
	t->cache_arena = malloc(TOK_CACHE_ARENA);
	if (!t->mctx || !t->jstack || !t->cache || !t->cache_arena) {
		rc = -ENOMEM;
		goto out;
	}
	pcre2_jit_stack_assign(t->mctx, NULL, t->jstack);
	rc = sym_reserve(t, 256);
out:
	if (rc == -ENOMEM)
		tok_err(err, errlen, "%s: out of memory", tj);
	json_decref(root);
	free(tj);
	free(tc);
	if (rc) {
		tokenizer_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* ---- derived tokenizers for generated models ----------------------------------------------- */

static int copy_file(const char *from, const char *to)
{
	FILE *a = fopen(from, "rb");
	if (!a)
		return -errno;
	FILE *b = fopen(to, "wb");
	if (!b) {
		int e = -errno;
		fclose(a);
		return e;
	}
	char buf[1 << 16];
	size_t r;
	int rc = 0;
	while ((r = fread(buf, 1, sizeof buf, a)) > 0)
		if (fwrite(buf, 1, r, b) != r) {
			rc = -EIO;
			break;
		}
	if (ferror(a))
		rc = -EIO;
	fclose(a);
	if (fclose(b) && !rc)
		rc = -EIO;
	return rc;
}

/* Added tokens that a derived small vocabulary drops: DeepSeek's 800 reserved placeholders. */
static bool added_is_reserved(const char *content)
{
	return strstr(content, "place\xe2\x96\x81holder") != NULL;
}

/* Builds the reduced vocab/merges/added_tokens of root in place (see tokenizer.h). */
static int derive_small(json_t *root, int vocab_size, const char *src, char *err, size_t errlen)
{
	json_t *model = json_object_get(root, "model");
	json_t *vocab = json_object_get(model, "vocab");
	json_t *merges = json_object_get(model, "merges");
	json_t *added = json_object_get(root, "added_tokens");
	if (!json_is_object(vocab) || !json_is_array(merges)) {
		tok_err(err, errlen, "%s: model.vocab/model.merges: missing", src);
		return -EINVAL;
	}
	int64_t max_id = -1;
	const char *key;
	json_t *v;
	json_object_foreach(vocab, key, v)
	{
		json_int_t id = json_integer_value(v);
		if (!json_is_integer(v) || id < 0 || id >= TOK_MAX_ID) {
			tok_err(err, errlen, "%s: model.vocab[\"%s\"]: bad id", src, key);
			return -EINVAL;
		}
		if (id > max_id)
			max_id = id;
	}
	size_t ai;
	json_array_foreach(added, ai, v)
	{
		json_int_t id = json_integer_value(json_object_get(v, "id"));
		if (!json_is_string(json_object_get(v, "content")) || id < 0 || id >= TOK_MAX_ID) {
			tok_err(err, errlen, "%s: added_tokens[%zu]: bad id or content", src, ai);
			return -EINVAL;
		}
		if (id > max_id)
			max_id = id;
	}
	size_t n = (size_t)max_id + 1, nal = n ? n : 1; /* an empty vocab is not out of memory */
	uint8_t *keep = calloc(nal, 1);
	int32_t *newid = malloc(nal * sizeof *newid);
	if (!keep || !newid) {
		free(keep);
		free(newid);
		return -ENOMEM;
	}
	int rc = 0;
	long used = 0;
	json_array_foreach(added, ai, v)
	{
		json_int_t id = json_integer_value(json_object_get(v, "id"));
		if (!added_is_reserved(json_string_value(json_object_get(v, "content"))) &&
		    !keep[id]) {
			keep[id] = 1;
			used++;
		}
	}
	for (int b = 0; b < 256; b++) {
		char s[8];
		size_t l = utf8_put(bl_byte_cp((uint8_t)b), s);
		s[l] = 0;
		json_t *jv = json_object_get(vocab, s);
		if (!jv) {
			tok_err(err, errlen, "%s: model.vocab: no token for byte 0x%02x", src, b);
			rc = -EINVAL;
			goto out;
		}
		if (!keep[json_integer_value(jv)]) {
			keep[json_integer_value(jv)] = 1;
			used++;
		}
	}
	if (used > vocab_size) {
		tok_err(err, errlen,
			"%s: vocab_size %d is smaller than the %ld byte and added tokens", src,
			vocab_size, used);
		rc = -EINVAL;
		goto out;
	}
	/* Highest-priority merges first, while their parts exist and room is left. */
	char *cat = NULL;
	size_t cat_cap = 0;
	json_t *kept_merges = json_array();
	if (!kept_merges) {
		rc = -ENOMEM;
		goto out;
	}
	for (int pass = 0; pass < 2 && !rc; pass++) {
		size_t mi;
		json_array_foreach(merges, mi, v)
		{
			const char *a = NULL, *b = NULL;
			size_t la = 0, lb = 0;
			if (json_is_string(v)) {
				const char *s = json_string_value(v), *spc = strchr(s, ' ');
				if (spc) {
					a = s;
					la = (size_t)(spc - s);
					b = spc + 1;
					lb = strlen(b);
				}
			} else if (json_is_array(v)) {
				a = json_string_value(json_array_get(v, 0));
				b = json_string_value(json_array_get(v, 1));
				la = a ? strlen(a) : 0;
				lb = b ? strlen(b) : 0;
			}
			if (!a || !b) {
				tok_err(err, errlen, "%s: model.merges[%zu]: not \"a b\" or [a, b]",
					src, mi);
				rc = -EINVAL;
				break;
			}
			if (la + lb + 1 > cat_cap) {
				cat_cap = 2 * (la + lb + 1);
				char *nc = realloc(cat, cat_cap);
				if (!nc) {
					rc = -ENOMEM;
					break;
				}
				cat = nc;
			}
			json_int_t id[3];
			const char *part[2] = {a, b};
			size_t pl[2] = {la, lb};
			bool ok = true;
			for (int k = 0; k < 3 && ok; k++) {
				if (k < 2) {
					memcpy(cat, part[k], pl[k]);
					cat[pl[k]] = 0;
				} else {
					memcpy(cat, a, la);
					memcpy(cat + la, b, lb);
					cat[la + lb] = 0;
				}
				json_t *jv = json_object_get(vocab, cat);
				ok = jv != NULL;
				id[k] = ok ? json_integer_value(jv) : 0;
			}
			if (!ok || !keep[id[0]] || !keep[id[1]])
				continue;
			if (pass == 0 && !keep[id[2]]) {
				if (used == vocab_size)
					break;
				keep[id[2]] = 1;
				used++;
			}
			if (pass == 1 && keep[id[2]] && json_array_append(kept_merges, v)) {
				rc = -ENOMEM;
				break;
			}
		}
	}
	free(cat);
	if (rc) {
		json_decref(kept_merges);
		goto out;
	}
	/* Renumber in original id order. */
	int32_t next = 0;
	for (size_t i = 0; i < n; i++)
		newid[i] = keep[i] ? next++ : -1;
	json_t *nv = json_object();
	json_t *na = json_array();
	if (!nv || !na) {
		json_decref(nv);
		json_decref(na);
		json_decref(kept_merges);
		rc = -ENOMEM;
		goto out;
	}
	json_object_foreach(vocab, key, v)
	{
		json_int_t id = json_integer_value(v);
		if (keep[id])
			json_object_set_new(nv, key, json_integer(newid[id]));
	}
	json_array_foreach(added, ai, v)
	{
		json_int_t id = json_integer_value(json_object_get(v, "id"));
		if (!added_is_reserved(json_string_value(json_object_get(v, "content")))) {
			json_t *c = json_deep_copy(v);
			json_object_set_new(c, "id", json_integer(newid[id]));
			json_array_append_new(na, c);
		}
	}
	json_object_set_new(model, "vocab", nv);
	json_object_set_new(model, "merges", kept_merges);
	json_object_set_new(root, "added_tokens", na);
out:
	free(keep);
	free(newid);
	return rc;
}

int tokenizer_write_for_vocab(const char *src_tokenizer_json, int vocab_size, const char *out_dir,
			      char *err, size_t errlen)
{
	const char *src = src_tokenizer_json;
	if (vocab_size <= 0) {
		tok_err(err, errlen, "%s: vocab_size: %d is not positive", src, vocab_size);
		return -EINVAL;
	}
	json_error_t je;
	json_t *root = json_load_file(src, 0, &je);
	if (!root) {
		struct stat st;
		int e = stat(src, &st) ? -ENOENT : -EINVAL;
		tok_err(err, errlen, "%s: line %d: %s", src, je.line, je.text);
		return e;
	}
	if (mkdir(out_dir, 0755) && errno != EEXIST) {
		tok_err(err, errlen, "%s: %s", out_dir, strerror(errno));
		json_decref(root);
		return -EIO;
	}
	size_t ol = strlen(out_dir) + 32, sl = strlen(src) + 32;
	char *out_tj = malloc(ol), *out_tc = malloc(ol), *src_tc = malloc(sl);
	int rc = 0;
	if (!out_tj || !out_tc || !src_tc) {
		rc = -ENOMEM;
		goto done;
	}
	snprintf(out_tj, ol, "%s/tokenizer.json", out_dir);
	snprintf(out_tc, ol, "%s/tokenizer_config.json", out_dir);
	const char *sl_ = strrchr(src, '/');
	size_t d = sl_ ? (size_t)(sl_ - src) + 1 : 0;
	memcpy(src_tc, src, d);
	strcpy(src_tc + d, "tokenizer_config.json");

	/* The real vocabulary fits: copy it byte for byte. */
	int64_t max_id = -1;
	const char *key;
	json_t *v;
	size_t ai;
	json_object_foreach(json_object_get(json_object_get(root, "model"), "vocab"), key,
			    v) if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
	json_array_foreach(json_object_get(root, "added_tokens"), ai,
			   v) if (json_integer_value(json_object_get(v, "id")) > max_id) max_id =
	    json_integer_value(json_object_get(v, "id"));
	if (max_id < 0) {
		tok_err(err, errlen, "%s: model.vocab: missing or empty", src);
		rc = -EINVAL;
		goto done;
	}
	if (vocab_size > max_id) {
		rc = copy_file(src, out_tj);
	} else {
		rc = derive_small(root, vocab_size, src, err, errlen);
		if (rc)
			goto done;
		if (json_dump_file(root, out_tj, JSON_COMPACT))
			rc = -EIO;
	}
	if (rc) {
		tok_err(err, errlen, "%s: write failed: %s", out_tj, strerror(-rc));
		rc = rc == -ENOMEM ? rc : -EIO;
		goto done;
	}
	struct stat st;
	if (!stat(src_tc, &st) && (rc = copy_file(src_tc, out_tc))) {
		tok_err(err, errlen, "%s: write failed: %s", out_tc, strerror(-rc));
		rc = -EIO;
	}
done:
	if (rc == -ENOMEM)
		tok_err(err, errlen, "%s: out of memory", src);
	free(out_tj);
	free(out_tc);
	free(src_tc);
	json_decref(root);
	return rc;
}
