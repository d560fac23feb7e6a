#!/usr/bin/env python3
"""Reports import cycles between the modules of Rust crates.

Usage: scripts/module_cycles.py [CRATE_DIR ...]   (default: every crate under crates/)

Why: a cycle between modules (a uses b, b uses a) means neither can be read, tested or moved
without the other; the wrapper's and the server's module maps are kept acyclic so that data
flows one way. `cargo` does not check this (modules of one crate may import each other freely),
so this script does, from the source text alone, with no build.

How it reads a crate: every file under `src/` is a module (`lib.rs`/`main.rs` the root,
`a.rs` or `a/mod.rs` the module `a`, `a/b.rs` the module `a::b`). An edge a -> b is any path in
a's code (comments and strings removed) that names an item of b: `use crate::b::X`,
`use super::X`, `use self::c::X`, a path written inline (`crate::b::X`, `b::X` where `b` is a
child module or was imported with `use crate::b`), and `use` groups (`use crate::{b, c::X}`).
A path is resolved to the module that *defines* the item: through the modules its segments
name, then through `pub use` re-exports (so `crate::link::ABSENT`, re-exported by `link` from
`absence`, is an edge to `absence`). A module's own children declared with `mod` are not edges
by declaration, only by use. Edges to the crate root (`lib.rs`, `main.rs`) count like any other.

Output: each strongly connected set of modules with more than one member, and the lines that
make its edges. Exit status 1 when any crate has a cycle, 0 otherwise.
"""

import os
import re
import signal
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_code(text):
    """Removes comments, string and char literals, keeping line numbers."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not re.match(r"\w", text[i - 1])):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a): only literals are removed.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"] (aliases dropped)."""
    tree = re.sub(r"\s+", "", tree)
    tree = re.sub(r"\bas" + IDENT, "", tree)  # after whitespace removal `x as y` is `xasy`
    depth, parts, start = 0, [], 0
    # split at top-level commas
    for i, ch in enumerate(tree):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(tree[start:i])
            start = i + 1
    parts.append(tree[start:])
    paths = []
    for part in parts:
        if not part:
            continue
        b = part.find("{")
        if b < 0:
            paths.append(part)
            continue
        prefix, inner = part[:b], part[b + 1:part.rfind("}")]
        for sub in expand_use(inner):
            paths.append(prefix + sub if sub != "self" else prefix.rstrip(":"))
    return paths


def strip_alias(raw_tree):
    """Removes `as NAME` aliases from a use tree (before whitespace is squeezed)."""
    return re.sub(r"\s+as\s+" + IDENT, "", raw_tree)


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}  # module path (tuple) -> file path
        for dirpath, _, names in os.walk(src):
            for name in names:
                if not name.endswith(".rs"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), src)
                parts = rel[:-3].split(os.sep)
                if parts[-1] == "mod":
                    parts = parts[:-1]
                if parts in (["lib"], ["main"]):
                    parts = []
                elif parts and parts[0] in ("bin",):
                    continue  # separate binary crates
                key = tuple(parts)
                if key == () and () in self.files:
                    # both lib.rs and main.rs: main.rs is another crate root; keep lib.rs
                    if name == "main.rs":
                        continue
                self.files[key] = os.path.join(dirpath, name)
        self.code = {}
        for mod, path in self.files.items():
            with open(path, encoding="utf-8") as f:
                self.code[mod] = strip_code(f.read())
        self.reexports = {m: self._reexports(m) for m in self.files}

    def children(self, mod):
        return {m[-1] for m in self.files if len(m) == len(mod) + 1 and m[:len(mod)] == mod}

    def _inline_mods(self, mod):
        """(start, end, name) of each inline `mod name { ... }` block of `mod`'s file."""
        code = self.code[mod]
        spans = []
        for m in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{", code):
            depth, j = 1, m.end()
            while j < len(code) and depth:
                depth += {"{": 1, "}": -1}.get(code[j], 0)
                j += 1
            spans.append((m.end(), j, m.group(1)))
        return spans

    def scope_at(self, mod, offset):
        """The module a position of `mod`'s file is in (inline `mod` blocks included)."""
        inner = [name for start, end, name in self._inline_mods(mod) if start <= offset < end]
        return mod + tuple(inner)

    def _uses(self, mod):
        """(line, is_pub, path, scope) for each path of each `use` item of `mod`."""
        code = self.code[mod]
        for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", code):
            line = code.count("\n", 0, m.start()) + 1
            scope = self.scope_at(mod, m.start())
            for p in expand_use(strip_alias(m.group(2))):
                yield line, bool(m.group(1)), p, scope

    def _reexports(self, mod):
        out = {}
        for _, is_pub, path, scope in self._uses(mod):
            if is_pub and scope == mod and not path.endswith("*"):
                out[path.split("::")[-1]] = path
        return out

    def resolve(self, mod, path, imported, seen=None):
        """The module that defines what `path` (as written in `mod`) names, or None."""
        segs = [s for s in path.split("::") if s]
        if not segs:
            return None
        if segs[0] == "crate":
            cur, segs = (), segs[1:]
        elif segs[0] == "super":
            cur = mod
            while segs and segs[0] == "super":
                cur, segs = cur[:-1], segs[1:]
        elif segs[0] == "self":
            cur, segs = mod, segs[1:]
        elif segs[0] in self.children(mod):
            cur = mod
        elif segs[0] in imported:
            cur, segs = imported[segs[0]], segs[1:]
        else:
            return None  # another crate, std, or a local item
        while segs and cur + (segs[0],) in self.files:
            cur, segs = cur + (segs[0],), segs[1:]
        if segs and segs[0] in self.reexports.get(cur, {}):
            seen = seen or set()
            if (cur, segs[0]) not in seen:
                seen.add((cur, segs[0]))
                target = self.resolve(cur, self.reexports[cur][segs[0]], self._imported(cur), seen)
                if target is not None:
                    return target
        return cur

    def _imported(self, mod):
        """Module names brought into scope by `use` (`use crate::compiler;`, `{self}`)."""
        out = {}
        for _, _, path, scope in self._uses(mod):
            if scope != mod:
                continue
            segs = path.split("::")
            if segs[0] not in ("crate", "super", "self"):
                continue
            target = self._module_of(mod, segs)
            if target is not None and target != () and target[-1] == segs[-1]:
                out[segs[-1]] = target
        return out

    def _module_of(self, mod, segs):
        if segs[0] == "crate":
            cur, rest = (), segs[1:]
        elif segs[0] == "super":
            cur, rest = mod, segs
            while rest and rest[0] == "super":
                cur, rest = cur[:-1], rest[1:]
        else:
            cur, rest = mod, segs[1:]
        for s in rest:
            if cur + (s,) in self.files:
                cur = cur + (s,)
            else:
                return None
        return cur

    def edges(self):
        """{(a, b): [line, ...]} for every a -> b with a != b."""
        out = {}
        for mod in self.files:
            imported = self._imported(mod)
            code = self.code[mod]
            found = []
            for line, _, path, scope in self._uses(mod):
                if path.endswith("*"):
                    path = path[:-3] + "::_glob"
                found.append((line, path, scope))
            # Inline paths outside `use` items.
            no_use = re.sub(r"\b(pub(?:\([^)]*\))?\s+)?use\s+[^;]+;", lambda m: "\n" * m.group(0).count("\n"), code)
            heads = {"crate", "super", "self"} | self.children(mod) | set(imported)
            for m in re.finditer(r"(?<![\w:])(" + IDENT + r")((?:::" + IDENT + r")+)", no_use):
                if m.group(1) in heads:
                    line = no_use.count("\n", 0, m.start()) + 1
                    found.append((line, m.group(0), self.scope_at(mod, m.start())))
            for line, path, scope in found:
                target = self.resolve(scope, path, imported)
                # Inside an inline module: a path to the file's own module is no edge.
                if target is not None and target[: len(mod)] == mod and len(target) > len(mod) and target not in self.files:
                    target = mod
                if target is None or target == mod:
                    continue
                out.setdefault((mod, target), []).append(line)
        return out


def cycles(nodes, edges):
    """Strongly connected components with more than one node (Tarjan)."""
    succ = {n: [] for n in nodes}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return comps


def name(mod):
    return "crate::" + "::".join(mod) if mod else "crate"


def check(crate_dir):
    src = os.path.join(crate_dir, "src")
    crate = Crate(src)
    edges = crate.edges()
    comps = cycles(list(crate.files), edges)
    label = os.path.basename(os.path.normpath(crate_dir))
    if not comps:
        print(f"{label}: {len(crate.files)} modules, {len(edges)} edges, no cycle")
        return True
    print(f"{label}: {len(comps)} cycle(s)")
    for comp in comps:
        members = set(comp)
        print("  cycle: " + ", ".join(name(m) for m in comp))
        for (a, b), lines in sorted(edges.items()):
            if a in members and b in members:
                rel = os.path.relpath(crate.files[a], crate_dir)
                shown = ",".join(str(n) for n in sorted(set(lines))[:6])
                print(f"    {name(a)} -> {name(b)}   ({rel}:{shown})")
    return False


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs = argv or sorted(
        os.path.join(root, "crates", d)
        for d in os.listdir(os.path.join(root, "crates"))
        if os.path.isdir(os.path.join(root, "crates", d, "src"))
    )
    ok = True
    for d in dirs:
        ok = check(d) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the listing quietly
    sys.exit(main(sys.argv[1:]))
