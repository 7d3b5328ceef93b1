/*
 * tokenizer.h - the Hugging Face `tokenizer.json` byte-level BPE tokenizer (DeepSeek-V3's), in C.
 *
 * First stage of the host data flow: text -> tokenizer_encode -> token ids -> host/model ->
 * sampled ids -> tokenizer_stream_push -> UTF-8 text on stdout. The pipeline follows the
 * `tokenizers` library (huggingface/tokenizers) for the subset a byte-level BPE uses:
 *   1. added tokens (special or not) are matched on the raw text first, leftmost-longest;
 *   2. the text between them is normalized (none, Sequence, Replace(String), Prepend);
 *   3. the pre_tokenizer (Sequence of Split regexes and ByteLevel) cuts it into pieces; the regexes
 *      are compiled with PCRE2 (UTF + UCP, JIT), each Split applied inside the pieces of the
 *      previous one, with its behavior (Isolated, Removed, MergedWithPrevious, MergedWithNext,
 *      Contiguous) and invert flag;
 *   4. each piece's bytes are merged by BPE (lowest merge rank first, leftmost on ties);
 *   5. BOS/EOS are added per tokenizer_config.json (add_bos_token / add_eos_token).
 * Input that is not valid UTF-8 is still encoded: each invalid byte becomes its own piece (its
 * byte token), so decoding gives the input bytes back exactly.
 *
 * A tokenizer is read-only after tokenizer_load except for its scratch state (regex match data and
 * a word cache), so one tokenizer serves one thread at a time.
 */
#ifndef MOECARD_TOKENIZER_H
#define MOECARD_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

struct tokenizer;

/* Flags of tokenizer_encode. */
#define TOKENIZER_ENC_ADD_SPECIAL 1u /* add BOS/EOS as tokenizer_config.json says */
#define TOKENIZER_ENC_SPLIT_SPECIAL                                                                \
	2u			  /* do not match special added tokens in the text (treat          \
				     "<｜begin▁of▁sentence｜>" in a text as plain text) */
#define TOKENIZER_ENC_NO_ADDED 4u /* match no added tokens at all, special or not */

/* Flags of tokenizer_decode and the streaming decoder. */
#define TOKENIZER_DEC_SKIP_SPECIAL 1u /* drop control tokens (tokenizer_token_is_control) */

/*
 * Loads a tokenizer. `path` is a directory holding tokenizer.json (and optionally
 * tokenizer_config.json) or the tokenizer.json file itself (tokenizer_config.json is then looked up
 * beside it). On error a one-line message naming the file and the field goes to err.
 * Errors: -ENOENT no tokenizer.json; -EINVAL malformed JSON or a bad field; -ENOTSUP a component
 * this implementation does not have (e.g. a WordPiece model or an NFKC normalizer); -ENOMEM.
 */
int tokenizer_load(const char *path, struct tokenizer **out, char *err, size_t errlen);

/* Frees a tokenizer (NULL is fine). */
void tokenizer_free(struct tokenizer *tok);

/*
 * Encodes len bytes of text (any bytes; see the file comment for invalid UTF-8) to token ids.
 * *ids is allocated with malloc (free it), *n_ids set; on error *ids is NULL and *n_ids 0.
 * Errors: -ENOMEM; -EOVERFLOW a regex hit a PCRE2 resource limit (pathological input).
 */
int tokenizer_encode(struct tokenizer *tok, const char *text, size_t len, unsigned flags,
		     int32_t **ids, size_t *n_ids);

/*
 * Decodes ids to UTF-8 text: the bytes of every token, with invalid UTF-8 sequences replaced by
 * U+FFFD (one per maximal invalid subpart, like Rust's String::from_utf8_lossy that `tokenizers`
 * uses). Ids that name no token (negative, or unused ids of a padded model vocab) decode to
 * nothing. *out is malloc'd and NUL-terminated; *out_len excludes the NUL.
 * Errors: -ENOMEM.
 */
int tokenizer_decode(const struct tokenizer *tok, const int32_t *ids, size_t n, unsigned flags,
		     char **out, size_t *out_len);

/* Number of ids the tokenizer knows: largest id + 1 (128815 for DeepSeek-V3). */
int32_t tokenizer_n_vocab(const struct tokenizer *tok);

/* BOS / EOS ids from tokenizer_config.json (bos_token / eos_token), or -1 when not set. */
int32_t tokenizer_bos_id(const struct tokenizer *tok);
int32_t tokenizer_eos_id(const struct tokenizer *tok);

/* The BOS token's content ("<｜begin▁of▁sentence｜>"), or "" when not set. */
const char *tokenizer_bos_str(const struct tokenizer *tok);

/*
 * The raw bytes of token `id` (a vocab token's bytes after the ByteLevel mapping is undone, or an
 * added token's content), or NULL for an unknown id. *len gets the byte count.
 */
const uint8_t *tokenizer_token_bytes(const struct tokenizer *tok, int32_t id, size_t *len);

/* The token's string as written in tokenizer.json ("Ġworld"), NUL-terminated, or NULL. */
const char *tokenizer_token_str(const struct tokenizer *tok, int32_t id);

/* 1 if id is an added token marked special, else 0. */
int tokenizer_token_is_special(const struct tokenizer *tok, int32_t id);

/* 1 if id is a control token that generated text does not show: an added token marked special,
 * or one of DeepSeek's chat-format tokens "<｜...｜>" (its tokenizer.json marks <｜User｜>,
 * <｜Assistant｜> and the tool-call tokens "special": false). TOKENIZER_DEC_SKIP_SPECIAL on a
 * stream skips these. */
int tokenizer_token_is_control(const struct tokenizer *tok, int32_t id);

/* The id of the token whose tokenizer.json string (or added-token content) is `s`, or -1. */
int32_t tokenizer_token_id(const struct tokenizer *tok, const char *s);

/*
 * Streaming decoder: feed generated ids one at a time and print what comes back. Bytes of a
 * multi-byte character split across tokens are held back until the character is complete; a
 * sequence that can no longer become valid is emitted as U+FFFD, so the concatenated output equals
 * tokenizer_decode of all the ids.
 */
struct tokenizer_stream {
	const struct tokenizer *tok; /* the tokenizer the ids come from */
	unsigned flags;		     /* TOKENIZER_DEC_* */
	uint8_t pend[4];	     /* held-back bytes of an incomplete UTF-8 character */
	uint8_t n_pend;		     /* count of pend[] bytes in use, 0..3 */
};

void tokenizer_stream_init(struct tokenizer_stream *s, const struct tokenizer *tok, unsigned flags);

/* Capacity (bytes) that an output buffer of tokenizer_stream_push / _flush must have. */
size_t tokenizer_stream_cap(const struct tokenizer *tok);

/*
 * Feeds one id; writes the text that became complete to out (NUL-terminated, *out_len bytes
 * without the NUL). Errors: -ENOSPC cap < tokenizer_stream_cap(tok).
 */
int tokenizer_stream_push(struct tokenizer_stream *s, int32_t id, char *out, size_t cap,
			  size_t *out_len);

/* Ends the stream: emits U+FFFD for held-back bytes of an unfinished character. Errors: -ENOSPC. */
int tokenizer_stream_flush(struct tokenizer_stream *s, char *out, size_t cap, size_t *out_len);

/*
 * Writes out_dir/tokenizer.json (+ tokenizer_config.json, copied from beside the source when
 * present) for a model with vocab_size rows. When vocab_size covers the source vocabulary the
 * source is copied. Otherwise a smaller valid byte-level BPE is derived: the added tokens (except
 * reserved "place▁holder" ones), the 256 byte tokens, and the highest-priority merges that fit,
 * renumbered in their original order to ids < vocab_size (so BOS 0 / EOS 1 keep their ids).
 * Errors: -EINVAL vocab_size too small for bytes + added tokens, or a bad source; -ENOENT;
 * -EIO write failure; -ENOMEM. err gets a one-line message naming the file and field.
 */
int tokenizer_write_for_vocab(const char *src_tokenizer_json, int vocab_size, const char *out_dir,
			      char *err, size_t errlen);

#endif
