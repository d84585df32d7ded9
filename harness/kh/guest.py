"""Boots a kernel in QEMU with the Debian rootfs and a payload disk; captures two channels:
the kernel console and the results channel of the guest scripts.

x86_64: `-M pc`, console ttyS0, results ttyS1 (the second 8250 UART); KVM if it really runs
guests here, else TCG.
arm64: `-M virt -cpu max` under TCG, console ttyAMA0 (the virt machine's one PL011), results
hvc0 (a virtio console). Always with `-icount shift=0,sleep=off` (ARM64_ICOUNT_SHIFT): QEMU's
emulated PMUv3 counts instructions (INST_RETIRED) only in precise icount mode, so a known
loop has a known count; one instruction is then 2^shift ns of guest time and CPU_CYCLES
counts that time at 1 GHz. shift=2 made guest time match the wall clock better, but then
(with CPU hotplug on) CPU 1 stalled in timer softirqs during the stress part, on both
cores; shift=0 runs every suite but the stress part (see __main__.SKIP_PARTS)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .common import KhError, Stamp, cache_dir, log, warn

CMDLINE = "root=/dev/vda rw init=/sbin/kh-init panic=-1 loglevel=6 no_hash_pointers"
CONSOLE = {"x86_64": "console=ttyS0,115200", "arm64": "console=ttyAMA0"}
QEMU = {"x86_64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}
ARM64_ICOUNT_SHIFT = 0


@dataclass
class GuestResult:
    console: str
    results: str
    exit_code: int | None
    timed_out: bool
    seconds: float
    accel: str


def kvm_usable(kernel: Path) -> bool:
    """Whether KVM really runs a guest here: a short boot must print to the console.
    The answer is cached per host kernel (nested KVM can exist and still hang)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    stamp = Stamp(cache_dir() / "stamps" / "kvm-probe")
    host = os.uname().release + " " + os.uname().nodename
    if stamp.path.exists():
        key, _, ans = stamp.path.read_text().strip().rpartition(" ")
        if key == host:
            return ans == "yes"
    log("probing KVM (20 s)")
    con = cache_dir() / "kvm-probe.log"
    cmd = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "512", "-smp", "1",
           "-display", "none", "-monitor", "none", "-no-reboot", "-kernel", str(kernel),
           "-append", "console=ttyS0 panic=-1", "-serial", f"file:{con}"]
    try:
        subprocess.run(cmd, timeout=20, capture_output=True)
    except subprocess.TimeoutExpired:
        pass
    ok = con.exists() and "Linux version" in con.read_text(errors="replace")
    stamp.set(f"{host} {'yes' if ok else 'no'}")
    return ok


def boot(kernel: Path, rootfs: Path, payload: Path, outdir: Path, *, timeout: int,
         live: bool = False, smp: int = 2, mem: str = "2G", extra_cmdline: str = "",
         icount: bool = False, quiet_kvm: bool = False, arch: str = "x86_64",
         cpu: str = "max") -> GuestResult:
    outdir.mkdir(parents=True, exist_ok=True)
    con, res = outdir / "console.log", outdir / "results.log"
    for f in (con, res):
        f.unlink(missing_ok=True)
    if arch == "arm64":
        accel = ["-M", "virt", "-accel", "tcg", "-icount",
                 f"shift={ARM64_ICOUNT_SHIFT},sleep=off", "-cpu", cpu]
        name = "tcg icount" + (f" -cpu {cpu}" if cpu != "max" else "")
    elif not icount and kvm_usable(kernel):
        accel = ["-accel", "kvm", "-cpu", "host"]
        name = "kvm"
    else:
        if not icount and not quiet_kvm and os.path.exists("/dev/kvm"):
            warn("/dev/kvm exists but KVM does not run guests here (nested virtualisation?): "
                 "using TCG, which is slower")
        if icount:
            accel = ["-accel", "tcg", "-icount", "shift=0,sleep=off", "-cpu", "max"]
        else:
            accel = ["-accel", "tcg,thread=multi", "-cpu", "max"]
        name = "tcg" + (" icount" if icount else "")
    if arch == "arm64":
        channels = ["-serial", f"file:{con}", "-chardev", f"file,id=khres,path={res}",
                    "-device", "virtio-serial-pci", "-device", "virtconsole,chardev=khres"]
    else:
        channels = ["-serial", f"file:{con}", "-serial", f"file:{res}"]
    cmd = [QEMU[arch], *accel, "-smp", str(smp), "-m", mem, "-display", "none",
           "-monitor", "none", "-no-reboot", "-kernel", str(kernel),
           "-append", f"{CONSOLE[arch]} {CMDLINE} {extra_cmdline}".strip(),
           "-drive", f"file={rootfs},if=virtio,format=raw,snapshot=on",
           "-drive", f"file={payload},if=virtio,format=raw,snapshot=on",
           *channels]
    if not quiet_kvm:
        log(f"booting {kernel} under {name} (timeout {timeout}s)")
    t0 = time.monotonic()
    qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    pos = 0
    timed_out = False
    while True:
        try:
            qemu.wait(timeout=1)
            done = True
        except subprocess.TimeoutExpired:
            done = False
        if live and res.exists():
            data = res.read_bytes()
            if len(data) > pos:
                sys.stdout.write(data[pos:].decode(errors="replace"))
                sys.stdout.flush()
                pos = len(data)
        if done:
            break
        if time.monotonic() - t0 > timeout:
            timed_out = True
            qemu.kill()
            qemu.wait()
            break
    out = qemu.stdout.read() if qemu.stdout else ""
    dt = time.monotonic() - t0
    if qemu.returncode not in (0, None) and not timed_out:
        if "Could not" in out or "qemu-system" in out:
            raise KhError(f"QEMU failed to start: {out.strip()[-2000:]}")
    console = con.read_text(errors="replace") if con.exists() else ""
    results = res.read_text(errors="replace") if res.exists() else ""
    if not quiet_kvm or timed_out:
        log(f"guest ran {dt:.0f}s ({name}){' and TIMED OUT' if timed_out else ''}")
    return GuestResult(console, results, qemu.returncode, timed_out, dt, name)


def tail(text: str, n: int = 40) -> str:
    return "\n".join(text.rstrip().split("\n")[-n:])


def qemu_available(arch: str = "x86_64") -> None:
    if not shutil.which(QEMU[arch]):
        pkg = "qemu-system-x86" if arch == "x86_64" else "qemu-system-arm"
        raise KhError(f"{QEMU[arch]} not found (Debian package {pkg})")
