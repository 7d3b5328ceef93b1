/*
 * chat_template.c - DeepSeek-V3 chat format (see chat_template.h): conversation -> prompt text /
 * token ids. A hand translation of the Jinja chat_template in DeepSeek-V3's tokenizer_config.json,
 * including its quirks (system prompts are hoisted to the front; the "first tool output" state is
 * never reset).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "text/chat_template.h"
#include "text/tokenizer.h"

#define CT_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define CT_ASSISTANT                                                                               \
	"<\xef\xbd\x9c"                                                                            \
	"Assistant\xef\xbd\x9c>"
#define CT_EOS                                                                                     \
	"<\xef\xbd\x9c"                                                                            \
	"end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define CT_OUTS_BEGIN                                                                              \
	"<\xef\xbd\x9ctool\xe2\x96\x81outputs\xe2\x96\x81"                                         \
	"begin\xef\xbd\x9c>"
#define CT_OUTS_END                                                                                \
	"<\xef\xbd\x9ctool\xe2\x96\x81outputs\xe2\x96\x81"                                         \
	"end\xef\xbd\x9c>"
#define CT_OUT_BEGIN                                                                               \
	"<\xef\xbd\x9ctool\xe2\x96\x81output\xe2\x96\x81"                                          \
	"begin\xef\xbd\x9c>"
#define CT_OUT_END                                                                                 \
	"<\xef\xbd\x9ctool\xe2\x96\x81output\xe2\x96\x81"                                          \
	"end\xef\xbd\x9c>"

/* One rendered piece: template markup (added tokens) or text (contents, separators). */
struct ct_part {
	const char *s; /* bytes, not owned */
	size_t n;      /* byte count */
	bool text; /* true: message content or plain separator; false: template special tokens */
};

struct ct_parts {
	struct ct_part *v; /* [cap] */
	size_t n, cap;	   /* used / allocated entries */
};

static int part_add(struct ct_parts *p, const char *s, bool text)
{
	if (p->n == p->cap) {
		size_t nc = p->cap ? 2 * p->cap : 16;
		struct ct_part *nv = realloc(p->v, nc * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		p->v = nv;
		p->cap = nc;
	}
	p->v[p->n++] = (struct ct_part){s, strlen(s), text};
	return 0;
}

/* Lays the conversation out as parts, following the Jinja template line by line. */
static int ct_layout(const struct chat_msg *m, size_t n, const char *bos, int add_gen,
		     struct ct_parts *p)
{
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (!m[i].role || !m[i].content)
			return -EINVAL;
		if (strcmp(m[i].role, "system") && strcmp(m[i].role, "user") &&
		    strcmp(m[i].role, "assistant") && strcmp(m[i].role, "tool"))
			return -EINVAL;
	}
	if (bos && *bos)
		rc = part_add(p, bos, false);
	bool first_sp = true;
	for (size_t i = 0; i < n && !rc; i++) {
		if (strcmp(m[i].role, "system"))
			continue;
		if (!first_sp)
			rc = part_add(p, "\n\n", true);
		if (!rc)
			rc = part_add(p, m[i].content, true);
		first_sp = false;
	}
	bool is_tool = false, is_output_first = true;
	for (size_t i = 0; i < n && !rc; i++) {
		const char *r = m[i].role, *c = m[i].content;
		if (!strcmp(r, "user")) {
			is_tool = false;
			if (!(rc = part_add(p, CT_USER, false)))
				rc = part_add(p, c, true);
		} else if (!strcmp(r, "assistant")) {
			rc = part_add(p, is_tool ? CT_OUTS_END : CT_ASSISTANT, false);
			if (!rc)
				rc = part_add(p, c, true);
			if (!rc)
				rc = part_add(p, CT_EOS, false);
			is_tool = false;
		} else if (!strcmp(r, "tool")) {
			is_tool = true;
			if (is_output_first) {
				rc = part_add(p, CT_OUTS_BEGIN CT_OUT_BEGIN, false);
				is_output_first = false;
			} else {
				if (!(rc = part_add(p, "\n", true)))
					rc = part_add(p, CT_OUT_BEGIN, false);
			}
			if (!rc)
				rc = part_add(p, c, true);
			if (!rc)
				rc = part_add(p, CT_OUT_END, false);
		}
	}
	if (!rc && is_tool)
		rc = part_add(p, CT_OUTS_END, false);
	if (!rc && add_gen && !is_tool)
		rc = part_add(p, CT_ASSISTANT, false);
	return rc;
}

static char *ct_join(const struct ct_part *v, size_t n, size_t *len)
{
	size_t l = 0;
	for (size_t i = 0; i < n; i++)
		l += v[i].n;
	char *s = malloc(l + 1);
	if (!s)
		return NULL;
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(s + w, v[i].s, v[i].n);
		w += v[i].n;
	}
	s[w] = 0;
	*len = w;
	return s;
}

int chat_template_render(const struct chat_msg *msgs, size_t n, const char *bos,
			 int add_generation_prompt, char **out, size_t *len)
{
	struct ct_parts p = {0};
	*out = NULL;
	*len = 0;
	int rc = ct_layout(msgs, n, bos, add_generation_prompt, &p);
	if (!rc && !(*out = ct_join(p.v, p.n, len)))
		rc = -ENOMEM;
	free(p.v);
	return rc;
}

int chat_template_encode(struct tokenizer *tok, const struct chat_msg *msgs, size_t n,
			 int add_generation_prompt, unsigned flags, int32_t **ids, size_t *n_ids)
{
	struct ct_parts p = {0};
	*ids = NULL;
	*n_ids = 0;
	int rc = ct_layout(msgs, n, tokenizer_bos_str(tok), add_generation_prompt, &p);
	if (rc)
		goto out;
	if (!(flags & CHAT_TEMPLATE_LITERAL_CONTENT)) {
		size_t len;
		char *s = ct_join(p.v, p.n, &len);
		rc = s ? tokenizer_encode(tok, s, len, 0, ids, n_ids) : -ENOMEM;
		free(s);
		goto out;
	}
	/* Runs of text parts are encoded with no added-token matching, markup parts normally; the
	 * added tokens of the markup split the text there anyway, so with contents free of special
	 * strings this gives the same ids as the flag-less path. */
	size_t cap = 256, cnt = 0;
	int32_t *acc = malloc(cap * sizeof *acc);
	if (!acc) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < p.n && !rc;) {
		size_t j = i + 1;
		while (j < p.n && p.v[j].text == p.v[i].text)
			j++;
		size_t len;
		char *s = ct_join(p.v + i, j - i, &len);
		int32_t *part;
		size_t np;
		rc = s ? tokenizer_encode(tok, s, len, p.v[i].text ? TOKENIZER_ENC_NO_ADDED : 0,
					  &part, &np)
		       : -ENOMEM;
		free(s);
		if (!rc) {
			if (cnt + np > cap) {
				while (cnt + np > cap)
					cap *= 2;
				int32_t *na = realloc(acc, cap * sizeof *na);
				if (!na)
					rc = -ENOMEM;
				else
					acc = na;
			}
			if (!rc) {
				memcpy(acc + cnt, part, np * sizeof *part);
				cnt += np;
			}
			free(part);
		}
		i = j;
	}
	if (rc) {
		free(acc);
		goto out;
	}
	*ids = acc;
	*n_ids = cnt;
out:
	free(p.v);
	return rc;
}
