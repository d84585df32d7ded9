"""Materialises the delta (overlay + patch series) on top of upstream, and exports it.

The work tree is `tree/` in the cache. A run builds the wanted commits with a
temporary index (no files touched), then checks out the result: git rewrites only
the files that differ, so their mtimes, and the out-of-tree build, stay incremental.

Commits: `upstream` (pristine), one commit adding every file of `linux/` (new files
only: nothing is wired in yet, so it builds), then one commit per patch of
`patches/series`, in order.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .common import REPO, KhError, log, run
from .upstream import ensure_tree, git, tree_dir

OVERLAY = REPO / "linux"
PATCHES = REPO / "patches"
OVERLAY_SUBJECT = "perf/core: add the Rust perf core and its tests (new files)"
OVERLAY_BODY = """Add the new files of this series at once: the Rust perf core
(kernel/events/rust_core/), its C interface (kernel/events/rust_core.h),
Rust library code, documentation and tests. Nothing builds them yet; the
following patches wire them in behind CONFIG_PERF_EVENTS_RUST_CORE.

Signed-off-by: perf-rust <perf-rust@localhost>
"""
AUTHOR = {"GIT_AUTHOR_NAME": "perf-rust", "GIT_AUTHOR_EMAIL": "perf-rust@localhost",
          "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
          "GIT_COMMITTER_NAME": "perf-rust", "GIT_COMMITTER_EMAIL": "perf-rust@localhost",
          "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def series() -> list[Path]:
    """The patches of patches/series, in order (comments and blank lines ignored)."""
    sf = PATCHES / "series"
    if not sf.exists():
        return []
    out = []
    for line in sf.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            p = PATCHES / line
            if not p.exists():
                raise KhError(f"patches/series names {line}, which does not exist")
            out.append(p)
    return out


def overlay_files() -> list[Path]:
    return sorted(p for p in OVERLAY.rglob("*") if p.is_file())


def parse_patch_message(patch: Path) -> tuple[str, dict]:
    """Commit message and author of a git format-patch file (via git mailinfo)."""
    with tempfile.TemporaryDirectory() as tmp:
        msg, diff = Path(tmp) / "msg", Path(tmp) / "diff"
        r = run(["git", "mailinfo", "-b", msg, diff], capture=True, quiet=True,
                input=patch.read_text())
        body = msg.read_text() if msg.exists() else ""
    info = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(": ")
        info[k] = v
    subject = info.get("Subject", "").strip()
    if not subject:
        raise KhError(f"{patch.name}: no Subject: header (use git format-patch format)")
    return subject + "\n\n" + body, info


def _commit(index_env: dict, parent: str, message: str, author: dict | None = None) -> str:
    env = dict(index_env)
    env.update(AUTHOR)
    if author:
        if author.get("Author"):
            env["GIT_AUTHOR_NAME"] = author["Author"]
        if author.get("Email"):
            env["GIT_AUTHOR_EMAIL"] = author["Email"]
    tree = git("write-tree", env=env).stdout.strip()
    return git("commit-tree", tree, "-p", parent, "-m", message, env=env).stdout.strip()


def build_commits(base: str = "upstream") -> str:
    """Creates the delta commits on top of `base` without touching files; returns the tip."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git("read-tree", base, env=env)
        files = overlay_files()
        for f in files:
            rel = f.relative_to(OVERLAY)
            blob = git("hash-object", "-w", "--", f).stdout.strip()
            mode = "100755" if os.access(f, os.X_OK) else "100644"
            git("update-index", "--add", "--cacheinfo", f"{mode},{blob},{rel}", env=env)
        tip = git("rev-parse", base).stdout.strip()
        if files:
            tip = _commit(env, tip, OVERLAY_SUBJECT + "\n\n" + OVERLAY_BODY)
        for p in series():
            r = git("apply", "--cached", "--whitespace=nowarn", str(p), env=env, check=False)
            if r.returncode != 0:
                raise KhError(f"patch {p.relative_to(REPO)} does not apply:\n"
                              f"{(r.stderr or r.stdout).strip()}")
            msg, info = parse_patch_message(p)
            tip = _commit(env, tip, msg, info)
        return tip


def materialise() -> Path:
    """Brings the work tree to upstream + delta; returns its path."""
    ensure_tree()
    tip = build_commits()
    t = tree_dir()
    cur = git("rev-parse", "HEAD^{tree}", check=False).stdout.strip()
    new = git("rev-parse", f"{tip}^{{tree}}").stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    if dirty:
        raise KhError(f"the work tree {t} has uncommitted changes to tracked files; "
                      "commit them and run `make refresh`, or discard them "
                      "(git -C ... checkout -f)")
    git("checkout", "-q", "-f", "-B", "kh-delta", tip, capture=True)
    if cur != new:
        log(f"work tree now at {tip[:12]} (upstream + {len(series())} patches + overlay)")
    return t


def export(outdir: Path) -> list[Path]:
    """Exports upstream..kh-delta as a git format-patch series into outdir."""
    materialise()
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    git("format-patch", "-q", "--no-signature", "--zero-commit", "-o", str(outdir),
        "upstream..kh-delta")
    pats = sorted(outdir.glob("*.patch"))
    log(f"exported {len(pats)} patches to {outdir}")
    return pats


def check_export_applies(patches: list[Path]) -> tuple[bool, str]:
    """Applies an exported series to pristine upstream; True if it gives the same tree."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git("read-tree", "upstream", env=env)
        for p in patches:
            r = git("apply", "--cached", str(p), env=env, check=False)
            if r.returncode != 0:
                return False, f"{p.name} does not apply: {r.stderr.strip()}"
        got = git("write-tree", env=env).stdout.strip()
    want = git("rev-parse", "kh-delta^{tree}").stdout.strip()
    if got != want:
        return False, f"applied series gives tree {got}, the work tree is {want}"
    return True, f"{len(patches)} patches apply to upstream and give tree {got[:12]}"


def refresh(rev: str = "HEAD") -> None:
    """Copies commits of the work tree's repository (upstream..rev) back into the repo: new
    files into linux/, the rest into patches/ (one patch per commit)."""
    if rev == "HEAD" and git("status", "--porcelain", "--untracked-files=no").stdout.strip():
        raise KhError("commit your changes in the work tree first")
    added = git("diff", "--name-only", "--diff-filter=A", "upstream", rev).stdout.split()
    # Every path that upstream does not have is overlay territory, also one that a commit
    # added and a later one moved or removed: no patch may touch it.
    touched = set(git("log", "--name-only", "--format=", f"upstream..{rev}").stdout.split())
    upstream_paths = set(git("ls-tree", "-r", "--name-only", "upstream").stdout.split("\n"))
    new_paths = sorted(p for p in touched if p not in upstream_paths)
    if OVERLAY.exists():
        shutil.rmtree(OVERLAY)
    for rel in added:
        dst = OVERLAY / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        blob = run(["git", "-C", tree_dir(), "show", f"{rev}:{rel}"], capture=True, quiet=True)
        dst.write_bytes(blob.stdout.encode())
        mode = git("ls-tree", rev, "--", rel).stdout.split()[0]
        dst.chmod(0o755 if mode == "100755" else 0o644)
    for old in PATCHES.glob("*.patch"):
        old.unlink()
    PATCHES.mkdir(exist_ok=True)
    excl = [f":(exclude){a}" for a in new_paths]
    git("format-patch", "-q", "--no-signature", "--zero-commit", "--no-numbered", "-o",
        str(PATCHES), f"upstream..{rev}", "--", ".", *excl)
    pats = sorted(PATCHES.glob("*.patch"))
    kept = []
    for p in pats:
        if "\ndiff --git " not in p.read_text():
            p.unlink()
        else:
            kept.append(p)
    (PATCHES / "series").write_text("".join(p.name + "\n" for p in kept))
    log(f"refreshed {len(added)} overlay files and {len(kept)} patches from {rev}")
