"""Installs and checks the host toolchain (idempotent)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .common import KhError, log, run, versions


def _missing_debs(pkgs: list[str]) -> list[str]:
    missing = []
    for p in pkgs:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                           text=True)
        if "install ok installed" not in r.stdout:
            missing.append(p)
    return missing


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
    llvms = [v["llvm"]] + ([v["bench_llvm"]] if bench else [])
    for tool in ([f"{t}{s}" for s in llvms for t in ("clang", "ld.lld", "llvm-link")]
                 + ["qemu-system-x86_64", "debootstrap", "mkfs.ext4"]
                 + (["qemu-system-aarch64", "qemu-aarch64-static", "aarch64-linux-gnu-gcc"]
                    if arch == "arm64" else [])):
        if not shutil.which(tool):
            raise KhError(f"{tool} not found after installing the toolchain")
