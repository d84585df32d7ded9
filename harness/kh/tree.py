"""Materialises the delta (overlay + patch series) on top of upstream, and exports it.

The work tree is `tree/` in the cache. A run builds the wanted commits with a
temporary index (no files touched), then checks out the result: git rewrites only
the files that differ, so their mtimes, and the out-of-tree build, stay incremental.

Commits: `upstream` (pristine), then one commit per patch of `patches/series`, in
order. A new file of the series lives in `linux/` at its final content (that is where
people read and edit it) and enters the series in the patch that first needs it:
`patches/series` lists it under that patch as an indented `+ path` line. A later patch
may change such a file; its hunks for it are ordinary hunks of that patch. The file's
content after each patch is derived backwards from linux/: start from the final
content and undo the patches' hunks for it, last patch first. So an edit of linux/
goes into the patch that created the file, unless it touches lines that a later
patch's hunks need as context, which fails by name (then edit in the work tree and
`make refresh`).
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
AUTHOR = {"GIT_AUTHOR_NAME": "perf-rust", "GIT_AUTHOR_EMAIL": "perf-rust@localhost",
          "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
          "GIT_COMMITTER_NAME": "perf-rust", "GIT_COMMITTER_EMAIL": "perf-rust@localhost",
          "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


class Entry:
    """One patch of patches/series and the overlay files (relative paths) it creates."""

    def __init__(self, patch: Path, creates: list[str]):
        self.patch = patch
        self.creates = creates

    def __repr__(self):
        return f"Entry({self.patch.name}, {self.creates})"


def series_entries(patches: Path = PATCHES) -> list[Entry]:
    """patches/series in order: a patch name per line, each followed by the `+ path` lines
    of the overlay files it creates (comments and blank lines ignored)."""
    sf = patches / "series"
    if not sf.exists():
        return []
    out: list[Entry] = []
    for n, line in enumerate(sf.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("+"):
            if not out:
                raise KhError(f"patches/series:{n}: `{line}` before the first patch")
            out[-1].creates.append(line[1:].strip())
            continue
        p = patches / line
        if not p.exists():
            raise KhError(f"patches/series names {line}, which does not exist")
        out.append(Entry(p, []))
    return out


def series(patches: Path = PATCHES) -> list[Path]:
    """The patches of patches/series, in order."""
    return [e.patch for e in series_entries(patches)]


def overlay_files(overlay: Path = OVERLAY) -> list[Path]:
    return sorted(p for p in overlay.rglob("*") if p.is_file())


def _check_creates(entries: list[Entry], overlay: Path) -> None:
    """Every overlay file is created by exactly one patch, and every `+ path` exists."""
    have = {str(f.relative_to(overlay)) for f in overlay_files(overlay)}
    seen: dict[str, str] = {}
    for e in entries:
        for c in e.creates:
            if c in seen:
                raise KhError(f"patches/series: {c} is created by {seen[c]} and again by "
                              f"{e.patch.name}")
            seen[c] = e.patch.name
    missing = sorted(set(seen) - have)
    if missing:
        raise KhError("patches/series creates files that linux/ does not have: "
                      + ", ".join(missing))
    orphans = sorted(have - set(seen))
    if orphans:
        raise KhError("linux/ has files that no patch of patches/series creates (add a "
                      "`+ path` line under the patch that first needs each): "
                      + ", ".join(orphans))


def _touched(patch: Path) -> set[str]:
    """The paths a patch's diff touches (its `diff --git a/X b/X` lines)."""
    out = set()
    for line in patch.read_text().splitlines():
        if line.startswith("diff --git a/"):
            out.add(line.split(" b/", 1)[1] if " b/" in line else line[13:])
    return out


def overlay_states(entries: list[Entry], overlay: Path = OVERLAY) -> list[str]:
    """The overlay's tree (a git tree of the overlay files only) after each patch: the
    final content of linux/, with the later patches' hunks for overlay files undone."""
    _check_creates(entries, overlay)
    paths = {str(f.relative_to(overlay)) for f in overlay_files(overlay)}
    states: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git("read-tree", "--empty", env=env)
        files = overlay_files(overlay)
        blobs = git("hash-object", "-w", "--stdin-paths",
                    input="".join(f"{f}\n" for f in files)).stdout.split()
        git("update-index", "--add", "--index-info", env=env,
            input="".join(f"{'100755' if os.access(f, os.X_OK) else '100644'} {b}\t"
                          f"{f.relative_to(overlay)}\n" for f, b in zip(files, blobs)))
        present = set(paths)
        for e in reversed(entries):
            states.append(git("write-tree", env=env).stdout.strip())
            touched = _touched(e.patch)
            for c in e.creates:
                if c in touched:
                    raise KhError(f"{e.patch.name} creates {c} (patches/series) and also "
                                  "has hunks for it")
            mine = sorted(touched & paths)
            early = [m for m in mine if m not in present]
            if early:
                raise KhError(f"{e.patch.name} changes {', '.join(early)} before the patch "
                              "that creates it (patches/series)")
            if mine:
                r = git("apply", "--cached", "-R", "--whitespace=nowarn",
                        *[f"--include={m}" for m in mine], str(e.patch), env=env,
                        check=False)
                if r.returncode != 0:
                    raise KhError(
                        f"the hunks of {e.patch.name} for {', '.join(mine)} do not undo on "
                        "linux/'s content (a hand edit there touches lines they need); edit "
                        "in the work tree and `make refresh` instead:\n"
                        f"{(r.stderr or r.stdout).strip()}")
            if e.creates:
                git("update-index", "--force-remove", "--", *e.creates, env=env)
                present -= set(e.creates)
        left = git("ls-files", env=env).stdout.split()
        if left:
            raise KhError(f"overlay files left before the first patch: {left}")
    return list(reversed(states))


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


def build_commits(base: str = "upstream", overlay: Path = OVERLAY,
                  patches: Path = PATCHES) -> str:
    """Creates the delta commits on top of `base` without touching files; returns the tip."""
    entries = series_entries(patches)
    states = overlay_states(entries, overlay)
    paths = [str(f.relative_to(overlay)) for f in overlay_files(overlay)]
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git("read-tree", base, env=env)
        tip = git("rev-parse", base).stdout.strip()
        for e, state in zip(entries, states):
            # ls-tree's "mode type blob<TAB>path" lines are what --index-info reads.
            git("update-index", "--add", "--index-info", env=env,
                input=git("ls-tree", "-r", state).stdout)
            if _touched(e.patch) - set(paths):
                r = git("apply", "--cached", "--whitespace=nowarn",
                        *[f"--exclude={p}" for p in paths], str(e.patch), env=env,
                        check=False)
                if r.returncode != 0:
                    raise KhError(f"patch {e.patch.relative_to(patches.parent)} does not "
                                  f"apply:\n{(r.stderr or r.stdout).strip()}")
            msg, info = parse_patch_message(e.patch)
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
        log(f"work tree now at {tip[:12]} (upstream + {len(series())} patches)")
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


def _format_one(commit: str, number: int, exclude: list[str], outdir: Path) -> Path:
    """git format-patch of one commit, without the diffs of the paths in `exclude` (the
    files it creates: they enter through linux/). A commit that only creates files gives
    a patch with its message and no diff."""
    args = ["format-patch", "-q", "--no-signature", "--zero-commit", "--no-numbered",
            "--abbrev=9", "--start-number", str(number), "-o", str(outdir), f"{commit}^..{commit}"]
    before = set(outdir.glob("*.patch"))
    git(*args, "--", ".", *[f":(exclude){x}" for x in exclude])
    made = set(outdir.glob("*.patch")) - before
    if not made:
        git(*args)
        made = set(outdir.glob("*.patch")) - before
        (f,) = made
        text = f.read_text()
        cut = text.find("\n---\n")
        f.write_text(text[:cut + 5] if cut >= 0 else text)
    (f,) = made
    return f


def refresh(rev: str = "HEAD", overlay: Path = OVERLAY, patches: Path = PATCHES) -> None:
    """Copies commits of the work tree's repository (upstream..rev) back into the repo: new
    files into linux/ (at their content in rev), one patch per commit into patches/, and
    patches/series with, under each patch, the new files its commit creates."""
    if rev == "HEAD" and git("status", "--porcelain", "--untracked-files=no").stdout.strip():
        raise KhError("commit your changes in the work tree first")
    upstream_paths = set(git("ls-tree", "-r", "--name-only", "upstream").stdout.split("\n"))
    added = git("diff", "--name-only", "--diff-filter=A", "upstream", rev).stdout.split()
    commits = git("rev-list", "--reverse", f"upstream..{rev}").stdout.split()
    # Every path that upstream does not have is overlay territory; it must live to rev, so
    # that linux/ holds it: a file added and later removed or renamed has no home.
    touched = set(git("log", "--name-only", "--format=", f"upstream..{rev}").stdout.split())
    lost = sorted(p for p in touched if p not in upstream_paths and p not in added)
    if lost:
        raise KhError(f"new files that do not live to {rev} (squash their removal into the "
                      f"commit that adds them): {', '.join(lost)}")
    if overlay.exists():
        shutil.rmtree(overlay)
    for rel in added:
        dst = overlay / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        blob = run(["git", "-C", tree_dir(), "show", f"{rev}:{rel}"], capture=True, quiet=True)
        dst.write_bytes(blob.stdout.encode())
        mode = git("ls-tree", rev, "--", rel).stdout.split()[0]
        dst.chmod(0o755 if mode == "100755" else 0o644)
    for old in patches.glob("*.patch"):
        old.unlink()
    patches.mkdir(parents=True, exist_ok=True)
    lines = []
    for n, c in enumerate(commits, 1):
        creates = git("diff-tree", "--no-commit-id", "--name-only", "-r", "--diff-filter=A",
                      "--root", c).stdout.split()
        creates = sorted(x for x in creates if x not in upstream_paths)
        f = _format_one(c, n, creates, patches)
        lines.append(f.name + "\n" + "".join(f"  + {x}\n" for x in creates))
    (patches / "series").write_text("".join(lines))
    log(f"refreshed {len(added)} overlay files and {len(commits)} patches from {rev}")
