"""Kernel configuration and out-of-tree builds (LLVM, ccache) in the cache."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from .common import REPO, KhError, Stamp, cache_dir, hash_paths, log, run, took, versions
from .toolchain import ensure_path

CONFIGS = REPO / "configs"

# A profile is <kind>-<core>: kind selects debug or bench options, core the perf core.
KINDS = {"debug": ["debug.config"], "bench": ["bench.config"],
         "stress": ["debug.config", "kasan.config", "detectors.config"],
         "kcsan": ["debug.config", "kcsan.config", "detectors.config"]}
CORES = {"rust": ["rust-core.config"], "c": ["c-core.config"]}
# The architectures the harness builds and boots (x86_64 natively, arm64 cross-built).
ARCHES = ("x86_64", "arm64")


def fragments(arch: str, profile: str) -> list[Path]:
    kind, _, core = profile.partition("-")
    if kind not in KINDS or core not in CORES:
        raise KhError(f"unknown profile {profile!r}: use one of "
                      + ", ".join(f"{k}-{c}" for k in KINDS for c in CORES))
    if arch not in ARCHES:
        raise KhError(f"unknown architecture {arch!r}: use one of {', '.join(ARCHES)}")
    return ([CONFIGS / "common.config", CONFIGS / f"{arch}-base.config"]
            + [CONFIGS / f for f in KINDS[kind] + CORES[core]])


def build_dir(arch: str, profile: str, root: Path | None = None) -> Path:
    """<root>/<arch>-<profile>; root defaults to the cache's build/."""
    return (root or cache_dir() / "build") / f"{arch}-{profile}"


def llvm_suffix(profile: str) -> str:
    """LLVM=… of a profile: bench kernels use the LLVM of rustc's major version (see
    versions.toml), the others bookworm's."""
    kind = profile.partition("-")[0]
    tc = versions()["toolchain"]
    return tc["bench_llvm"] if kind == "bench" else tc["llvm"]


def profile_of(odir: Path) -> str:
    """The profile of a build directory named <arch>-<profile> (see build_dir)."""
    for arch in ARCHES:
        if odir.name.startswith(arch + "-"):
            return odir.name[len(arch) + 1:]
    raise KhError(f"{odir} is not a build directory of the harness")


def arch_of(odir: Path) -> str:
    """The architecture of a build directory named <arch>-<profile> (see build_dir)."""
    for arch in ARCHES:
        if odir.name.startswith(arch + "-"):
            return arch
    raise KhError(f"{odir} is not a build directory of the harness")


def make_args(arch: str, odir: Path) -> list[str]:
    llvm = llvm_suffix(profile_of(odir))
    args = ["make", f"LLVM={llvm}", f"O={odir}", f"-j{os.cpu_count() or 2}"]
    if shutil.which("ccache"):
        args.append(f"CC=ccache clang{llvm}")
    if arch != "x86_64":
        args.append(f"ARCH={arch}")
    return args


def make_env(odir: Path) -> dict:
    # bindgen loads libclang at run time and would pick the newest installed one: pin it
    # to the LLVM the profile builds with.
    libclang = f"/usr/lib/llvm{llvm_suffix(profile_of(odir))}/lib"
    return {"CCACHE_DIR": str(cache_dir() / "ccache"), "KBUILD_BUILD_TIMESTAMP": "kh",
            "KBUILD_BUILD_USER": "kh", "KBUILD_BUILD_HOST": "kh", "LIBCLANG_PATH": libclang}


def parse_fragment(path: Path) -> dict[str, str]:
    """CONFIG_X -> value ('n' for '# CONFIG_X is not set') of a config fragment."""
    opts = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^(CONFIG_\w+)=(.*)$", line)
        if m:
            opts[m.group(1)] = m.group(2)
            continue
        m = re.match(r"^# (CONFIG_\w+) is not set$", line)
        if m:
            opts[m.group(1)] = "n"
    return opts


def check_config(config: Path, frags: list[Path], absent: frozenset = frozenset()) -> list[str]:
    """Options requested by the fragments that the final .config does not have (except the
    options in `absent`: those the tree does not define yet, see configure())."""
    final = parse_fragment(config)
    bad = []
    for f in frags:
        for k, v in parse_fragment(f).items():
            if k in absent:
                continue
            got = final.get(k, "n")
            if got != v:
                bad.append(f"{k}={v} (from {f.name}) ended up as {got}")
    return bad


# Options of our fragments that our own series adds to init/Kconfig: a tree in the middle of
# the series (make patches CHECK=1) may not define them yet, and is built without them.
SERIES_OPTIONS = ("PERF_EVENTS_RUST_CORE", "PERF_EVENTS_TEST_PMUS")


def undefined_options(tree: Path) -> frozenset:
    kconfig = (tree / "init" / "Kconfig").read_text()
    return frozenset(f"CONFIG_{o}" for o in SERIES_OPTIONS
                     if not re.search(rf"^config {o}$", kconfig, re.M))


def configure(tree: Path, arch: str, profile: str, root: Path | None = None) -> Path:
    odir = build_dir(arch, profile, root)
    odir.mkdir(parents=True, exist_ok=True)
    frags = fragments(arch, profile)
    stamp = Stamp(odir / ".kh-config-key")
    key = hash_paths(frags + [tree / "init" / "Kconfig", tree / "kernel" / "events" / "Makefile"],
                     extra=versions()["upstream"]["version"])
    if stamp.ok(key) and (odir / ".config").exists():
        return odir
    ensure_path()
    env = make_env(odir)
    base = [a for a in make_args(arch, odir) if not a.startswith("-j")]
    tmp = odir / ".config.kh-new"
    # Generate into a scratch file so that an unchanged result leaves .config's mtime alone.
    cfg_env = dict(env, KCONFIG_CONFIG=str(tmp))
    run([*base, "-C", tree, "tinyconfig"], env=cfg_env, capture=True)
    run([tree / "scripts" / "kconfig" / "merge_config.sh", "-m", "-O", odir, tmp, *frags],
        env=cfg_env, capture=True, cwd=tree)
    run([*base, "-C", tree, "olddefconfig"], env=cfg_env, capture=True)
    bad = check_config(tmp, frags, undefined_options(tree))
    if bad:
        raise KhError("kernel config: options Kconfig did not accept (missing dependency?):\n  "
                      + "\n  ".join(bad))
    cur = odir / ".config"
    if not cur.exists() or cur.read_text() != tmp.read_text():
        shutil.move(tmp, cur)
        log(f"configured {odir.name} ({sum(1 for _ in open(cur))} lines)")
    else:
        tmp.unlink()
    for leftover in odir.glob(".config.kh-new.old"):
        leftover.unlink()
    stamp.set(key)
    return odir


def rust_available(tree: Path, arch: str, odir: Path) -> None:
    """`make rustavailable`: the toolchain must satisfy the kernel before we build."""
    base = [a for a in make_args(arch, odir) if not a.startswith("-j")]
    r = run([*base, "-C", tree, "rustavailable"], env=make_env(odir), capture=True, check=False,
            quiet=True)
    if r.returncode != 0:
        raise KhError("make rustavailable failed: the Rust toolchain does not suit this kernel "
                      "(rustc, rust-src, bindgen, libclang):\n" + (r.stdout + r.stderr)[-3000:])


def build(tree: Path, arch: str, profile: str, targets=None, extra=(),
          root: Path | None = None) -> Path:
    odir = configure(tree, arch, profile, root)
    ensure_path()
    rust_available(tree, arch, odir)
    targets = targets or (["bzImage"] if arch == "x86_64" else ["Image"])
    t0 = time.monotonic()
    logf = odir / "kh-build.log"
    with open(logf, "w") as f:
        r = run([*make_args(arch, odir), "-C", tree, *extra, *targets], env=make_env(odir),
                stdout=f, stderr=f, check=False)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        tail = logf.read_text().splitlines()[-60:]
        raise KhError(f"kernel build {odir.name} failed (log {logf}):\n" + "\n".join(tail))
    log(f"built {odir.name} {' '.join(targets)} in {dt:.0f}s")
    took(f"build {odir.name}", dt)
    return odir


def kernel_image(arch: str, profile: str) -> Path:
    odir = build_dir(arch, profile)
    return odir / ("arch/x86/boot/bzImage" if arch == "x86_64" else "arch/arm64/boot/Image")


def headers(tree: Path, arch: str, profile: str) -> Path:
    odir = build_dir(arch, profile)
    run([*make_args(arch, odir), "-C", tree, "headers"], env=make_env(odir), capture=True)
    return odir / "usr" / "include"
