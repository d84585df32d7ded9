"""`make soak`: the same guest run N times in a row, optionally with the host loaded, to
measure how often a run hangs or fails (issue 21: arm64 stalls in perf_event_exec() under
QEMU's icount mode on a busy host).

Each run boots PROFILE with the guest parts PARTS (default: the quick arm64 set) and is
judged as `make test` judges it (guest finished, console clean, smoke checks); a hang is
what the watchdog (guest.Watchdog) stopped, and its console is kept. LOAD=N runs N
CPU-bound processes on the host meanwhile (sha256sum of /dev/zero), like a kernel build
beside the guest. The last line: 'soak: N runs, N ok, N hung, N failed'."""

from __future__ import annotations

import shutil
import subprocess
import time

from . import suites
from .common import cache_dir, log


def run(profile: str, arch: str, n: int, parts: list[str], load: int) -> int:
    from . import __main__ as M      # boot_with, guest_report (no import cycle at load time)
    hogs = [subprocess.Popen(["sha256sum", "/dev/zero"], stdout=subprocess.DEVNULL)
            for _ in range(load)]
    counts = {"ok": 0, "hung": 0, "failed": 0}
    keep = cache_dir() / "soak"
    keep.mkdir(parents=True, exist_ok=True)
    try:
        for i in range(1, n + 1):
            t0 = time.monotonic()
            res, out = M.boot_with(profile, parts, M.run_name(f"soak-{profile}", arch),
                                   timeout=3600, live=False, arch=arch)
            rep = suites.Report()
            sections = M.guest_report(res, out, rep)
            if "smoke" in parts:
                rep.extend(suites.eval_smoke(sections, hw=M.HW_PMU[arch]))
            kind = "hung" if res.hang else ("failed" if rep.failed else "ok")
            counts[kind] += 1
            if kind != "ok":
                dst = keep / f"{profile}-{arch}-{time.strftime('%H%M%S')}-run{i}"
                shutil.copytree(out, dst, ignore=shutil.ignore_patterns("*.sock"))
            print(f"soak {i}/{n} ({profile}, {arch}, load {load}): {kind} in "
                  f"{time.monotonic() - t0:.0f}s"
                  + (f": {res.hang}" if res.hang else "")
                  + (f"; failed: {', '.join(f for f, _ in rep.failed)}" if rep.failed else "")
                  + (f"; logs kept in {dst}" if kind != "ok" else ""), flush=True)
    finally:
        for h in hogs:
            h.kill()
    log(f"soak of {profile} ({arch}) done")
    print(f"soak: {n} runs, {counts['ok']} ok, {counts['hung']} hung, {counts['failed']} failed")
    return 0 if counts["ok"] == n else 1
