#!/usr/bin/env python3
"""Fails when a comment or document cites algorithm notes the repository does not have.

Source comments cite the algorithm notes as `§4.3`, `§10.2`, ranges like `§4.1-4.3`, and the
reference code's quirks as "quirk N", all meaning docs/algorithm.md (quirk N is its §12.N).
This check fails (exit 1, one `file:line: problem` per finding) when
  * a tracked text file other than docs/algorithm.md names the external specification file
    (ALGORITHM.md) or a path into ../shared/spec;
  * a cited §N or §N.M is not the number of a heading of docs/algorithm.md (checked in every
    tracked text file, docs/algorithm.md's own cross-references included);
  * a "quirk N" outside docs/algorithm.md has no §12.N on the same or an adjacent line, so the
    reader could not find it.
Tracked files come from `git ls-files` (plus untracked, not ignored ones); without git, every
file under the root except build folders. Usage: scripts/check_doc_refs.py [REPO_ROOT]
"""
import pathlib
import re
import subprocess
import sys

DOC = "docs/algorithm.md"
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s")
# §N, §N.M, and ranges §A-B / §A–§B (both ends are checked).
CITE = re.compile(r"§\s*(\d+(?:\.\d+)*)(?:\s*[-–]\s*§?\s*(\d+(?:\.\d+)*))?")
QUIRK = re.compile(r"\bquirks?\s+(\d+(?:\s*(?:,|and|&)\s*\d+)*)", re.I)
EXTERNAL = [
    (re.compile(r"ALGORITHM\.md"), "names the external specification; cite docs/algorithm.md"),
    (re.compile(r"shared/spec\b"), "points into ../shared/spec; cite docs/algorithm.md"),
]
SKIP_DIRS = {".git", "demo_out", "__pycache__"}
SELF = "scripts/check_doc_refs.py"  # its patterns and messages name what it looks for


def listed_files(root: pathlib.Path):
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, text=True, check=True).stdout
        return sorted({p for p in out.splitlines() if p})
    except (OSError, subprocess.CalledProcessError):
        files = []
        for p in root.rglob("*"):
            rel = p.relative_to(root)
            if p.is_file() and not any(d in SKIP_DIRS or d.startswith("build") for d in rel.parts[:-1]):
                files.append(rel.as_posix())
        return sorted(files)


def read_text(path: pathlib.Path):
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    doc = read_text(root / DOC)
    if doc is None:
        print(f"{DOC}: missing; every § in the sources refers to it")
        return 1
    sections = {m.group(1) for line in doc.splitlines() if (m := HEADING.match(line))}
    errors = []
    cited = 0
    for rel in listed_files(root):
        if rel == SELF:
            continue
        path = root / rel
        text = read_text(path)
        if text is None:
            continue
        lines = text.splitlines()
        for n, line in enumerate(lines, 1):
            if rel != DOC:
                for pattern, why in EXTERNAL:
                    if pattern.search(line):
                        errors.append(f"{rel}:{n}: {why}")
            for m in CITE.finditer(line):
                for num in filter(None, m.groups()):
                    cited += 1
                    if num not in sections:
                        errors.append(f"{rel}:{n}: cites §{num}, which is not a heading of {DOC}")
            if rel == DOC:
                continue
            near = " ".join(lines[max(0, n - 2):n + 1])
            for m in QUIRK.finditer(line):
                for q in re.findall(r"\d+", m.group(1)):
                    if not re.search(r"§\s*12\." + q + r"(?!\d)", near):
                        errors.append(f"{rel}:{n}: 'quirk {q}' without its section (§12.{q} of {DOC})")
    for e in errors:
        print(e)
    if errors:
        print(f"{len(errors)} problem(s); sections of {DOC}: {len(sections)}")
        return 1
    print(f"doc references OK: {cited} § citations, all headings of {DOC} ({len(sections)} numbered sections)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
