#!/usr/bin/env python3
"""The reference tokenizer's clean-up, pre-tokenisation and BPE, written for tests/tokenizer_reference_test.cpp.

Follows OpenAI CLIP's simple tokenizer (docs/algorithm.md §2.1) with the libraries it uses: ftfy
(optional: not packaged by Debian bookworm), html and the `regex` module (Debian python3-regex).

  clip_tokenizer_reference.py texts IN.json OUT.json [MERGES.txt.gz]
      IN: a JSON list of {"text", "fixed"}, "fixed" being the C++ side's ftfy step on "text".
      OUT: {"ftfy": bool, "results": [{"unescaped", "fixed", "clean", "pieces", "ids", "clean_fixed",
      "pieces_fixed", "ids_fixed"}]}: "unescaped" is html.unescape(text), "fixed" ftfy.fix_text(text),
      "clean"/"pieces"/"ids" the whole pipeline on text (these four null without ftfy); the
      "_fixed" ones the pipeline after ftfy on the given "fixed" (ids null without MERGES).
  clip_tokenizer_reference.py classes OUT.txt
      One character per code point U+0000..U+10FFFF: how the pattern treats it alone: 'L' (in a
      run of letters), 'N' (a number on its own), 'O' (in a run of other characters), '-'
      (skipped), '?' (unassigned in this Python's unicodedata, or a surrogate).
"""
import gzip
import html
import json
import sys
import unicodedata

try:
    import regex
except ImportError:
    print("SKIP: the Python module `regex` is absent (Debian python3-regex)")
    sys.exit(0)
try:
    import ftfy
except ImportError:
    ftfy = None

PATTERN = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                        regex.IGNORECASE)


def byte_symbols():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    symbols = {b: chr(b) for b in printable}
    extra = 256
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(extra)
            extra += 1
    order = printable + [b for b in range(256) if b not in printable]
    return symbols, order


class Bpe:
    """CLIP's vocabulary order and greedy lowest-rank merging, on a merge list in CLIP's format."""

    def __init__(self, path):
        lines = gzip.open(path, "rt", encoding="utf-8").read().split("\n")[1:]
        if lines and lines[-1] == "":
            lines.pop()
        lines = lines[:49152 - 256 - 2]
        merges = [tuple(line.split(" ")) for line in lines]
        self.symbols, order = byte_symbols()
        vocab = [self.symbols[b] for b in order]
        vocab += [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.ids = {v: i for i, v in enumerate(vocab)}
        self.rank = {m: i for i, m in enumerate(merges)}

    def word(self, piece):
        if piece in ("<|startoftext|>", "<|endoftext|>"):
            return [self.ids[piece]]
        syms = [self.symbols[b] for b in piece.encode("utf-8")]
        syms[-1] += "</w>"
        while len(syms) > 1:
            pairs = [(self.rank.get((a, b)), k) for k, (a, b) in enumerate(zip(syms, syms[1:]))]
            ranked = [p for p in pairs if p[0] is not None]
            if not ranked:
                break
            best = min(ranked)[0]
            first, second = next((syms[k], syms[k + 1]) for r, k in ranked if r == best)
            out, k = [], 0
            while k < len(syms):
                if k + 1 < len(syms) and syms[k] == first and syms[k + 1] == second:
                    out.append(first + second)
                    k += 2
                else:
                    out.append(syms[k])
                    k += 1
            syms = out
        return [self.ids[s] for s in syms]


def clean_fixed(text):
    text = html.unescape(html.unescape(text)).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


def pieces_and_ids(clean, bpe):
    pieces = PATTERN.findall(clean)
    ids = [i for p in pieces for i in bpe.word(p)] if bpe else None
    return pieces, ids


def texts_mode(in_path, out_path, merges):
    bpe = Bpe(merges) if merges else None
    results = []
    for case in json.load(open(in_path, encoding="utf-8")):
        text = case["text"]
        r = {"unescaped": html.unescape(text), "fixed": None, "clean": None, "pieces": None, "ids": None}
        r["clean_fixed"] = clean_fixed(case["fixed"])
        r["pieces_fixed"], r["ids_fixed"] = pieces_and_ids(r["clean_fixed"], bpe)
        if ftfy:
            r["fixed"] = ftfy.fix_text(text)
            r["clean"] = clean_fixed(r["fixed"])
            r["pieces"], r["ids"] = pieces_and_ids(r["clean"], bpe)
        results.append(r)
    json.dump({"ftfy": ftfy is not None, "results": results}, open(out_path, "w", encoding="utf-8"),
              ensure_ascii=True)


def classes_mode(out_path):
    out = []
    for cp in range(0x110000):
        c = chr(cp)
        if 0xD800 <= cp <= 0xDFFF or unicodedata.category(c) == "Cn":
            out.append("?")
            continue
        twice = PATTERN.findall(c + c)
        if not twice:
            out.append("-")
        elif twice == [c, c]:
            out.append("N")
        else:
            out.append("L" if PATTERN.findall("a" + c) == ["a" + c] else "O")
    open(out_path, "w").write("".join(out))


if __name__ == "__main__":
    if sys.argv[1] == "texts":
        texts_mode(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        classes_mode(sys.argv[2])
