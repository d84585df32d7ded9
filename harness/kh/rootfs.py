"""The guest's Debian userspace: debootstrap + Debian's unchanged perf, as an ext4 image."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from .common import REPO, KhError, Stamp, cache_dir, hash_paths, log, run, took, versions

GUEST = REPO / "guest"


# Debian's name of each architecture the harness boots.
DEB_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
BINFMT = Path("/proc/sys/fs/binfmt_misc")


def rootfs_key(arch: str = "x86_64") -> str:
    g = versions()["guest"]
    extra = repr(sorted(g.items())) + versions()["apt"]["mirror"]
    if arch != "x86_64":
        extra += " " + arch
    return hash_paths([], extra=extra)


def arch_suffix(arch: str) -> str:
    """Cache names of the x86_64 guest stay as they were before arm64 came."""
    return "" if arch == "x86_64" else f"-{arch}"


def binfmt_aarch64() -> None:
    """Lets the host run arm64 programs (debootstrap's second stage, apt and perf in the
    chroot) through qemu-user-static's binfmt_misc entry: mounts binfmt_misc if needed and
    registers the entry the package ships if it is not registered yet."""
    if not (BINFMT / "register").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT], capture=True)
    if (BINFMT / "qemu-aarch64").exists():
        return
    conf = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
    if not conf.exists():
        raise KhError(f"{conf} not found (Debian package qemu-user-static)")
    try:
        (BINFMT / "register").write_text(conf.read_text().strip())
    except OSError as e:
        raise KhError(f"cannot register qemu-aarch64 with binfmt_misc: {e}") from e


def ensure_rootfs_dir(arch: str = "x86_64") -> Path:
    """debootstrap (minbase) + linux-perf, cached by the [guest] pins. A foreign
    architecture is bootstrapped with --foreign and finished in the chroot through
    qemu-user-static."""
    g = versions()["guest"]
    mirror = versions()["apt"]["mirror"]
    base = cache_dir() / f"rootfs{arch_suffix(arch)}"
    d = base / "dir"
    stamp = Stamp(base / "stamp")
    key = rootfs_key(arch)
    if stamp.ok(key) and d.exists():
        return d
    if d.exists():
        shutil.rmtree(d)
    base.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    log(f"building the {arch} guest rootfs: debootstrap {g['suite']} + {g['perf_package']} "
        f"{g['perf_version']}")
    if arch == "x86_64":
        run(["debootstrap", "--variant=minbase", g["suite"], d, mirror], capture=True)
    else:
        binfmt_aarch64()
        run(["debootstrap", "--variant=minbase", f"--arch={DEB_ARCH[arch]}", "--foreign",
             g["suite"], d, mirror], capture=True)
        r = run(["chroot", d, "/debootstrap/debootstrap", "--second-stage"], capture=True,
                check=False)
        if r.returncode != 0:
            raise KhError(f"{arch} rootfs: debootstrap's second stage failed under "
                          f"qemu-user-static:\n{(r.stdout + r.stderr)[-2000:]}")
    (d / "etc/apt/sources.list").write_text(
        f"deb {mirror} {g['suite']} main\ndeb {mirror} {g['perf_suite']} main\n")
    shutil.copy("/etc/resolv.conf", d / "etc/resolv.conf")
    pkgs = [f"{g['perf_package']}={g['perf_version']}", *g["packages"]]
    env = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    run(["chroot", d, "apt-get", "-qq", "update"], env=env, capture=True)
    r = run(["chroot", d, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs],
            env=env, capture=True, check=False)
    if r.returncode != 0:
        raise KhError(f"guest rootfs: cannot install {' '.join(pkgs)} from {mirror} "
                      f"({g['perf_suite']}):\n{r.stdout[-1500:]}{r.stderr[-1500:]}")
    run(["chroot", d, "apt-get", "clean"], env=env, capture=True)
    perf = run(["chroot", d, "perf", "--version"], capture=True, check=False)
    if perf.returncode != 0:
        raise KhError(f"guest rootfs: perf does not run: {perf.stdout}{perf.stderr}")
    log(f"guest perf: {perf.stdout.strip()}")
    took(f"rootfs {arch}", time.monotonic() - t0)
    stamp.set(key)
    return d


def ensure_image(arch: str = "x86_64") -> Path:
    """An ext4 image of the rootfs plus our init (guest/init), rebuilt when either changes."""
    d = ensure_rootfs_dir(arch)
    img = cache_dir() / "images" / f"rootfs{arch_suffix(arch)}.ext4"
    stamp = Stamp(img.with_suffix(".stamp"))
    key = hash_paths([GUEST / "init"], extra=rootfs_key(arch))
    if stamp.ok(key) and img.exists():
        return img
    shutil.copy(GUEST / "init", d / "sbin" / "kh-init")
    (d / "sbin" / "kh-init").chmod(0o755)
    img.parent.mkdir(parents=True, exist_ok=True)
    img.unlink(missing_ok=True)
    run(["mkfs.ext4", "-q", "-F", "-L", "khroot", "-d", d, img, "2G"], capture=True)
    stamp.set(key)
    return img


def make_payload(src: Path, img: Path) -> Path:
    """An ext4 image holding the test payload directory (scripts, test binaries)."""
    img.parent.mkdir(parents=True, exist_ok=True)
    img.unlink(missing_ok=True)
    size_mb = 64 + sum(p.stat().st_size for p in src.rglob("*") if p.is_file()) // (1 << 20) * 2
    run(["mkfs.ext4", "-q", "-F", "-L", "khpayload", "-d", src, img, f"{size_mb}M"],
        capture=True)
    return img
