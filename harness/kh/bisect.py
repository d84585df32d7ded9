"""`make patches CHECK=1`: the exported series, patch by patch, as a maintainer would take it.

The series (out/series) is applied with `git am` onto pristine upstream in a worktree of its
own ($KH_CACHE/bisect/tree), and every commit is built: x86_64 with the Rust core off
(debug-c) and, from the patch that adds CONFIG_PERF_EVENTS_RUST_CORE on, on (debug-rust).
Build directories and ccache are the cache's, under bisect/, so a second run is incremental.
A commit that does not build fails the check, naming it and the build log's tail."""

from __future__ import annotations

import time
from pathlib import Path

from . import build
from .common import KhError, cache_dir, log, run
from .upstream import git

ARCH = "x86_64"


def _wt(*args, check=True):
    return run(["git", "-C", str(cache_dir() / "bisect" / "tree"), *args], capture=True,
               check=check, quiet=True)


def check(patches: list[Path]) -> int:
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
    for i, (c, p) in enumerate(zip(commits, patches), 1):
        _wt("checkout", "-q", "-f", c)
        has_option = "config PERF_EVENTS_RUST_CORE" in (wt / "init" / "Kconfig").read_text()
        for profile in ["debug-c"] + (["debug-rust"] if has_option else []):
            log(f"bisect {i}/{len(commits)} {p.name} {profile}")
            try:
                build.build(wt, ARCH, profile, root=base / "build")
                results.append((p.name, profile, None))
            except KhError as e:
                results.append((p.name, profile, str(e)[-1500:]))
    bad = [(n, prof, e) for n, prof, e in results if e]
    for n, prof, e in bad:
        print(f"FAIL {n} ({prof}):\n    " + e.replace("\n", "\n    "))
    print(f"bisect: {len(results) - len(bad)} of {len(results)} builds passed, "
          f"{len(commits)} patches applied with git am onto pristine upstream "
          f"({time.monotonic() - t0:.0f}s)")
    return 1 if bad else 0
