#!/usr/bin/env python3
"""Turns documentation sources into plain English prose for training C3 from scratch.

    clean_docs.py OUT_DIR KIND:ROOT [KIND:ROOT ...]

KIND is `rst` (reStructuredText, e.g. the Linux kernel's Documentation sources) or `pod` (Perl's
documentation). Every source file becomes one document: its prose paragraphs, each reflowed onto
one line, separated by blank lines. What is not prose is dropped: headings' underlines, directives
and comments, tables, literal and indented blocks (code, shell sessions), POD commands, paragraphs
that are mostly symbols. Paragraphs seen before (anywhere) are dropped, so boilerplate repeated
across files is kept once; documents left with fewer than MIN_WORDS words are dropped.

Documents are split by a hash of their path (never by paragraph, so no document is on both sides):
about 95% train/, 2.5% valid/ (the training run's validation), 2.5% test/ (the held-out numbers).
Output names: SPLIT/KIND-NNNNN.txt; OUT_DIR/manifest.jsonl says which source each came from.
Only the Python standard library is used.
"""
import hashlib
import json
import os
import re
import sys

MIN_WORDS = 150
MIN_PARAGRAPH_WORDS = 8
UNDERLINE = re.compile(r"^([=\-~^\"'`*+#:.])\1{2,}\s*$")
RST_ROLE = re.compile(r":[a-zA-Z:]+:`([^`<]*?)(?:\s*<[^`]*>)?`")
RST_LINK = re.compile(r"`([^`<]+?)\s*<[^`]*>`_+")
RST_MARKUP = re.compile(r"(\*\*|\*|``|`)(\S(?:.*?\S)?)\1_?")
POD_CODE = re.compile(r"[A-Z]<<+\s+(.*?)\s+>>+|[A-Z]<([^<>]*)>")
POD_ESCAPE = re.compile(r"E<(\w+)>")  # before the other codes: E<gt> inside C<...> is a character
POD_ESCAPES = {"gt": ">", "lt": "<", "sol": "/", "verbar": "|", "quot": '"', "amp": "&", "apos": "'"}


def prose_ratio(text):
    letters = sum(c.isalpha() or c == " " for c in text)
    return letters / max(1, len(text))


def keep_paragraph(text):
    words = text.split()
    return (len(words) >= MIN_PARAGRAPH_WORDS and prose_ratio(text) > 0.85
            and not text.startswith(("$ ", "# ", "http")) and text.isascii())


# Directives whose indented body is prose (admonitions, API descriptions); any other directive's
# body (code, tables, figures, toctrees, C declarations) is skipped, as are comments.
PROSE_DIRECTIVES = {"note", "warning", "important", "attention", "caution", "tip", "hint", "danger", "admonition",
                    "function", "method", "class", "attribute", "data", "exception", "decorator", "classmethod",
                    "staticmethod", "abstractmethod", "coroutinefunction", "coroutinemethod", "describe", "glossary",
                    "topic", "sidebar", "option", "impl-detail", "availability"}
FIELD = re.compile(r"^:[\w -]+:(\s|$)")  # ":Authors: ..." (a role, ":ref:`x`", is prose)
DIRECTIVE = re.compile(r"^\s*\.\.\s+([\w:.-]+)::")


def rst_paragraphs(lines):
    """Prose paragraphs of an rst file, markup removed. Indented text is taken (directive bodies,
    block quotes, list continuations) unless it is a literal block (after '::', or the body of a
    code, table or similar directive), a doctest, or a directive's options."""
    paragraph, out = [], []
    literal_indent = None  # inside a literal block: the indentation that ends it
    pending_literal = False  # the last paragraph ended with '::'

    def flush():
        nonlocal pending_literal
        if paragraph:
            text = " ".join(paragraph)
            pending_literal = text.endswith("::")
            text = RST_LINK.sub(r"\1", text)
            text = RST_ROLE.sub(r"\1", text)
            for _ in range(2):
                text = RST_MARKUP.sub(r"\2", text)
            text = text.replace("\\", "")
            if text.endswith("::"):
                text = text[:-1]
            out.append(text)
            paragraph.clear()

    for line in lines:
        stripped = line.rstrip()
        if not stripped:
            flush()
            continue
        indent = len(stripped) - len(stripped.lstrip())
        body = stripped.strip()
        if literal_indent is not None:
            if indent > literal_indent:
                continue
            literal_indent = None
        if pending_literal and indent > 0 and not paragraph:
            literal_indent = indent - 1
            pending_literal = False
            continue
        if indent == 0:
            pending_literal = False
        directive = DIRECTIVE.match(stripped)
        if directive or body.startswith(".. ") or body == "..":
            flush()
            name = directive.group(1) if directive else ""
            if not directive or name.startswith(("c:", "cpp:")) or name.split(":")[-1] not in PROSE_DIRECTIVES:
                literal_indent = indent  # a comment, or a body that is not prose
            continue
        if FIELD.match(body) or body.startswith(("|", "+-", "+=", ">>>", "...")) or UNDERLINE.match(body) or \
                re.match(r"^(=+\s+)+=+$", body):
            flush()
            continue
        if re.match(r"^([-*+•]|\d+\.|#\.)\s", body):  # a list item starts a paragraph of its own
            flush()
            body = re.sub(r"^([-*+•]|\d+\.|#\.)\s+", "", body)
        paragraph.append(body)
    flush()
    # A heading is a one-line paragraph whose underline was removed: too short to keep anyway.
    return out


def pod_paragraphs(lines):
    """Ordinary POD paragraphs (not commands, not verbatim), formatting codes removed."""
    out, paragraph, in_pod = [], [], True

    def flush():
        if paragraph:
            text = " ".join(paragraph)
            text = POD_ESCAPE.sub(lambda m: POD_ESCAPES.get(m.group(1), chr(int(m.group(1), 0)) if m.group(1)[0].isdigit() else ""), text)
            for _ in range(3):
                text = POD_CODE.sub(lambda m: m.group(1) or m.group(2) or "", text)
            out.append(text)
            paragraph.clear()

    for line in lines:
        stripped = line.rstrip()
        if stripped.startswith("=cut"):
            flush()
            in_pod = False
            continue
        if stripped.startswith("="):
            flush()
            in_pod = True
            continue
        if not in_pod:
            continue
        if not stripped:
            flush()
            continue
        if stripped[0] in " \t":
            flush()
            continue
        paragraph.append(stripped.strip())
    flush()
    return out


PARSERS = {"rst": rst_paragraphs, "pod": pod_paragraphs}
SUFFIXES = {"rst": (".rst", ".rst.txt"), "pod": (".pod", ".pm")}


def split_of(relative):
    bucket = int(hashlib.sha256(relative.encode()).hexdigest(), 16) % 40
    return "valid" if bucket == 0 else "test" if bucket == 1 else "train"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_dir, sources = sys.argv[1], sys.argv[2:]
    seen, manifest, counts = set(), [], {"train": 0, "valid": 0, "test": 0}
    for source in sources:
        kind, root = source.split(":", 1)
        files = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "translations")  # other languages
            files += [os.path.join(folder, n) for n in sorted(names) if n.endswith(SUFFIXES[kind])]
        for path in files:
            with open(path, encoding="utf-8", errors="replace") as f:
                paragraphs = PARSERS[kind](f.read().splitlines())
            kept = []
            for text in paragraphs:
                key = hashlib.sha256(" ".join(text.lower().split()).encode()).digest()
                if keep_paragraph(text) and key not in seen:
                    seen.add(key)
                    kept.append(text)
            if sum(len(p.split()) for p in kept) < MIN_WORDS:
                continue
            relative = os.path.normpath(path)  # as given: run from the folder the sources are named from
            split = split_of(kind + ":" + relative)
            name = f"{kind}-{len(manifest):05d}.txt"
            os.makedirs(os.path.join(out_dir, split), exist_ok=True)
            with open(os.path.join(out_dir, split, name), "w", encoding="utf-8") as f:
                f.write("\n\n".join(kept) + "\n")
            manifest.append({"file": f"{split}/{name}", "source": f"{kind}:{relative}", "paragraphs": len(kept)})
            counts[split] += 1
    with open(os.path.join(out_dir, "manifest.jsonl"), "w", encoding="utf-8") as f:
        for row in manifest:
            f.write(json.dumps(row) + "\n")
    print(f"clean_docs: {counts['train']} train, {counts['valid']} valid, {counts['test']} test documents",
          file=sys.stderr)


if __name__ == "__main__":
    main()
