/*
 * fw_cmd.c - the firmware's trust boundary: checks the board block the host wrote at init and
 * decodes every command read from a host ring into a struct fw_cmd, validating every field
 * (fw.h documents the rules). Everything the dispatcher later hands to a CU or a DMA channel was
 * resolved here into card physical addresses inside a bank, so a malformed or hostile command
 * ends as an error completion, never as a wild access. Fuzzed by firmware/fuzz/fuzz_cmd_decode.c.
 */
#include "firmware/fw.h"

#include <errno.h>
#include <string.h>

#define CU_OPS_MASK                                                                                \
	((1u << ABI_OP_GEMM_FP8) | (1u << ABI_OP_RMSNORM) | (1u << ABI_OP_ROPE) |                  \
	 (1u << ABI_OP_ACT_QUANT) | (1u << ABI_OP_SILU_MUL) | (1u << ABI_OP_RESIDUAL_ADD) |        \
	 (1u << ABI_OP_SOFTMAX) | (1u << ABI_OP_MLA_ATTN) | (1u << ABI_OP_KV_APPEND) |             \
	 (1u << ABI_OP_GEMV) | (1u << ABI_OP_MOE_ROUTE) | (1u << ABI_OP_MLA_ATTN_LANES) |          \
	 (1u << ABI_OP_GATHER) | (1u << ABI_OP_COMBINE))

#define BOARD_FIELD(member) ((uint32_t)offsetof(struct abi_board, member))

static bool fw_is_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

int fw_board_check(const struct abi_board *b, uint32_t *field)
{
	uint32_t dummy;
	if (!field)
		field = &dummy;
	*field = 0;
	if (b->magic != ABI_BOARD_MAGIC) {
		*field = BOARD_FIELD(magic);
		return -EBADMSG;
	}
	if (b->version != ABI_BOARD_VERSION) {
		*field = BOARD_FIELD(version);
		return -EBADMSG;
	}
	uint32_t nb = ABI_BOARD_N_BANKS(b->counts), nc = ABI_BOARD_N_CUS(b->counts);
	uint32_t nd = ABI_BOARD_N_DMA(b->counts);
	if (nb < 1 || nb > ABI_MAX_BANKS || nc > ABI_MAX_CUS || nd > ABI_MAX_DMA ||
	    (b->counts >> 24)) {
		*field = BOARD_FIELD(counts);
		return -EINVAL;
	}
	if (!fw_is_zero(b->rsvd, sizeof(b->rsvd))) {
		*field = BOARD_FIELD(rsvd);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < ABI_MAX_BANKS; i++) {
		const struct abi_bank *k = &b->banks[i];
		*field = BOARD_FIELD(banks) + i * (uint32_t)sizeof(*k);
		if (i >= nb) {
			if (!fw_is_zero(k, sizeof(*k)))
				return -EINVAL;
			continue;
		}
		if (k->size == 0 || k->base + k->size < k->base ||
		    (k->word & 0xFFu) > ABI_BANK_HOST || (k->word >> 8))
			return -EINVAL;
		for (uint32_t j = 0; j < i; j++) {
			const struct abi_bank *o = &b->banks[j];
			if (k->base < o->base + o->size && o->base < k->base + k->size)
				return -EINVAL; /* overlapping banks */
		}
	}
	uint64_t banks_mask = nb == 64 ? ~0ull : (1ull << nb) - 1;
	for (uint32_t i = 0; i < ABI_MAX_CUS; i++) {
		const struct abi_cu *c = &b->cus[i];
		*field = BOARD_FIELD(cus) + i * (uint32_t)sizeof(*c);
		if (i >= nc) {
			if (!fw_is_zero(c, sizeof(*c)))
				return -EINVAL;
			continue;
		}
		uint32_t lanes = ABI_CU_LANES(c->word);
		if (ABI_CU_KIND(c->word) > ABI_CU_GEMV || ABI_CU_REGBLK(c->word) >= ABI_MAX_CUS ||
		    (c->word >> 24) || !c->ops_mask || (c->ops_mask & ~CU_OPS_MASK) ||
		    !c->bank_mask || (c->bank_mask & ~banks_mask))
			return -EINVAL;
		/* a GEMV CU has 1..64 lanes on banks 0..lanes-1 (equal sizes) and runs only GEMV */
		if (ABI_CU_KIND(c->word) == ABI_CU_GEMV) {
			if (lanes < 1 || lanes > 64 || lanes > nb ||
			    c->ops_mask != (1u << ABI_OP_GEMV))
				return -EINVAL;
			for (uint32_t l = 1; l < lanes; l++)
				if (b->banks[l].size != b->banks[0].size)
					return -EINVAL;
		} else if (c->ops_mask & (1u << ABI_OP_MLA_ATTN_LANES)) {
			/* the striped attention: lanes on banks 0..lanes-1 of one size, that op only */
			if (lanes < 1 || lanes > 64 || lanes > nb ||
			    c->ops_mask != (1u << ABI_OP_MLA_ATTN_LANES))
				return -EINVAL;
			for (uint32_t l = 1; l < lanes; l++)
				if (b->banks[l].size != b->banks[0].size)
					return -EINVAL;
		} else if (lanes || (c->ops_mask & (1u << ABI_OP_GEMV))) {
			return -EINVAL;
		}
	}
	for (uint32_t i = 0; i < ABI_MAX_DMA; i++) {
		const struct abi_dma_chan *d = &b->dma[i];
		*field = BOARD_FIELD(dma) + i * (uint32_t)sizeof(*d);
		if (i >= nd) {
			if (!fw_is_zero(d, sizeof(*d)))
				return -EINVAL;
			continue;
		}
		if (!(d->word & (ABI_DMA_CAP_H2C | ABI_DMA_CAP_C2C)) || (d->word >> 2) ||
		    !d->bw_mbps)
			return -EINVAL;
	}
	*field = 0;
	return 0;
}

int fw_addr_resolve(const struct abi_board *b, uint64_t a, uint64_t len, uint64_t *phys)
{
	uint32_t bank = ABI_ADDR_BANK(a);
	if (bank >= ABI_BOARD_N_BANKS(b->counts) || ABI_ADDR_RSVD(a) != 0x80u || len == 0)
		return -ERANGE;
	uint64_t off = ABI_ADDR_OFF(a), size = b->banks[bank].size;
	if (off > size || len > size - off)
		return -ERANGE;
	*phys = b->banks[bank].base + off;
	return 0;
}

/* Decoder state for one command. */
struct fw_dec {
	const struct abi_board *b; /* board */
	const struct abi_cmd *c;   /* packet */
	struct fw_cmd *out;	   /* result */
	uint32_t *detail;	   /* offending field */
};

/* The 64-bit operand at byte offset field (a multiple of 4) of struct abi_cmd, read as two
 * words: a memcpy of 8 bytes is a byte-wise library call in the images. */
static uint64_t fw_dec_u64(const struct abi_cmd *c, uint32_t field)
{
	typedef uint32_t __attribute__((may_alias)) word_t;
	const word_t *w = (const word_t *)((const uint8_t *)c + field);
	return (uint64_t)w[0] | ((uint64_t)w[1] << 32);
}

/* Checks the operand at byte offset field of struct abi_cmd covering len bytes (len 0: the
 * operand is unused and must be 0) and writes its physical address into the CU args. */
static uint32_t fw_dec_operand(struct fw_dec *d, uint32_t field, uint64_t len)
{
	uint64_t a = fw_dec_u64(d->c, field), phys = 0;
	if (len == 0) {
		if (a) {
			*d->detail = field;
			return ABI_ST_BAD_FIELD;
		}
		return ABI_ST_OK;
	}
	if (fw_addr_resolve(d->b, a, len, &phys)) {
		*d->detail = field;
		return ABI_ST_BAD_ADDR;
	}
	d->out->bank_mask |= 1ull << ABI_ADDR_BANK(a);
	uint32_t w = (field - (uint32_t)sizeof(struct abi_cmd_hdr)) / 4;
	d->out->args[w] = (uint32_t)phys;
	d->out->args[w + 1] = (uint32_t)(phys >> 32);
	return ABI_ST_OK;
}

static uint32_t fw_dec_bad(struct fw_dec *d, uint32_t field)
{
	*d->detail = field;
	return ABI_ST_BAD_FIELD;
}

static bool fw_dim_ok(uint32_t v)
{
	return v >= 1 && v <= ABI_MAX_DIM;
}

/* f32 bit pattern that is finite */
static bool fw_f32_finite(uint32_t bits)
{
	return ((bits >> 23) & 0xFFu) != 0xFFu;
}

#define OPND(member, len)                                                                          \
	do {                                                                                       \
		uint32_t st_ = fw_dec_operand(d, ABI_FIELD(member), (len));                        \
		if (st_)                                                                           \
			return st_;                                                                \
	} while (0)
#define REQUIRE(cond, member)                                                                      \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return fw_dec_bad(d, ABI_FIELD(member));                                   \
	} while (0)

static uint32_t fw_dec_gemm(struct fw_dec *d)
{
	const struct abi_gemm *g = &d->c->u.gemm;
	REQUIRE(fw_dim_ok(g->m), u.gemm.m);
	REQUIRE(fw_dim_ok(g->n), u.gemm.n);
	REQUIRE(fw_dim_ok(g->k), u.gemm.k);
	uint32_t f = g->flags, xf = f & (ABI_GEMM_F_X_F32 | ABI_GEMM_F_X_BF16);
	REQUIRE(!(f & ~ABI_GEMM_F_ALL), u.gemm.flags);
	REQUIRE(xf != (ABI_GEMM_F_X_F32 | ABI_GEMM_F_X_BF16), u.gemm.flags);
	REQUIRE(!(f & ABI_GEMM_F_ACCUM) || (xf && !(f & ABI_GEMM_F_Y_BF16)), u.gemm.flags);
	/* unquantized f32 activations: f32 input only, and no scale rounding to apply */
	REQUIRE(!(f & ABI_GEMM_F_ACT_F32) || (xf == ABI_GEMM_F_X_F32 && !(f & ABI_GEMM_F_UE8M0)),
		u.gemm.flags);
	REQUIRE(g->lda == 0 || (g->lda >= g->k && g->lda <= ABI_MAX_DIM), u.gemm.lda);
	REQUIRE(g->ldy == 0 || (g->ldy >= g->n && g->ldy <= ABI_MAX_DIM), u.gemm.ldy);
	uint64_t m = g->m, n = g->n, k = g->k, kb = (k + 127) / 128, nb = (n + 127) / 128;
	uint64_t lda = g->lda ? g->lda : k, ldy = g->ldy ? g->ldy : n;
	uint64_t xb = xf == ABI_GEMM_F_X_F32 ? 4
		      : xf		     ? 2
					     : 1,
		 pair = (f & ABI_GEMM_F_SILU_MUL) ? 2 : 1;
	OPND(u.gemm.a, ((m - 1) * lda + k) * xb);
	OPND(u.gemm.sa, !xf ? m * kb * 4 : (f & ABI_GEMM_F_ACCUM) ? m * 4 : 0);
	OPND(u.gemm.w, pair * n * k);
	OPND(u.gemm.sw, pair * nb * kb * 4);
	OPND(u.gemm.y, ((m - 1) * ldy + n) * ((f & ABI_GEMM_F_Y_BF16) ? 2 : 4));
	return ABI_ST_OK;
}

static uint32_t fw_dec_vec(struct fw_dec *d, uint32_t op)
{
	const struct abi_vec *v = &d->c->u.vec;
	REQUIRE(fw_dim_ok(v->rows), u.vec.rows);
	REQUIRE(fw_dim_ok(v->cols), u.vec.cols);
	REQUIRE(v->lda == 0 || (v->lda >= v->cols && v->lda <= ABI_MAX_DIM), u.vec.lda);
	REQUIRE(v->ldo == 0 || (v->ldo >= v->cols && v->ldo <= ABI_MAX_DIM), u.vec.ldo);
	uint64_t elems = (uint64_t)v->rows * v->cols, lda = v->lda ? v->lda : v->cols;
	uint64_t ldo = v->ldo ? v->ldo : v->cols;
	uint64_t f32 = ((uint64_t)(v->rows - 1) * lda + v->cols) * 4;
	uint64_t x2 = 0, w = 0, out = ((uint64_t)(v->rows - 1) * ldo + v->cols) * 4, out2 = 0,
		 tab = 0;
	bool uses_pu = false, uses_pf = false, uses_pk = false;
	REQUIRE(v->rsvd == 0, u.vec.rsvd);
	switch (op) {
	case ABI_OP_RMSNORM:
		w = (uint64_t)v->cols * 4;
		uses_pf = true;
		break;
	case ABI_OP_ROPE:
		REQUIRE(v->cols % 2 == 0, u.vec.cols);
		uses_pu = uses_pf = uses_pk = true;
		REQUIRE(v->param_k <= ABI_MAX_DIM, u.vec.param_k);
		if (v->w) { /* positions from w, one per param_k rows; tab holds param_u of them */
			REQUIRE(v->param_k >= 1 && v->rows % v->param_k == 0, u.vec.param_k);
			REQUIRE(v->param_u >= 1, u.vec.param_u);
			REQUIRE(v->tab != 0, u.vec.tab);
			w = (uint64_t)(v->rows / v->param_k) * 4;
			tab = (uint64_t)v->param_u * v->cols * 4;
		} else if (v->tab) /* positions up to param_u + (rows - 1) / param_k */
			tab = ((uint64_t)v->param_u +
			       (v->param_k ? (v->rows - 1) / v->param_k : 0) + 1) *
			      v->cols * 4;
		break;
	case ABI_OP_GATHER:
	case ABI_OP_COMBINE: {
		/* the source has param_u rows; the CU checks every index against it */
		uint64_t ni = op == ABI_OP_COMBINE ? v->param_k : 1;
		REQUIRE(fw_dim_ok(v->param_u), u.vec.param_u);
		if (op == ABI_OP_COMBINE) {
			REQUIRE(v->param_k >= 1 && v->param_k <= ABI_COMBINE_MAX_K, u.vec.param_k);
			REQUIRE(v->cols <= ABI_COMBINE_MAX_COLS, u.vec.cols);
			x2 = (uint64_t)v->rows * ni * 4;
		}
		uses_pu = uses_pk = true;
		f32 = ((uint64_t)(v->param_u - 1) * lda + v->cols) * 4;
		w = (uint64_t)v->rows * ni * 4;
		break;
	}
	case ABI_OP_ACT_QUANT:
		REQUIRE(v->ldo == 0, u.vec.ldo);
		out = elems;
		out2 = (uint64_t)v->rows * ((v->cols + 127) / 128) * 4;
		break;
	case ABI_OP_SILU_MUL:
	case ABI_OP_RESIDUAL_ADD:
		x2 = f32;
		break;
	default: /* SOFTMAX */
		break;
	}
	REQUIRE(uses_pu || v->param_u == 0, u.vec.param_u);
	REQUIRE(uses_pk || v->param_k == 0, u.vec.param_k);
	if (uses_pf)
		REQUIRE(fw_f32_finite(v->param_f) && v->param_f != 0 && !(v->param_f >> 31),
			u.vec.param_f);
	else
		REQUIRE(v->param_f == 0, u.vec.param_f);
	OPND(u.vec.x, f32);
	OPND(u.vec.x2, x2);
	OPND(u.vec.w, w);
	OPND(u.vec.out, out);
	OPND(u.vec.out2, out2);
	OPND(u.vec.tab, tab);
	return ABI_ST_OK;
}

static uint32_t fw_dec_mla(struct fw_dec *d)
{
	const struct abi_mla *m = &d->c->u.mla;
	REQUIRE(m->n_heads >= 1 && m->n_heads <= ABI_MAX_HEADS, u.mla.n_heads);
	REQUIRE(fw_dim_ok(m->kv_lora), u.mla.kv_lora);
	REQUIRE(m->rope <= ABI_MAX_DIM && m->rope % 2 == 0, u.mla.rope);
	REQUIRE(fw_dim_ok(m->ctx_cap), u.mla.ctx_cap);
	REQUIRE(m->n_ctx >= 1 && m->n_ctx <= m->ctx_cap, u.mla.n_ctx);
	REQUIRE(fw_f32_finite(m->scale) && m->scale != 0 && !(m->scale >> 31), u.mla.scale);
	uint64_t row = (uint64_t)m->kv_lora + m->rope;
	OPND(u.mla.q, m->n_heads * row * 4);
	OPND(u.mla.kv, m->ctx_cap * row * 4);
	OPND(u.mla.out, (uint64_t)m->n_heads * m->kv_lora * 4);
	return ABI_ST_OK;
}

static uint32_t fw_dec_kv(struct fw_dec *d)
{
	const struct abi_kv_append *k = &d->c->u.kv;
	REQUIRE(fw_dim_ok(k->row), u.kv.row);
	REQUIRE(fw_dim_ok(k->ctx_cap), u.kv.ctx_cap);
	REQUIRE(k->pos < k->ctx_cap, u.kv.pos);
	uint32_t n = k->rows > 1 ? k->rows : 1;
	REQUIRE(k->rows <= ABI_KV_MAX_ROWS && n <= k->ctx_cap - k->pos, u.kv.rows);
	uint32_t fmt = ABI_KV_FMT(k->word), dr = ABI_KV_ROPE(k->word);
	REQUIRE(!(k->word >> 24) && (fmt != ABI_KV_F32 || dr == 0), u.kv.word);
	REQUIRE(fmt == ABI_KV_F32 || (dr < k->row && dr <= 64 && k->row - dr <= 512), u.kv.word);
	uint64_t rec = abi_kv_record_bytes(fmt, k->row - dr, dr);
	REQUIRE(rec != 0, u.kv.word);
	uint32_t fd = k->fold; /* the norm and RoPE folded in: kv_a's raw row */
	REQUIRE(fd <= 64 && fd % 2 == 0 && fd < k->row && (fmt == ABI_KV_F32 || !fd || fd == dr),
		u.kv.fold);
	if (fd)
		REQUIRE(fw_f32_finite(k->eps) && k->eps != 0 && !(k->eps >> 31), u.kv.eps);
	else
		REQUIRE(k->eps == 0 && k->rope_pos == 0, u.kv.eps);
	REQUIRE(k->rope_pos < ABI_MAX_DIM && n <= ABI_MAX_DIM - k->rope_pos, u.kv.rope_pos);
	OPND(u.kv.src, (uint64_t)n * k->row * 4);
	OPND(u.kv.cache, (uint64_t)k->ctx_cap * rec);
	OPND(u.kv.norm, fd ? (uint64_t)(k->row - fd) * 4 : 0);
	OPND(u.kv.rope_tab, fd ? ((uint64_t)k->rope_pos + n) * fd * 4 : 0);
	return ABI_ST_OK;
}

/* The lanes of the first CU that runs op (0 when none has lanes). */
static uint32_t fw_op_lanes(const struct abi_board *b, uint32_t op)
{
	for (uint32_t i = 0; i < ABI_BOARD_N_CUS(b->counts); i++)
		if (b->cus[i].ops_mask >> op & 1)
			return ABI_CU_LANES(b->cus[i].word);
	return 0;
}

/* MLA_ATTN_LANES in its MHA mode (ABI_MLAL_MHA): explicit K/V rows at cache_off (a card
 * address), the rows' table always read. */
static __attribute__((noinline)) uint32_t fw_dec_mla_mha(struct fw_dec *d)
{
	const struct abi_mla_lanes *m = &d->c->u.mlal;
	uint64_t H = m->n_heads, vd = m->kv_lora, dr = m->rope, nope = m->rsvd;
	REQUIRE(m->n_heads >= 1 && m->n_heads <= 128, u.mlal.n_heads);
	REQUIRE(m->kv_lora >= 1 && m->kv_lora <= 256, u.mlal.kv_lora);
	REQUIRE(m->rope <= 64 && m->rope % 2 == 0, u.mlal.rope);
	REQUIRE(nope + dr >= 1 && nope + dr <= 256, u.mlal.rsvd);
	REQUIRE(fw_dim_ok(m->ctx_cap), u.mlal.ctx_cap);
	REQUIRE(m->n_ctx >= 1 && m->n_ctx <= m->ctx_cap, u.mlal.n_ctx);
	REQUIRE(m->word == ABI_MLAL_MHA, u.mlal.word); /* f32 rows, the f32 datapath */
	REQUIRE(fw_f32_finite(m->scale) && m->scale != 0 && !(m->scale >> 31), u.mlal.scale);
	REQUIRE(m->rsvd2 == 0, u.mlal.rsvd2);
	REQUIRE(m->rows <= ABI_MLAL_MAX_ROWS, u.mlal.rows);
	REQUIRE(m->slot_bytes == 0, u.mlal.slot_bytes);
	uint64_t n = m->rows > 1 ? m->rows : 1;
	OPND(u.mlal.q, n * H * (nope + dr) * 4);
	OPND(u.mlal.out, n * H * vd * 4);
	OPND(u.mlal.tab, n > 1 ? n * 8 : 0);
	OPND(u.mlal.cache_off, (uint64_t)m->ctx_cap * (H * (nope + vd) + dr) * 4);
	if (!fw_op_lanes(d->b, ABI_OP_MLA_ATTN_LANES)) {
		*d->detail = ABI_FIELD(hdr.word0);
		return ABI_ST_NO_CU;
	}
	return ABI_ST_OK;
}

static __attribute__((noinline)) uint32_t fw_dec_mla_lanes(struct fw_dec *d)
{
	const struct abi_mla_lanes *m = &d->c->u.mlal;
	uint32_t fmt = m->word & 0xFFu, L = fw_op_lanes(d->b, ABI_OP_MLA_ATTN_LANES);
	uint32_t fp8dp = (m->word & ABI_MLAL_FP8) != 0;
	if (m->word & ABI_MLAL_MHA)
		return fw_dec_mla_mha(d);
	REQUIRE(m->n_heads >= 1 && m->n_heads <= 128, u.mlal.n_heads);
	REQUIRE(m->kv_lora >= 1 && m->kv_lora <= 512, u.mlal.kv_lora);
	REQUIRE(m->rope <= 64 && m->rope % 2 == 0, u.mlal.rope);
	REQUIRE(fw_dim_ok(m->ctx_cap), u.mlal.ctx_cap);
	REQUIRE(m->n_ctx >= 1 && m->n_ctx <= m->ctx_cap, u.mlal.n_ctx);
	REQUIRE(!(m->word >> 9) && (!fp8dp || fmt == ABI_KV_FP8), u.mlal.word);
	uint64_t rec = abi_kv_record_bytes(fmt, m->kv_lora, m->rope);
	REQUIRE(rec != 0, u.mlal.word);
	REQUIRE(fw_f32_finite(m->scale) && m->scale != 0 && !(m->scale >> 31), u.mlal.scale);
	REQUIRE(m->rsvd == 0, u.mlal.rsvd);
	REQUIRE(m->rsvd2 == 0, u.mlal.rsvd2);
	REQUIRE(m->rows <= ABI_MLAL_MAX_ROWS, u.mlal.rows);
	uint64_t n = m->rows > 1 ? m->rows : 1;
	REQUIRE(n > 1 || m->slot_bytes == 0, u.mlal.slot_bytes);
	OPND(u.mlal.q, n * m->n_heads * (m->kv_lora + m->rope) * 4);
	OPND(u.mlal.out, n * m->n_heads * m->kv_lora * 4);
	/* the rows' table; each row's slot and context are the kernel's to check (it reads them) */
	OPND(u.mlal.tab, n > 1 ? n * 8 : 0);
	/* the stripe set: ceil(ceil(ctx_cap / 32) / lanes) blocks of 32 records in each lane bank */
	if (!L) {
		*d->detail = ABI_FIELD(hdr.word0);
		return ABI_ST_NO_CU;
	}
	uint64_t blocks = ((uint64_t)m->ctx_cap + 31) / 32, per = (blocks + L - 1) / L;
	uint64_t bytes = per * 32 * rec, size = d->b->banks[0].size;
	REQUIRE(m->cache_off <= size && bytes <= size - m->cache_off, u.mlal.cache_off);
	return ABI_ST_OK;
}

static uint32_t fw_dec_gemv(struct fw_dec *d)
{
	const struct abi_gemv *g = &d->c->u.gemv;
	REQUIRE(g->ng >= 1 && g->ng <= ABI_GEMV_MAX_GROUPS, u.gemv.ng);
	REQUIRE(g->m >= 1 && g->m <= ABI_GEMV_MAX_M, u.gemv.m);
	REQUIRE((ABI_ADDR_OFF(g->tab) & 7) == 0, u.gemv.tab);
	REQUIRE(!(g->flags & ~ABI_GEMV_F_ALL), u.gemv.flags);
	REQUIRE((g->flags & ABI_GEMV_F_X0) || g->x0_off == 0, u.gemv.x0_off);
	REQUIRE(g->rsvd == 0, u.gemv.rsvd);
	OPND(u.gemv.tab, (uint64_t)g->ng * ABI_GEMV_GRP_BYTES);
	return ABI_ST_OK;
}

static uint32_t fw_dec_route(struct fw_dec *d)
{
	const struct abi_route *r = &d->c->u.route;
	uint32_t f = r->flags, G = r->groups & 0xFFFFu, tg = r->groups >> 16;
	REQUIRE(r->e >= 1 && r->e <= ABI_ROUTE_MAX_E, u.route.e);
	REQUIRE(r->k >= 1 && r->k <= r->e && r->k <= ABI_ROUTE_MAX_K, u.route.k);
	REQUIRE(!(f & ~ABI_ROUTE_F_ALL), u.route.flags);
	if (f & ABI_ROUTE_F_GROUPS)
		REQUIRE(G >= 1 && r->e % G == 0 && tg >= 1 && tg <= G, u.route.groups);
	else
		REQUIRE(r->groups == 0, u.route.groups);
	REQUIRE(fw_f32_finite(r->scale), u.route.scale);
	REQUIRE((f & ABI_ROUTE_F_TABLES) || r->stride == 0, u.route.stride);
	REQUIRE(r->rows <= ((f & ABI_ROUTE_F_TABLES) ? 1u : ABI_ROUTE_MAX_ROWS), u.route.rows);
	REQUIRE(r->rsvd == 0, u.route.rsvd);
	uint64_t tb = (f & ABI_ROUTE_F_TABLES) ? 2ull * (r->k + 1) * ABI_GEMV_GRP_BYTES : 0;
	uint64_t n = r->rows ? r->rows : 1;
	OPND(u.route.logit, n * r->e * 4);
	OPND(u.route.bias, (f & ABI_ROUTE_F_BIAS) ? (uint64_t)r->e * 4 : 0);
	OPND(u.route.out, n * r->k * 8);
	OPND(u.route.tmpl, tb);
	OPND(u.route.tab, tb);
	return ABI_ST_OK;
}

static uint32_t fw_dec_dma(struct fw_dec *d)
{
	const struct abi_dma_fill *f = &d->c->u.dma;
	uint32_t nd = ABI_BOARD_N_DMA(d->b->counts), chan = ABI_DMA_WORD_CHAN(f->word);
	REQUIRE(nd > 0, u.dma.word);
	REQUIRE(!(f->flags & ~ABI_DMA_F_ALL), u.dma.flags);
	REQUIRE((f->flags & ABI_DMA_F_ALL) != ABI_DMA_F_ALL, u.dma.flags);
	REQUIRE(f->bytes >= 1 && f->bytes <= 0xFFFFFFFFFFFFull, u.dma.bytes);
	REQUIRE(chan == ABI_DMA_CHAN_ANY || chan < nd, u.dma.word);
	REQUIRE((f->flags & ABI_DMA_F_PATTERN) || ABI_DMA_WORD_PATTERN(f->word) == 0, u.dma.word);
	uint32_t need = (f->flags & ABI_DMA_F_SRC_HOST)	 ? ABI_DMA_CAP_H2C
			: (f->flags & ABI_DMA_F_PATTERN) ? 0u
							 : ABI_DMA_CAP_C2C;
	bool any = false;
	for (uint32_t i = 0; i < nd; i++)
		if ((chan == ABI_DMA_CHAN_ANY || chan == i) && (d->b->dma[i].word & need) == need)
			any = true;
	if (!any) {
		*d->detail = ABI_FIELD(u.dma.word);
		return ABI_ST_NO_CU;
	}
	OPND(u.dma.dst, f->bytes);
	if (f->flags & ABI_DMA_F_PATTERN) {
		OPND(u.dma.src, 0);
	} else if (f->flags & ABI_DMA_F_SRC_HOST) {
		REQUIRE(f->src != 0,
			u.dma.src); /* host bus addresses are the DMA engine's to check */
	} else {
		OPND(u.dma.src, f->bytes);
	}
	return ABI_ST_OK;
}

uint32_t fw_cmd_decode(const struct abi_board *b, const struct abi_cmd *c, uint32_t queue,
		       struct fw_cmd *out, uint32_t *detail)
{
	/* one word copy of the packet; everything below reads only that private copy, so a host
	 * rewriting the ring slot meanwhile cannot make a checked field differ from the used one */
	if (c != &out->raw)
		fw_copy_words(&out->raw, c, sizeof(*c));
	c = &out->raw;
	struct fw_dec dd = {b, c, out, detail}, *d = &dd;
	const struct abi_cmd_hdr *h = &c->hdr;
	*detail = 0;
	out->op = 0;
	out->queue = queue;
	out->flags = 0;
	out->timeout_ns = 0;
	out->bank_mask = 0;
	if (ABI_W0_MAGIC(h->word0) != ABI_MAGIC || ABI_W0_VERSION(h->word0) != ABI_VERSION)
		return ABI_ST_BAD_MAGIC;
	uint32_t op = ABI_W0_OP(h->word0);
	out->op = op;
	if (op >= ABI_OP_COUNT) {
		*detail = ABI_FIELD(hdr.word0);
		return ABI_ST_BAD_OPCODE;
	}
	uint32_t fl = ABI_W2_FLAGS(h->word2);
	REQUIRE(!(fl & ~ABI_CMD_F_ALL) && ABI_W2_RSVD(h->word2) == 0, hdr.word2);
	out->flags = fl;
	uint32_t to = ABI_W2_TIMEOUT(h->word2);
	out->timeout_ns = to ? (uint64_t)to * 100000u : FW_CFG_CU_TIMEOUT_NS;
	if (fl & ABI_CMD_F_WAIT)
		REQUIRE(ABI_W3_WAIT(h->word3) < ABI_MAX_FENCES, hdr.word3);
	else
		REQUIRE(ABI_W3_WAIT(h->word3) == 0 && h->wait_value == 0, hdr.word3);
	if (fl & ABI_CMD_F_SIGNAL)
		REQUIRE(ABI_W3_SIGNAL(h->word3) < ABI_MAX_FENCES, hdr.word3);
	else
		REQUIRE(ABI_W3_SIGNAL(h->word3) == 0 && h->signal_value == 0, hdr.word3);
	REQUIRE(h->rsvd[0] == 0 && h->rsvd[1] == 0, hdr.rsvd);

	/* payload bytes beyond the op's struct must be 0 */
	size_t used = 0;
	uint32_t st;
	switch (op) {
	case ABI_OP_GEMM_FP8:
		used = sizeof(struct abi_gemm);
		break;
	case ABI_OP_RMSNORM:
	case ABI_OP_ROPE:
	case ABI_OP_ACT_QUANT:
	case ABI_OP_SILU_MUL:
	case ABI_OP_RESIDUAL_ADD:
	case ABI_OP_SOFTMAX:
	case ABI_OP_GATHER:
	case ABI_OP_COMBINE:
		used = sizeof(struct abi_vec);
		break;
	case ABI_OP_MLA_ATTN:
		used = sizeof(struct abi_mla);
		break;
	case ABI_OP_KV_APPEND:
		used = sizeof(struct abi_kv_append);
		break;
	case ABI_OP_DMA_FILL:
		used = sizeof(struct abi_dma_fill);
		break;
	case ABI_OP_GEMV:
		used = sizeof(struct abi_gemv);
		break;
	case ABI_OP_MOE_ROUTE:
		used = sizeof(struct abi_route);
		break;
	case ABI_OP_MLA_ATTN_LANES:
		used = sizeof(struct abi_mla_lanes);
		break;
	default:
		used = 0;
		break;
	}
	/* (every payload struct is a multiple of 4 bytes: check the unused words) */
	uint32_t tail = 0;
	for (size_t w = used / 4; w < ABI_PAYLOAD_BYTES / 4; w++)
		tail |= c->u.raw[w];
	if (tail)
		return fw_dec_bad(d, (uint32_t)(sizeof(struct abi_cmd_hdr) + used));
	/* non-address words pass through to the CU as they are (out->args is the payload of the
	 * copy); operands are made physical in place below */
	switch (op) {
	case ABI_OP_GEMM_FP8:
		st = fw_dec_gemm(d);
		break;
	case ABI_OP_RMSNORM:
	case ABI_OP_ROPE:
	case ABI_OP_ACT_QUANT:
	case ABI_OP_SILU_MUL:
	case ABI_OP_RESIDUAL_ADD:
	case ABI_OP_SOFTMAX:
	case ABI_OP_GATHER:
	case ABI_OP_COMBINE:
		st = fw_dec_vec(d, op);
		break;
	case ABI_OP_MLA_ATTN:
		st = fw_dec_mla(d);
		break;
	case ABI_OP_KV_APPEND:
		st = fw_dec_kv(d);
		break;
	case ABI_OP_GEMV:
		st = fw_dec_gemv(d);
		break;
	case ABI_OP_MOE_ROUTE:
		st = fw_dec_route(d);
		break;
	case ABI_OP_MLA_ATTN_LANES:
		st = fw_dec_mla_lanes(d);
		break;
	case ABI_OP_DMA_FILL:
		return fw_dec_dma(d);
	default:
		return ABI_ST_OK; /* NOP, FENCE, BARRIER, TIMESTAMP: header only */
	}
	if (st)
		return st;
	/* some CU must implement the op and reach every bank the command touches */
	for (uint32_t i = 0; i < ABI_BOARD_N_CUS(b->counts); i++)
		if ((b->cus[i].ops_mask >> op & 1) && !(out->bank_mask & ~b->cus[i].bank_mask))
			return ABI_ST_OK;
	*detail = ABI_FIELD(hdr.word0);
	return ABI_ST_NO_CU;
}
