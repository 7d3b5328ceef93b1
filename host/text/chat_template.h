/*
 * chat_template.h - the DeepSeek-V3 chat format: a conversation (system / user / assistant / tool
 * messages) rendered to the prompt text and token ids the model expects.
 *
 * Sits between the chat REPL / `moecard run --prompt` and host/tokenizer: messages ->
 * chat_template_render -> text -> tokenizer_encode -> ids. The strings follow the chat_template of
 * DeepSeek-V3's tokenizer_config.json (Jinja), checked against it in host/tests/test_tokenizer.c:
 *   bos + system prompts joined by "\n\n"
 *   + per user message:      "<｜User｜>" + content
 *   + per assistant message: "<｜Assistant｜>" + content + "<｜end▁of▁sentence｜>"
 *     (after tool outputs:   "<｜tool▁outputs▁end｜>" + content + "<｜end▁of▁sentence｜>")
 *   + per tool message:      "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" + content +
 *                            "<｜tool▁output▁end｜>" (later ones: "\n<｜tool▁output▁begin｜>"...)
 *   + "<｜tool▁outputs▁end｜>" if the conversation ends on tool output
 *   + "<｜Assistant｜>" when add_generation_prompt (and not after tool output).
 * Assistant messages that carry only tool_calls are not supported.
 */
#ifndef MOECARD_CHAT_TEMPLATE_H
#define MOECARD_CHAT_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

struct tokenizer;

/* One message of a conversation. */
struct chat_msg {
	const char *role;    /* "system", "user", "assistant" or "tool" */
	const char *content; /* UTF-8 text, NUL-terminated */
};

/* Flags of chat_template_encode. */
#define CHAT_TEMPLATE_LITERAL_CONTENT                                                              \
	1u /* message contents never produce added/special tokens                                  \
	      (a user typing "<｜Assistant｜>" gets plain text) */

/*
 * Renders msgs[0..n) to prompt text; bos is the BOS token's content (tokenizer_bos_str), may be "".
 * *out is malloc'd and NUL-terminated, *len its length without the NUL.
 * Errors: -EINVAL a NULL role/content or an unknown role; -ENOMEM.
 */
int chat_template_render(const struct chat_msg *msgs, size_t n, const char *bos,
			 int add_generation_prompt, char **out, size_t *len);

/*
 * Renders and tokenizes msgs[0..n) with tok (BOS comes from the template, none is added twice).
 * Without flags this equals tokenizer_encode of the rendered text, as Hugging Face's
 * apply_chat_template(tokenize=True) does. *ids is malloc'd.
 * Errors: -EINVAL as chat_template_render; -ENOMEM; the errors of tokenizer_encode.
 */
int chat_template_encode(struct tokenizer *tok, const struct chat_msg *msgs, size_t n,
			 int add_generation_prompt, unsigned flags, int32_t **ids, size_t *n_ids);

#endif
