"""Fetches the pinned upstream kernel source from Debian and keeps it as a git tree.

Everything lives in the cache: a private apt configuration (the host's sources stay
untouched), the downloaded .deb, and `tree/`, a git repository whose tag `upstream`
is the pristine source.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

from .common import KhError, Stamp, cache_dir, log, run, sha256_file, took, versions, warn

GIT_ID = ["-c", "user.name=kh", "-c", "user.email=kh@localhost", "-c", "commit.gpgsign=false"]


class PrivateApt:
    """apt-get/apt-cache with their own sources list, lists and cache under the cache dir."""

    def __init__(self, name: str = "apt", suites: list[str] | None = None):
        v = versions()["apt"]
        self.root = cache_dir() / name
        (self.root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        src = "".join(f"deb {v['mirror']} {s} main\n" for s in (suites or v["suites"]))
        sl = self.root / "sources.list"
        if not sl.exists() or sl.read_text() != src:
            sl.write_text(src)
            (self.root / "updated").unlink(missing_ok=True)

    def opts(self) -> list[str]:
        r = self.root
        return ["-o", f"Dir::Etc::sourcelist={r / 'sources.list'}",
                "-o", "Dir::Etc::sourceparts=/dev/null",
                "-o", f"Dir::State::Lists={r / 'lists'}",
                "-o", f"Dir::Cache={r / 'cache'}",
                "-o", "Debug::NoLocking=1",
                "-o", "APT::Sandbox::User=root"]

    def update(self, force: bool = False) -> None:
        if force or not (self.root / "updated").exists():
            r = run(["apt-get", *self.opts(), "-qq", "update"], check=False, capture=True)
            if r.returncode != 0:
                raise KhError("apt-get update of the private sources failed "
                              f"({versions()['apt']['mirror']} unreachable?):\n{r.stderr[-2000:]}")
            (self.root / "updated").write_text("ok\n")

    def versions_of(self, pkg: str) -> list[str]:
        r = run(["apt-cache", *self.opts(), "madison", pkg], capture=True, quiet=True,
                check=False)
        return [line.split("|")[1].strip() for line in r.stdout.splitlines() if "|" in line]

    def download(self, pkg: str, version: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        r = run(["apt-get", *self.opts(), "-qq", "download", f"{pkg}={version}"], cwd=dest,
                check=False, capture=True)
        if r.returncode != 0:
            raise KhError(f"cannot download {pkg}={version} from "
                          f"{versions()['apt']['mirror']}:\n{r.stderr[-2000:]}")
        debs = sorted(dest.glob(f"{pkg}_*.deb"))
        ver = version.split(":")[-1]
        for d in debs:
            # (apt-get download writes an epoch's ":" as "%3a": pkg_1%3a10.0.2_...)
            if f"_{ver}_" in d.name or f"%3a{ver}_" in d.name:
                return d
        raise KhError(f"downloaded {pkg}={version} but found no .deb in {dest}")


def pick_version(pinned: str, available: list[str], series: str) -> tuple[str, bool]:
    """The version to use: the pinned one, else the newest of the series (fallback=True)."""
    if pinned in available:
        return pinned, False
    same = [v for v in available if v.startswith(series + ".")]
    if not same:
        raise KhError(f"neither the pinned version {pinned} nor any {series}.x is in the archive "
                      f"(available: {', '.join(available) or 'none'})")

    def key(v: str):
        return [int(x) if x.isdigit() else x for x in re.split(r"[.\-~+]", v)]

    return sorted(same, key=key)[-1], True


def fetch_deb() -> tuple[Path, str]:
    """Downloads (or reuses) the pinned linux-source .deb and checks its sha256."""
    up = versions()["upstream"]
    dl = cache_dir() / "dl"
    name = f"{up['package']}_{up['version']}_all.deb"
    deb = dl / name
    if deb.exists() and sha256_file(deb) == up["sha256"]:
        return deb, up["version"]
    apt = PrivateApt()
    apt.update()
    avail = apt.versions_of(up["package"])
    if up["version"] not in avail:
        apt.update(force=True)
        avail = apt.versions_of(up["package"])
    version, fallback = pick_version(up["version"], avail, up["series"])
    deb = apt.download(up["package"], version, dl)
    digest = sha256_file(deb)
    if fallback:
        warn(f"{up['package']} {up['version']} has left the archive; using {version} "
             f"(sha256 {digest}). Pin it in versions.toml once the delta applies.")
    elif digest != up["sha256"]:
        deb.unlink()
        raise KhError(f"{name}: sha256 {digest} does not match the pinned {up['sha256']}")
    return deb, version


def tree_dir() -> Path:
    return cache_dir() / "tree"


def git(*args, capture=True, check=True, env=None, quiet=True, input=None):
    return run(["git", "-C", tree_dir(), *GIT_ID, *args], capture=capture, check=check,
               env=env, quiet=quiet, input=input)


def ensure_tree() -> str:
    """Makes sure the cache has a git tree whose `upstream` tag is the pristine source."""
    t0 = time.monotonic()
    deb, version = fetch_deb()
    stamp = Stamp(cache_dir() / "stamps" / "tree")
    key = deb.name
    t = tree_dir()
    if stamp.ok(key) and (t / ".git").exists():
        return version
    log(f"unpacking {deb.name} into {t}")
    if t.exists():
        shutil.rmtree(t)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        run(["dpkg-deb", "-x", deb, tmp])
        tars = list(Path(tmp).glob("usr/src/linux-source-*.tar.*"))
        if len(tars) != 1:
            raise KhError(f"{deb.name}: expected one source tarball, found {tars}")
        run(["tar", "-C", tmp, "-xf", tars[0]])
        tops = [p for p in Path(tmp).iterdir() if p.is_dir() and p.name.startswith("linux")]
        if len(tops) != 1:
            raise KhError(f"{tars[0].name}: expected one linux-* directory, found {tops}")
        shutil.move(str(tops[0]), t)
    run(["git", "init", "-q", "-b", "kh-work", str(t)], quiet=True)
    git("config", "core.autocrlf", "false")
    git("config", "gc.auto", "0")
    # Debian's tarball ships a .gitignore that ignores everything at the top: add with -f.
    git("add", "-A", "-f")
    git("commit", "-q", "-m", f"Linux {version} (Debian {deb.name})")
    git("tag", "-f", "upstream")
    took("upstream source", time.monotonic() - t0)
    stamp.set(key)
    return version
