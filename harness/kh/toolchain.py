"""Installs and checks the host toolchain (idempotent)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from .common import KhError, log, run, took, versions


def _missing_debs(pkgs: list[str]) -> list[str]:
    missing = []
    for p in pkgs:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                           text=True)
        if "install ok installed" not in r.stdout:
            missing.append(p)
    return missing


# Every host command that something of ours runs, by who runs it. install() checks them all
# after installing, so that a machine that lacks one fails here, naming it, and not a quarter
# of an hour later in the middle of a build; `make hostcheck` proves on a minimal bookworm
# (debootstrap --variant=minbase, plus HOST_PREREQS) that install() brings them all.
HOST_COMMANDS = {
    # harness/kh: upstream source, work tree, rootfs, guests
    "harness": ["apt-get", "apt-cache", "dpkg-deb", "dpkg-query", "git", "tar", "xz",
                "debootstrap", "chroot", "mount", "mkfs.ext4", "perl", "make",
                "qemu-system-x86_64"],
    # the kernel build (LLVM=-19, tinyconfig + our fragments, Rust) and its helpers
    "kbuild": ["ccache", "flex", "bison", "bc", "awk", "sed", "cpio", "zstd", "xz", "gzip",
               "perl", "python3", "rustc", "cargo", "rustfmt", "clippy-driver", "bindgen",
               "depmod", "gcc", "ld"],
    # tools/testing/selftests (lib.mk installs with rsync) and the guest programs
    "selftests": ["rsync", "gcc", "make", "install", "find"],
}
HOST_COMMANDS_LLVM = ["clang", "ld.lld", "llvm-link", "llvm-ar", "llvm-nm", "llvm-objcopy",
                      "llvm-strip", "llvm-readelf", "llvm-cxxfilt"]
HOST_COMMANDS_ARM64 = ["qemu-system-aarch64", "qemu-aarch64-static", "aarch64-linux-gnu-gcc"]
# What `make toolchain` itself needs before it can install anything: the documented host
# requirements (README), besides rustup's toolchain.
HOST_PREREQS = ["python3", "make", "ca-certificates"]


def needed_commands(bench: bool = False, arch: str = "x86_64") -> list[str]:
    v = versions()["toolchain"]
    llvms = [v["llvm"]] + ([v["bench_llvm"]] if bench else [])
    cmds = [c for group in HOST_COMMANDS.values() for c in group]
    cmds += [f"{t}{s}" for s in llvms for t in HOST_COMMANDS_LLVM]
    if arch == "arm64":
        cmds += HOST_COMMANDS_ARM64
    return sorted(set(cmds))


def cargo_bin() -> Path:
    return Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin"


def ensure_path() -> None:
    """Puts rustup's and cargo's binaries on PATH for the kernel build."""
    cb = str(cargo_bin())
    if cb not in os.environ.get("PATH", "").split(":"):
        os.environ["PATH"] = cb + ":" + os.environ.get("PATH", "")


def install(bench: bool = False, arch: str = "x86_64") -> None:
    """The tests' toolchain; with bench=True also the bench profiles' LLVM; for arm64 also
    QEMU's arm64 system and user emulators and gcc's arm64 cross compiler."""
    t0 = time.monotonic()
    v = versions()["toolchain"]
    ensure_path()
    missing = _missing_debs(v["apt"] + (v["bench_apt"] if bench else [])
                            + (v["arm64_apt"] if arch == "arm64" else []))
    if missing:
        if os.geteuid() != 0:
            raise KhError("missing Debian packages (run as root or install them): "
                          + " ".join(missing))
        log("installing Debian packages: " + " ".join(missing))
        run(["apt-get", "update", "-qq"])
        r = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                env={"DEBIAN_FRONTEND": "noninteractive"}, check=False, capture=True)
        if r.returncode != 0:
            still = _missing_debs(missing)
            raise KhError("could not install Debian packages: " + " ".join(still)
                          + "\n" + r.stdout[-2000:] + r.stderr[-2000:])
    if not shutil.which("rustc") or not shutil.which("rustup"):
        raise KhError("rustc/rustup not found: the kernel's Rust support needs the rustup "
                      "toolchain (https://rustup.rs is not reachable here; use the machine's)")
    r = run(["rustup", "component", "list", "--installed"], capture=True, quiet=True)
    if "rust-src" not in r.stdout:
        run(["rustup", "component", "add", "rust-src"])
    for comp, tool in (("rustfmt", "rustfmt"), ("clippy", "clippy-driver")):
        if not shutil.which(tool):
            run(["rustup", "component", "add", comp])
    want = v["bindgen"]
    have = ""
    if shutil.which("bindgen"):
        have = run(["bindgen", "--version"], capture=True, quiet=True).stdout.split()[-1]
    if have != want:
        log(f"installing bindgen-cli {want} from crates.io (have: {have or 'none'})")
        run(["cargo", "install", "--locked", "bindgen-cli", "--version", want])
    if time.monotonic() - t0 > 5:
        took(f"toolchain {arch}", time.monotonic() - t0)
    missing = [c for c in needed_commands(bench, arch) if not shutil.which(c)]
    if missing:
        raise KhError("not found after installing the toolchain: " + " ".join(missing)
                      + " (add their packages to versions.toml [toolchain])")
