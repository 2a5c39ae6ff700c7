#!/usr/bin/env python3
"""Fails when a module includes a header of a module above it (docs/architecture.md).

Modules are the folders of src/ and include/excel/; each may include its own headers and those of
the modules below it, never above or beside it. Also checks that the fixture-dump code (stages)
is not part of excel_core. Usage: scripts/check_layers.py [REPO_ROOT]
"""
import pathlib
import re
import sys

# Lowest first. A module may include only modules to its left (and itself).
LAYERS = ["common", "comm", "metrics", "data", "model", "cache", "eval", "train", "stages", "apps"]
RANK = {m: i for i, m in enumerate(LAYERS)}
INCLUDE = re.compile(r'^\s*#\s*include\s+"excel/([a-z_]+)/', re.M)


def module_of(path: pathlib.Path, root: pathlib.Path) -> str:
    rel = path.relative_to(root).parts
    return rel[2] if rel[0] == "include" else rel[1]


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
    files = [p for p in (root / "src").rglob("*") if p.suffix in (".h", ".cpp")]
    files += [p for p in (root / "include" / "excel").rglob("*.h")]
    errors = []
    edges = set()
    for f in sorted(files):
        mod = module_of(f, root)
        if mod not in RANK:
            if f.parent != root / "src":  # src/pch.h sits at the top
                errors.append(f"{f.relative_to(root)}: module '{mod}' has no layer (add it to LAYERS)")
            continue
        for dep in INCLUDE.findall(f.read_text(errors="replace")):
            if dep == mod:
                continue
            edges.add((mod, dep))
            if dep not in RANK:
                errors.append(f"{f.relative_to(root)}: includes unknown module '{dep}'")
            elif RANK[dep] > RANK[mod]:
                errors.append(f"{f.relative_to(root)}: {mod} includes {dep}, a module above it "
                              f"(order: {' -> '.join(LAYERS)})")
            elif RANK[dep] == RANK[mod]:
                errors.append(f"{f.relative_to(root)}: {mod} includes its sibling {dep}")
    cmake = (root / "src" / "CMakeLists.txt").read_text()
    core = re.search(r"add_library\(excel_core\s+STATIC(.*?)\)", cmake, re.S)
    if core and "stages/" in core.group(1):
        errors.append("src/CMakeLists.txt: stages/ sources are part of excel_core (they belong to excel_stages)")
    for e in errors:
        print("check_layers:", e)
    print("check_layers: module graph: " + ", ".join(f"{a}->{b}" for a, b in sorted(edges, key=lambda e: (RANK.get(e[0], 99), RANK.get(e[1], 99)))))
    print(f"check_layers: {len(files)} files, {len(errors)} violation(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
