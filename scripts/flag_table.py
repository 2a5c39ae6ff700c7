#!/usr/bin/env python3
"""The README's table of every flag of every tool, from the sources.

Reads each DEFINE_<type>(name, default, "help") and EXCEL_FLAG_RULE(name, "accepted", ...) in
src/apps, bench, data_tools and src/common/device.cpp, and writes one row per flag (tools that take it, default, meaning,
accepted values) between the "flags:begin" and "flags:end" markers of README.md.

  scripts/flag_table.py [REPO_ROOT]           check: fails when a flag is missing from the table, a
                                              row names no flag, or a row's tools or default differ
                                              from the sources (ctest flag_table_check); a changed
                                              meaning or accepted text is reported, not failed
  scripts/flag_table.py --write [REPO_ROOT]   rewrite the table
"""
import pathlib
import re
import sys

GROUPS = ["general", "data", "model", "train", "eval", "ckpt", "cache", "comm", "metrics", "fault", "bank", "bench"]
STR = r'"(?:[^"\\]|\\.)*"'
STRS = r"(?:" + STR + r"\s*)+"  # adjacent literals, as clang-format splits a long one
DEFINE = re.compile(r"\bDEFINE_(bool|int32|int64|uint64|double|string)\(\s*(\w+)\s*,\s*(" + STR + r"|[^,]+?)\s*,\s*(" + STRS + r")\s*\)", re.S)
RULE = re.compile(r"\bEXCEL_FLAG_RULE\(\s*(\w+)\s*,\s*(" + STRS + r")", re.S)
BEGIN, END = "<!-- flags:begin (scripts/flag_table.py --write) -->", "<!-- flags:end -->"
MPI_TOOLS = "MPI tools"


def unquote(s):
    s = s.strip()
    if not s.startswith('"'):
        return s
    parts = re.findall(STR, s)  # one or more adjacent literals
    return "".join(re.sub(r"\\(.)", lambda m: {"n": " ", "t": " "}.get(m.group(1), m.group(1)), p[1:-1]) for p in parts)


def group_of(name):
    for g in GROUPS[1:]:
        if name.startswith(g + "_"):
            return g
    return "general"


def calling(root, call):
    """Tools (src/apps, bench) whose source calls `call`."""
    out = []
    for p in sorted((root / "src/apps").glob("excel_*.cpp")) + sorted((root / "bench").glob("*.cpp")):
        if call in p.read_text():
            out.append(p.stem if p.parent.name == "apps" else tools_of(root, p)[0])
    return out


def tools_of(root, path):
    """Executables built from one source file (app_common.cpp: every tool that calls run_mpi_main;
    common/device.cpp: those and every tool that calls model::use_device_flags*)."""
    if path.name == "app_common.cpp":
        return sorted(p.stem for p in (root / "src/apps").glob("excel_*.cpp") if "run_mpi_main(" in p.read_text())
    if path.name == "device.cpp":
        return sorted(set(tools_of(root, root / "src/apps/app_common.cpp") + calling(root, "use_device_flags")))
    if path.parent.name == "apps":
        return [path.stem]
    cmake = (path.parent / "CMakeLists.txt").read_text()
    m = re.search(r"add_executable\((\w+)\s+" + re.escape(path.name) + r"\)", cmake)
    return [m.group(1) if m else path.stem]


def collect(root):
    """name -> {tool: (type, default, help, [accepted...])}"""
    flags = {}
    files = sorted((root / "src/apps").glob("*.cpp")) + sorted((root / "bench").glob("*.cpp")) + sorted((root / "data_tools").glob("*.cpp"))
    files.append(root / "src/common/device.cpp")  # --device, --model_precision, --model_kernels
    rules = []
    for f in files:
        text = f.read_text()
        tools = tools_of(root, f)
        for m in DEFINE.finditer(text):
            typ, name, default, help_ = m.group(1), m.group(2), m.group(3), unquote(m.group(4))
            default = unquote(default) if default.startswith('"') else default.strip()
            if re.fullmatch(r"[\d\s<>()*+-]+", default):  # 25 << 20 -> 26214400
                default = str(eval(default))
            for t in tools:
                flags.setdefault(name, {})[t] = [typ, default, help_, []]
        rules += [(m.group(1), unquote(m.group(2)), tools) for m in RULE.finditer(text)]
    for name, accepted, tools in rules:
        for t in tools:
            if name not in flags or t not in flags[name]:
                sys.exit(f"flag_table: EXCEL_FLAG_RULE for --{name} in {t}, which does not take it")
            flags[name][t][3].append(accepted)
    return flags


def tool_list(tools, mpi):
    tools = sorted(tools)
    if set(mpi) <= set(tools) and len(mpi) > 1:
        tools = [MPI_TOOLS] + [t for t in tools if t not in mpi]
    return ", ".join(tools)


def per_tool(values, mpi, fmt):
    """One text when every tool agrees, else 'text (tools); text (tools)'."""
    by = {}
    for tool, v in values.items():
        by.setdefault(v, []).append(tool)
    if len(by) == 1:
        return fmt(next(iter(by)))
    return "; ".join(f"{fmt(v)} ({tool_list(ts, mpi)})" for v, ts in sorted(by.items(), key=lambda kv: sorted(kv[1])))


def cell(s):
    return s.replace("|", "\\|").replace("\n", " ")


def default_text(typ, d):
    if typ == "string":
        return f'`"{d}"`' if d else "`\"\"`"
    return f"`{d}`"


def rows(root):
    flags = collect(root)
    mpi = tools_of(root, root / "src/apps/app_common.cpp")
    out = {}
    for name in sorted(flags, key=lambda n: (GROUPS.index(group_of(n)), n)):
        per = flags[name]
        tools = tool_list(per, mpi)
        default = per_tool({t: (v[0], v[1]) for t, v in per.items()}, mpi, lambda v: default_text(*v))
        meaning = per_tool({t: v[2] for t, v in per.items()}, mpi, lambda v: v)
        accepted = per_tool({t: "; ".join(v[3]) or "any" for t, v in per.items()}, mpi, lambda v: v)
        typ = per_tool({t: v[0] for t, v in per.items()}, mpi, lambda v: v)
        out[name] = [f"`--{name}`", cell(tools), cell(default), cell(f"{meaning} ({typ})"), cell(accepted)]
    return out


def table(root):
    lines = ["| flag | tools | default | meaning | accepted |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows(root).values()]
    return "\n".join(lines)


def readme_section(text):
    if BEGIN not in text or END not in text:
        sys.exit(f"flag_table: README.md has no {BEGIN} ... {END} section")
    a = text.index(BEGIN) + len(BEGIN)
    return a, text.index(END)


def main(argv):
    write = "--write" in argv
    args = [a for a in argv if a != "--write"]
    root = pathlib.Path(args[0] if args else pathlib.Path(__file__).resolve().parent.parent)
    readme = root / "README.md"
    text = readme.read_text()
    a, b = readme_section(text)
    if write:
        readme.write_text(text[:a] + "\n" + table(root) + "\n" + text[b:])
        print(f"flag_table: wrote {len(rows(root))} flags into {readme}")
        return 0
    want = rows(root)
    have = {}
    for line in text[a:b].splitlines():
        m = re.match(r"^\|\s*`--(\w+)`\s*\|", line)
        if m:
            have[m.group(1)] = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
    errors, notes = [], []
    for name, row in want.items():
        if name not in have:
            errors.append(f"--{name} ({row[1]}) is not in the README flag table")
            continue
        for i, what in ((1, "tools"), (2, "default")):
            if have[name][i] != row[i]:
                errors.append(f"--{name}: README says {what} {have[name][i]}, the sources {row[i]}")
        for i, what in ((3, "meaning"), (4, "accepted values")):
            if have[name][i] != row[i]:
                notes.append(f"--{name}: {what} differ from the sources")
    for name in have:
        if name not in want:
            errors.append(f"--{name} is in the README flag table but no tool defines it")
    for n in notes:
        print("note: " + n)
    for e in errors:
        print("FAIL: " + e)
    if errors or notes:
        print("(scripts/flag_table.py --write regenerates the table)")
    print(f"{len(want)} flags, {len(have)} table rows: " + ("FAIL" if errors else "ok"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
