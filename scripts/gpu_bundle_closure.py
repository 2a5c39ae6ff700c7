#!/usr/bin/env python3
"""Which Debian packages a GPU node lacks for the build: used by scripts/gpu_bundle.sh.

Reads the candidate versions from `apt-cache dumpavail` (run `apt-get update` first) and prints one
package name a line: the roots, plus the run-time dependency closure of every root, minus the
baseline (what a minimal node already has: Debian's `Priority: required` packages and the closure
of build-essential and python3) and minus EXCLUDE. A `-dev` root's own `-dev` dependencies are not
followed: their headers and static libraries are only for static linking, and the build links
shared libraries; a `-dev` package the build does read (a CMake config's find_dependency) is a root.
Alternatives take the first one installed on this machine, else the first that exists; a virtual
package takes its provider installed here, else its first provider.

usage: gpu_bundle_closure.py --roots A,B,... [--baseline X,Y,...] [--exclude P,Q,...]
"""
import argparse
import re
import subprocess
import sys


def read_archive():
    text = subprocess.run(["apt-cache", "dumpavail"], check=True, capture_output=True, text=True).stdout
    pkgs, provides = {}, {}
    for stanza in text.split("\n\n"):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        name = fields.get("Package")
        if not name:
            continue
        pkgs[name] = fields
        for prov in split_list(fields.get("Provides", "")):
            provides.setdefault(prov[0], []).append(name)
    return pkgs, provides


def split_list(field):
    """'a (>= 1) | b, c' -> [['a', 'b'], ['c']] (names only, arch qualifiers dropped)."""
    groups = []
    for group in field.split(","):
        names = [re.sub(r"\s*[\(\[<].*$", "", alt.strip()).split(":")[0] for alt in group.split("|")]
        names = [n for n in names if n]
        if names:
            groups.append(names)
    return groups


def installed_here():
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n"],
                         capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if len(line.split()) > 1 and line.split()[1] == "ii"}


class Resolver:
    def __init__(self):
        self.pkgs, self.provides = read_archive()
        self.installed = installed_here()

    def choose(self, alternatives):
        real = [a for a in alternatives if a in self.pkgs]
        for a in real:
            if a in self.installed:
                return a
        if real:
            return real[0]
        providers = [p for a in alternatives for p in self.provides.get(a, [])]
        for p in providers:
            if p in self.installed:
                return p
        return providers[0] if providers else None

    def deps(self, name):
        fields = self.pkgs[name]
        groups = split_list(fields.get("Pre-Depends", "")) + split_list(fields.get("Depends", ""))
        out = []
        for alts in groups:
            chosen = self.choose(alts)
            if chosen is None:
                sys.exit(f"gpu_bundle_closure: no package satisfies '{' | '.join(alts)}' (needed by {name})")
            out.append(chosen)
        return out

    def closure(self, roots, stop=frozenset(), skip_dev_deps_of=frozenset()):
        seen, todo = set(), list(roots)
        while todo:
            name = todo.pop()
            if name in seen or name in stop:
                continue
            if name not in self.pkgs:
                chosen = self.choose([name])
                if chosen is None:
                    sys.exit(f"gpu_bundle_closure: unknown package '{name}' (run apt-get update?)")
                name = chosen
                if name in seen or name in stop:
                    continue
            seen.add(name)
            for dep in self.deps(name):
                if name in skip_dev_deps_of and dep.endswith("-dev"):
                    continue
                todo.append(dep)
        return seen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--roots", required=True)
    ap.add_argument("--baseline", default="build-essential,python3")
    ap.add_argument("--exclude", default="")
    args = ap.parse_args()
    r = Resolver()
    required = [n for n, f in r.pkgs.items() if f.get("Priority") == "required"]
    baseline = r.closure(required + [b for b in args.baseline.split(",") if b])
    exclude = frozenset(e for e in args.exclude.split(",") if e)
    roots = [x for x in args.roots.split(",") if x]
    missing = [x for x in roots if r.choose([x]) is None]
    if missing:
        sys.exit(f"gpu_bundle_closure: unknown root package(s): {' '.join(missing)}")
    dev_roots = frozenset(r.choose([x]) for x in roots)
    needed = r.closure(roots, stop=frozenset(baseline) | exclude, skip_dev_deps_of=dev_roots)
    for name in sorted(needed):
        print(name)


if __name__ == "__main__":
    main()
