"""`make patches CHECK=1`: the exported series, patch by patch, as a maintainer would take it.

The series (out/series) is applied with `git am` onto pristine upstream in a worktree of its
own ($KH_CACHE/bisect/tree), and every commit is built: x86_64 with the Rust core off
(debug-c) and, from the patch that adds CONFIG_PERF_EVENTS_RUST_CORE on, on (debug-rust).
Build directories and ccache are the cache's, under bisect/, so a second run is incremental.
A commit that changes only selftests, documentation or MAINTAINERS is not built (and is named
as such). A commit that does not build fails the check, naming it and the build log's tail; so does one
whose build warns (clang, rustc) in a file that the series adds or changes up to that commit:
upstream's own warnings are not the series' to fix, its own are (a patch that warns is one a
maintainer sends back)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from . import build
from .common import KhError, cache_dir, log, run
from .upstream import git

ARCH = "x86_64"


def _wt(*args, check=True):
    return run(["git", "-C", str(cache_dir() / "bisect" / "tree"), *args], capture=True,
               check=check, quiet=True)


# clang: "<path>:<line>:<col>: warning: <text>"; rustc: "warning: <text>" and, a line or two
# later, "  --> <path>:<line>:<col>".
_CLANG_WARN = re.compile(r"^(?P<path>[^\s:]+):(?P<line>\d+):(?P<col>\d+): warning: (?P<text>.*)$")
_RUST_WARN = re.compile(r"^warning: (?P<text>.*)$")
_RUST_AT = re.compile(r"^\s*--> (?P<path>[^\s:]+):(?P<line>\d+):(?P<col>\d+)")


def warnings(log_text: str, tree: str) -> list[tuple[str, str]]:
    """(path relative to the tree, "path:line: text") for each compiler warning of a build
    log; rustc's summary lines ("N warnings emitted") have no location and are left out."""
    out = []
    lines = log_text.splitlines()
    prefix = tree.rstrip("/") + "/"

    def rel(path: str) -> str:
        return path[len(prefix):] if path.startswith(prefix) else path

    for i, line in enumerate(lines):
        m = _CLANG_WARN.match(line)
        if m:
            path = rel(m["path"])
            out.append((path, f"{path}:{m['line']}: {m['text']}"))
            continue
        m = _RUST_WARN.match(line)
        if m:
            for nxt in lines[i + 1:i + 4]:
                at = _RUST_AT.match(nxt)
                if at:
                    path = rel(at["path"])
                    out.append((path, f"{path}:{at['line']}: {m['text']}"))
                    break
    return out


# What a kernel build does not read: a patch that changes only these is not built (the
# selftests are built and run by make test, the documentation is not built here).
NOT_KERNEL = ("tools/", "Documentation/", "MAINTAINERS")


def builds_kernel(names: str) -> bool:
    """Whether a commit that changes these paths (one a line) changes what the kernel builds."""
    return any(not n.startswith(NOT_KERNEL) for n in names.split())


def check(patches: list[Path], first: int = 1) -> int:
    base = cache_dir() / "bisect"
    wt = base / "tree"
    if not (wt / ".git").exists():
        base.mkdir(parents=True, exist_ok=True)
        git("worktree", "prune")
        git("worktree", "add", "--detach", str(wt), "upstream")
    _wt("am", "--abort", check=False)
    _wt("checkout", "-q", "-f", "--detach", "upstream")
    _wt("clean", "-q", "-fdx")
    env_id = ["-c", "user.name=perf-rust", "-c", "user.email=perf-rust@localhost"]
    r = run(["git", "-C", str(wt), *env_id, "am", "-q", "--keep-cr", *map(str, patches)],
            capture=True, check=False, quiet=True)
    if r.returncode != 0:
        print(f"bisect: git am onto pristine upstream failed:\n{(r.stdout + r.stderr)[-2000:]}")
        return 1
    commits = _wt("rev-list", "--reverse", "upstream..HEAD").stdout.split()
    if len(commits) != len(patches):
        raise KhError(f"git am made {len(commits)} commits of {len(patches)} patches")
    results = []
    t0 = time.monotonic()
    if first > 1:
        print(f"bisect: patches 1-{first - 1} applied but not built (FROM={first})")
    skipped = []
    for i, (c, p) in enumerate(zip(commits, patches), 1):
        if i < first:
            continue
        if not builds_kernel(_wt("diff-tree", "--no-commit-id", "--name-only", "-r", c).stdout):
            skipped.append(p.name)
            continue
        _wt("checkout", "-q", "-f", c)
        has_option = "config PERF_EVENTS_RUST_CORE" in (wt / "init" / "Kconfig").read_text()
        for profile in ["debug-c"] + (["debug-rust"] if has_option else []):
            log(f"bisect {i}/{len(commits)} {p.name} {profile}")
            try:
                odir = build.build(wt, ARCH, profile, root=base / "build")
            except KhError as e:
                results.append((p.name, profile, str(e)[-1500:]))
                continue
            ours = set(_wt("diff", "--name-only", "upstream", c).stdout.split())
            warned = sorted({w for path, w in
                             warnings((odir / "kh-build.log").read_text(), str(wt))
                             if path in ours})
            results.append((p.name, profile, ("warnings in the series' files:\n"
                                              + "\n".join(warned)) if warned else None))
    bad = [(n, prof, e) for n, prof, e in results if e]
    for n, prof, e in bad:
        print(f"FAIL {n} ({prof}):\n    " + e.replace("\n", "\n    "))
    for n in skipped:
        print(f"not built: {n} (changes no kernel source: selftests, documentation)")
    built = f"patches {first}-{len(commits)}" if first > 1 else "every patch"
    built += f" but {len(skipped)} that change no kernel source" if skipped else ""
    print(f"bisect: {len(results) - len(bad)} of {len(results)} builds passed (built without "
          f"warnings in the series' files), {len(commits)} patches applied with git am onto "
          f"pristine upstream, {built} built ({time.monotonic() - t0:.0f}s)")
    return 1 if bad else 0
