"""`make hostcheck`: proves that the toolchain step installs every host command we run.

"From an empty cache" is not "on a new machine": the host this runs on has whatever
earlier sessions installed by hand. So: a minimal Debian bookworm (debootstrap
--variant=minbase) plus only the documented prerequisites (toolchain.HOST_PREREQS), with
the machine's rustup toolchain bind-mounted (it cannot be fetched here), the host's apt
sources, and this repository read-only; in it `python3 -m kh toolchain --all` runs, then
every command of toolchain.needed_commands() (both architectures, the bench LLVM too) must
be found. The chroot is made anew each time under $KH_CACHE/hostcheck."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import toolchain
from .common import REPO, KhError, cache_dir, log, run

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/mounts") as f:
        return [line.split()[1] for line in f
                if (line.split()[1] + "/").startswith(prefix)]


def _umount_all(root: Path) -> None:
    for m in sorted(_mounts_under(root), key=len, reverse=True):
        run(["umount", "-l", m], check=False, quiet=True)
    left = _mounts_under(root)
    if left:
        raise KhError(f"could not unmount {', '.join(left)}: not removing {root}")


def _bind(src: Path, dst: Path, ro: bool = False) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    run(["mount", "--bind", str(src), str(dst)], quiet=True)
    if ro:
        run(["mount", "-o", "remount,bind,ro", str(dst)], quiet=True)


def run_check(missing_only: bool = False) -> int:
    if os.geteuid() != 0:
        raise KhError("make hostcheck needs root (debootstrap, chroot, mount)")
    toolchain.install()   # debootstrap on the host itself
    base = cache_dir() / "hostcheck"
    root = base / "root"
    if root.exists():
        _umount_all(root)
        shutil.rmtree(root)
    base.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap --variant=minbase {SUITE} into {root}")
    run(["debootstrap", "--variant=minbase", "--include=" + ",".join(toolchain.HOST_PREREQS),
         SUITE, str(root), MIRROR], capture=True)
    try:
        # The host's apt sources (bookworm-security has the bench LLVM) and DNS.
        for rel in ("etc/apt/sources.list", "etc/apt/sources.list.d"):
            src, dst = Path("/") / rel, root / rel
            if src.is_dir():
                shutil.rmtree(dst, ignore_errors=True)
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.disabled*"))
            elif src.exists():
                shutil.copy2(src, dst)
            elif dst.exists():
                dst.unlink()
        shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
        run(["mount", "-t", "proc", "proc", str(root / "proc")], quiet=True)
        _bind(Path("/dev"), root / "dev")
        home = Path.home()
        for d in (".rustup", ".cargo"):
            if (home / d).is_dir():
                _bind(home / d, root / "root" / d)
        _bind(REPO, root / "kh-src", ro=True)
        env = {"PATH": "/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                       "/sbin:/bin",
               "HOME": "/root", "KH_CACHE": "/tmp/kh-cache", "PYTHONDONTWRITEBYTECODE": "1",
               "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"}
        log("in the minimal bookworm: python3 -m kh toolchain --all")
        r = run(["chroot", str(root), "sh", "-c", "cd /kh-src/harness && "
                 "python3 -m kh toolchain --all"], env=env, check=False)
        cmds = toolchain.needed_commands(bench=True, arch="arm64")
        probe = run(["chroot", str(root), "sh", "-c",
                     'for c in "$@"; do command -v "$c" >/dev/null || echo "$c"; done', "sh",
                     *cmds], env=env, capture=True, quiet=True)
        missing = probe.stdout.split()
    finally:
        _umount_all(root)
    if missing:
        print("hostcheck: missing in the minimal bookworm after the toolchain step: "
              + " ".join(missing))
        return 1
    if r.returncode != 0:
        print(f"hostcheck: the toolchain step failed in the minimal bookworm (exit "
              f"{r.returncode})")
        return 1
    print(f"hostcheck: all {len(cmds)} host commands found in a minimal bookworm after "
          "the toolchain step")
    return 0
