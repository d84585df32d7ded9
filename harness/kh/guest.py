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
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import parsers
from .common import KhError, Stamp, cache_dir, log, run, took, versions, warn

# rcu_cpu_stall_cputime: an RCU stall report says how the stalled CPU spent the time
# (hard and soft interrupts, system time): an interrupt storm or a loop.
CMDLINE = ("root=/dev/vda rw init=/sbin/kh-init panic=-1 loglevel=6 no_hash_pointers "
           "sysrq_always_enabled rcupdate.rcu_cpu_stall_cputime=1")
# x86_64's acpi=noirq: under TCG the ACPI interpreter can run the PCI routing method (_PRT)
# past ACPICA's 30 s loop timeout, a limit of wall time that a slow guest on a busy host
# reaches: the virtio disks then get no interrupt and the boot stops (every KASAN boot, and
# on 2026-12-01 a debug-c boot beside an arm64 guest). The BIOS's PCI routing table serves.
CONSOLE = {"x86_64": "console=ttyS0,115200 acpi=noirq", "arm64": "console=ttyAMA0"}
QEMU = {"x86_64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}
ARM64_ICOUNT_SHIFT = 0


# The hang watchdog (see Watchdog): a stall report on the console is parsers.STALL_RE.
# After a stall report, this long without a new line on the results channel is a hang.
STALL_GRACE = 120
# Without any stall report, this long without a new line on the results channel is a hang:
# longer than the longest silent step of any suite (perf test's per-test limit, 300 s; the
# fault_inject fork case, 300 s).
NO_PROGRESS = 900
# The sysrq keys sent when the watchdog fires: all CPUs' backtraces, then blocked tasks,
# then every task; with the seconds to let each one drain to the console.
SYSRQ_KEYS = (("l", 15), ("w", 15), ("t", 30))


@dataclass
class GuestResult:
    console: str
    results: str
    exit_code: int | None
    timed_out: bool
    seconds: float
    accel: str
    # Set when the watchdog stopped the guest: why, in which section, since when.
    hang: str | None = None


def open_section(results: str) -> str | None:
    """The section the guest is in (begun, not ended), if any."""
    sections, _ = parsers.parse_sections(results)
    open_ = [name for name, sec in sections.items() if sec.rc is None]
    return open_[-1] if open_ else None


class Watchdog:
    """Decides when a guest hangs, from what the host sees: the console (stall reports) and
    the results channel (progress). Pure: fed with the channel sizes and console text at
    a time `now`; `verdict()` says why the guest is hung, or None.

    - a stall report (parsers.STALL_RE) and then STALL_GRACE seconds without results output: hung
      (a stall the guest recovers from still fails the console check, but lets the run go on);
    - NO_PROGRESS seconds without results output, stall or not: hung."""

    def __init__(self, start: float, *, grace: float = STALL_GRACE,
                 no_progress: float = NO_PROGRESS):
        self.grace, self.no_progress = grace, no_progress
        self.last_progress = start
        self.results_len = 0
        self.stall_line: str | None = None
        self.stall_seen_at: float | None = None
        self.console_scanned = 0

    def feed(self, now: float, console: str, results_len: int) -> None:
        if results_len != self.results_len:
            self.results_len = results_len
            self.last_progress = now
        if self.stall_line is None:
            # Rescan from a little before the last end: a report may straddle two reads.
            start = max(0, self.console_scanned - 200)
            m = parsers.STALL_RE.search(console, start)
            if m:
                eol = console.find("\n", m.start())
                bol = console.rfind("\n", 0, m.start()) + 1
                self.stall_line = console[bol:eol if eol >= 0 else len(console)].strip()
                self.stall_seen_at = now
            self.console_scanned = len(console)

    def verdict(self, now: float) -> str | None:
        quiet = now - self.last_progress
        if self.stall_line is not None and now - max(self.stall_seen_at, self.last_progress) \
                >= self.grace:
            return (f"stall reported on the console ({self.stall_line!r}) and no results "
                    f"output for {quiet:.0f}s")
        if quiet >= self.no_progress:
            return f"no results output for {quiet:.0f}s"
        return None


class Console:
    """The kernel console: QEMU serves the guest's console UART (chardev khcon) on a unix
    socket and waits for us to connect before it starts the guest; a thread copies what
    arrives into console.log. A second socket is QEMU's QMP monitor, for the serial break
    (chardev-send-break) that, followed by a key on the console, is sysrq. (The socket's
    telnet mode has the break built in, but QEMU drops console output while its telnet
    negotiation runs: seen here, bytes of the boot banner missing.)"""

    def __init__(self, sock_path: Path, qmp_path: Path, log_path: Path):
        self.sock_path, self.qmp_path, self.log_path = sock_path, qmp_path, log_path
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def qemu_args(self) -> list[str]:
        return ["-chardev", f"socket,id=khcon,path={self.sock_path},server=on,wait=on",
                "-serial", "chardev:khcon",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]

    @staticmethod
    def _connect(path: Path, qemu: subprocess.Popen, timeout: float) -> socket.socket:
        t0 = time.monotonic()
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(path))
                return s
            except OSError:
                s.close()
                if qemu.poll() is not None or time.monotonic() - t0 > timeout:
                    raise KhError(f"QEMU did not open its socket {path} (exit code "
                                  f"{qemu.poll()})")
                time.sleep(0.1)

    def connect(self, qemu: subprocess.Popen, timeout: float = 60) -> None:
        self.sock = self._connect(self.sock_path, qemu, timeout)
        self.thread = threading.Thread(target=self._copy, daemon=True)
        self.thread.start()

    def _copy(self) -> None:
        with open(self.log_path, "ab") as f:
            while True:
                try:
                    data = self.sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                f.write(data)
                f.flush()

    def send_break(self) -> bool:
        """A serial break on the console UART, through QMP."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as q:
                q.settimeout(10)
                q.connect(str(self.qmp_path))
                f = q.makefile("rw")
                f.readline()                      # the greeting
                for cmd in ('{"execute": "qmp_capabilities"}',
                            '{"execute": "chardev-send-break", "arguments": {"id": "khcon"}}'):
                    f.write(cmd + "\n")
                    f.flush()
                    while True:                   # skip events up to the command's answer
                        line = f.readline()
                        if not line or '"return"' in line or '"error"' in line:
                            break
                    if '"return"' not in line:
                        warn(f"QMP: {cmd} -> {line.strip() or 'no answer'}")
                        return False
            return True
        except OSError as e:
            warn(f"QMP: {e}")
            return False

    def sysrq(self, key: str) -> None:
        """The kernel's sysrq over serial: a break, then the key."""
        if self.sock is None or not self.send_break():
            return
        time.sleep(0.5)
        try:
            self.sock.sendall(key.encode())
        except OSError:
            pass

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=10)
        if self.sock is not None:
            self.sock.close()


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
         live: bool = False, smp: int = 2, mem: str = "2G",
         icount: bool = False, quiet_kvm: bool = False, arch: str = "x86_64",
         cpu: str = "max", no_progress: float = NO_PROGRESS,
         qemu_extra: list[str] | tuple = (), cmdline: str = "",
         qemu: list[str] | None = None) -> GuestResult:
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
    if qemu:
        name += f" ({qemu[0]})"
    sock, qmp = outdir / "console.sock", outdir / "qmp.sock"
    for f in (sock, qmp):
        f.unlink(missing_ok=True)
    console_ch = Console(sock, qmp, con)
    if arch == "arm64":
        channels = [*console_ch.qemu_args(), "-chardev", f"file,id=khres,path={res}",
                    "-device", "virtio-serial-pci", "-device", "virtconsole,chardev=khres"]
    else:
        channels = [*console_ch.qemu_args(), "-serial", f"file:{res}"]
    cmd = [*(qemu or [QEMU[arch]]), *accel, "-smp", str(smp), "-m", mem, "-display", "none",
           "-monitor", "none", "-no-reboot", "-kernel", str(kernel),
           "-append", f"{CONSOLE[arch]} {CMDLINE}" + (f" {cmdline}" if cmdline else ""),
           "-drive", f"file={rootfs},if=virtio,format=raw,snapshot=on",
           "-drive", f"file={payload},if=virtio,format=raw,snapshot=on",
           *channels, *qemu_extra]
    if not quiet_kvm:
        log(f"booting {kernel} under {name} (timeout {timeout}s)")
    t0 = time.monotonic()
    qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        console_ch.connect(qemu)
    except KhError:
        qemu.kill()
        out = qemu.communicate()[0] or ""
        raise KhError(f"QEMU failed to start: {out.strip()[-2000:]}")
    pos = 0
    timed_out = False
    hang = None
    dog = Watchdog(t0, no_progress=no_progress)
    while True:
        try:
            qemu.wait(timeout=1)
            done = True
        except subprocess.TimeoutExpired:
            done = False
        rsize = res.stat().st_size if res.exists() else 0
        if live and rsize > pos:
            data = res.read_bytes()
            sys.stdout.write(data[pos:].decode(errors="replace"))
            sys.stdout.flush()
            pos = len(data)
        if done:
            break
        now = time.monotonic()
        dog.feed(now, con.read_text(errors="replace") if con.exists() else "", rsize)
        why = dog.verdict(now)
        if why is not None:
            where = open_section(res.read_text(errors="replace") if res.exists() else "")
            hang = f"guest hung in section {where or '(none)'}: {why}"
            warn(hang + "; sending sysrq " + ", ".join(k for k, _ in SYSRQ_KEYS)
                 + " and stopping it")
            for key, wait in SYSRQ_KEYS:
                console_ch.sysrq(key)
                time.sleep(wait)
        if hang is not None or now - t0 > timeout:
            timed_out = hang is None
            qemu.kill()
            qemu.wait()
            break
    console_ch.close()
    out = qemu.stdout.read() if qemu.stdout else ""
    # QEMU says it waits for the console socket's client: not an error.
    out = "\n".join(line for line in out.split("\n") if "QEMU waiting for connection" not in line)
    dt = time.monotonic() - t0
    took(f"guest {outdir.name}", dt)
    if qemu.returncode not in (0, None) and not timed_out and hang is None:
        if "Could not" in out or "qemu-system" in out:
            raise KhError(f"QEMU failed to start: {out.strip()[-2000:]}")
    console = con.read_text(errors="replace") if con.exists() else ""
    results = res.read_text(errors="replace") if res.exists() else ""
    if not quiet_kvm or timed_out:
        log(f"guest ran {dt:.0f}s ({name}){' and TIMED OUT' if timed_out else ''}")
    return GuestResult(console, results, qemu.returncode, timed_out, dt, name, hang)


def tail(text: str, n: int = 40) -> str:
    return "\n".join(text.rstrip().split("\n")[-n:])


def stress_qemu() -> list[str]:
    """The x86_64 QEMU of make stress (versions.toml [stress_qemu]): bookworm-backports'
    packages unpacked into the cache; [binary, "-L", its data dir]. Checked by its own
    --version."""
    from .upstream import PrivateApt
    v = versions()["stress_qemu"]
    root = cache_dir() / "stress-qemu" / v["version"].replace(":", "_")
    binary, data = root / "usr/bin/qemu-system-x86_64", root / "usr/share/qemu"
    want = v["version"].split(":", 1)[-1]
    if not (root / "done").exists():
        apt = PrivateApt("apt-stress-qemu", [v["suite"]])
        apt.update()
        dl = root.parent / "debs"
        debs = [apt.download(p, v["version"], dl) for p in v["packages"]]
        debs.append(apt.download("seabios", v["seabios"], dl))
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        for d in debs:
            run(["dpkg-deb", "-x", str(d), str(root)])
        (root / "done").write_text("ok\n")
    out = run([str(binary), "--version"], capture=True, quiet=True, check=False)
    if out.returncode != 0 or want not in out.stdout:
        raise KhError(f"{binary} --version did not say {want}:\n{out.stdout}{out.stderr}")
    return [str(binary), "-L", str(data)]


def qemu_available(arch: str = "x86_64") -> None:
    if not shutil.which(QEMU[arch]):
        pkg = "qemu-system-x86" if arch == "x86_64" else "qemu-system-arm"
        raise KhError(f"{QEMU[arch]} not found (Debian package {pkg})")
