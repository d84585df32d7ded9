"""`make stress`: long, parallel load on a kernel with full debugging (KASAN, lockdep,
PROVE_RCU, kmemleak, failslab), then the counts that must all be zero.

The guest (4 vCPUs, at most as many as the host has cores) runs guest/stress-long.sh for the requested minutes, then the
kmemleak scan (guest/kmemleak.sh). The host reads the console for splats (oops, BUG,
WARNING, lockdep, KASAN, RCU stalls, refcount) and hung tasks, and the kmemleak report
for leaks. The same run with CORE=c is the control: what fails there is upstream's.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from . import build, guest, parsers, rootfs, suites
from .common import REPO, cache_dir, log, run as runcmd, versions

ARCH = "x86_64"
# The hang detectors' reports (the rest of parsers.find_splats() are splats): the hung-task
# detector, the soft-lockup detector, RCU's stall detector.
HANG_RE = re.compile(r"INFO: task .* blocked for more than|BUG: soft lockup - CPU|"
                     r"rcu: INFO: \S+ (?:self-)?detected (?:expedited )?stalls? on CPU")
# guest/stress-long.sh's line of the detectors' settings: each must be on, else "0 hangs"
# could not be anything else.
DETECTORS_RE = re.compile(r"^KH-STRESS-DETECTORS hung_task_timeout_secs=(\d+) "
                          r"watchdog_thresh=(\d+) soft_watchdog=(\d+) "
                          r"rcu_cpu_stall_timeout=(\d+)$", re.M)


@dataclass
class Counts:
    minutes: float
    ops: int
    splats: int
    leaks: int | None       # None: no kmemleak scan ran
    hangs: int
    problems: list[str]
    detectors: bool = True  # the hang detectors were all on
    kcsan: list[tuple[str, ...]] | None = None  # KIND=kcsan: its reports (kcsan_reports())

    def headline(self) -> str:
        leaks = "no leak scan" if self.leaks is None else f"{self.leaks} leaks"
        hangs = f"{self.hangs} hangs" if self.detectors else "no hang detectors"
        races = "" if self.kcsan is None else f", {len(self.kcsan)} KCSAN data races"
        return (f"stress: {self.minutes:.0f} min, {self.ops} ops, {self.splats} splats, "
                f"{leaks}, {hangs}{races}")


# KCSAN's report title: 'BUG: KCSAN: data-race in f / g' (two instrumented accesses) or
# 'BUG: KCSAN: data-race in f' (a value change seen by f, the other side unknown).
KCSAN_RE = re.compile(r"BUG: KCSAN: (?:data-race|assert: race) in (\S+)(?: / (\S+))?")


def kcsan_reports(console: str) -> list[tuple[str, ...]]:
    """The distinct KCSAN reports of a console: each a sorted tuple of its functions."""
    seen: set[tuple[str, ...]] = set()
    for m in KCSAN_RE.finditer(parsers.strip_ansi(console)):
        names = [re.sub(r"\+0x[0-9a-f]+/0x[0-9a-f]+$", "", g) for g in m.groups() if g]
        seen.add(tuple(sorted(names)))
    return sorted(seen)


def our_functions(build_dir: Path) -> set[str]:
    """The functions of the Rust core (every text symbol of perf_rust_core.o, mangled or
    #[export]ed) and of our C changes (the functions the series' C hunks are in, by their
    hunk headers, and those our new C files define)."""
    names: set[str] = set()
    obj = build_dir / "kernel/events/rust_core/perf_rust_core.o"
    if obj.exists():
        nm = f"llvm-nm{versions()['toolchain']['llvm']}"   # (toolchain.HOST_COMMANDS_LLVM)
        out = runcmd([nm, "--defined-only", str(obj)], capture=True, quiet=True).stdout
        names |= {ln.split()[2] for ln in out.splitlines()
                  if len(ln.split()) == 3 and ln.split()[1] in "Tt"}
    ident = r"([A-Za-z_]\w*)\s*\("
    for patch in sorted((REPO / "patches").glob("*.patch")):
        cfile = False
        for ln in patch.read_text(errors="replace").splitlines():
            if ln.startswith("+++ "):
                cfile = ln.endswith(".c") and "/tools/" not in ln
            elif cfile and ln.startswith("@@"):
                m = re.search(r"@@ [^@]+ @@ .*?" + ident, ln)
                if m:
                    names.add(m.group(1))
    for c in (REPO / "linux").rglob("*.c"):
        if "tools" in c.parts:
            continue
        names |= set(re.findall(r"^[A-Za-z_][\w \t\*]*?\b" + ident + r"[^;]*$",
                                c.read_text(errors="replace"), re.M))
    # Statements and macros that the C patterns above also match.
    return {n for n in names if n not in ("if", "for", "while", "switch", "return", "sizeof")
            and not n.startswith(("for_each", "list_for_each", "SYSCALL_DEFINE"))}


def evaluate(console: str, results: str, timed_out: bool,
             need_detectors: bool = True, kcsan: bool = False) -> Counts:
    """The counts of one run (see the module doc); problems names each non-zero one, and
    with need_detectors (the stress kernel) a hang detector that was off. With kcsan
    (KIND=kcsan) KCSAN's reports are not splats: they are listed (Counts.kcsan) and judged
    by kcsan_verdict()."""
    sections, done = parsers.parse_sections(results)
    problems = []
    reports = parsers.find_splats(console)
    if kcsan:
        reports = [r for r in reports if not KCSAN_RE.search(r.split("\n", 1)[0])]
    hangs = sum(1 for r in reports if HANG_RE.search(r))
    splats = len(reports) - hangs
    if reports:
        problems.append(f"{len(reports)} console reports; first:\n{reports[0]}")
    s = sections.get("stress-long")
    ops, minutes = 0, 0.0
    # The detectors' line comes first: read it from a section that did not finish too.
    d = DETECTORS_RE.search(s.text) if s is not None else None
    off = ([name for name, v in zip(("hung_task_timeout_secs", "watchdog_thresh",
                                     "soft_watchdog", "rcu_cpu_stall_timeout"),
                                    d.groups()) if int(v) == 0] if d else ["all"])
    detectors = not off
    if off and need_detectors and s is not None:
        problems.append(f"hang detectors off ({', '.join(off)}"
                        + (" unknown: no KH-STRESS-DETECTORS line" if not d else " = 0")
                        + "): 0 hangs would mean nothing")
    if s is None or s.rc is None:
        problems.append("the stress section did not finish"
                        + (" (guest timed out)" if timed_out else ""))
    else:
        m = re.search(r"^KH-STRESS-SUM rounds=(\d+) ops=(\d+) unexpected=(\d+)", s.text, re.M)
        if m:
            ops = int(m.group(2))
        # The minutes the rounds took by the guest's uptime, not the ones asked for.
        mm = re.search(r"^KH-STRESS-SUM .* secs=(\d+)\b", s.text, re.M)
        minutes = int(mm.group(1)) / 60 if mm else 0.0
        if s.rc != 0 or not m:
            which = re.findall(r"^KH-STRESS-FAILED (.*)$", s.text, re.M)
            problems.append("a load failed or did nothing ("
                            + ("; ".join(which) if which else
                               "kh-stress errno, trinity, stress-ng, fault_inject")
                            + "):\n" + s.text[-3000:])
    leaks, detail = suites.kmemleak_leaks(sections.get("kmemleak"))
    if leaks is None:
        problems.append(detail)
    elif leaks:
        problems.append(f"{leaks} unreferenced objects; first:\n{detail}")
    if done is None and not timed_out:
        problems.append("the guest did not finish its script")
    return Counts(minutes, ops, splats, leaks, hangs, problems, detectors,
                  kcsan_reports(console) if kcsan else None)


def kcsan_verdict(races: list[tuple[str, ...]], ours: set[str],
                  control: list[tuple[str, ...]] | None, core: str) -> list[str]:
    """The problems of a KCSAN run: a report naming one of our functions (the Rust core's,
    or C we changed) on the Rust core; on either core, with the other core's reports at
    hand (control), what the Rust core adds to the C core's. Without the control: a
    problem too, since the comparison is the point."""
    problems = []
    if core == "rust":
        mine = [r for r in races if ours & set(r)]
        if mine:
            problems.append(f"{len(mine)} KCSAN reports name our code: "
                            + "; ".join(" / ".join(r) for r in mine))
    if control is None:
        problems.append("no KCSAN run of the other core to compare with: run "
                        f"make stress KIND=kcsan CORE={'c' if core == 'rust' else 'rust'}")
    elif core == "rust":
        new = [r for r in races if r not in control]
        if new:
            problems.append(f"{len(new)} KCSAN reports the C core did not give: "
                            + "; ".join(" / ".join(r) for r in new))
    return problems


def run(tree: Path, minutes: int, core: str, kind: str = "stress") -> int:
    profile = f"{kind}-{core}"
    build.build(tree, ARCH, profile)
    img = rootfs.ensure_image()
    # (The stress kind keeps its old names: stress-<core>, the others <kind>-<core>.)
    name = f"stress-{core}" if kind == "stress" else f"{kind}-{core}"
    payload = suites.make_payload(name, ["stress-long", "kmemleak"], tree=tree,
                                  arch=ARCH, profile=profile,
                                  env={"KH_STRESS_MINUTES": str(minutes)})
    out = cache_dir() / "results" / name
    # 4 vCPUs, but never more than the host has cores: under TCG, 4 vCPU threads on a
    # 2-core host stalled in early boot (seen here: no console output after 2.3 s of
    # guest time for 8 minutes), as spinning vCPUs wait for descheduled ones.
    smp = max(2, min(4, os.cpu_count() or 2))
    log(f"stress guest: {smp} vCPUs")
    t0 = time.monotonic()
    # (acpi=noirq, which KASAN boots need, is on every x86_64 boot: guest.CONSOLE.)
    res = guest.boot(build.kernel_image(ARCH, profile), img, payload, out,
                     timeout=minutes * 60 + 1800, smp=smp, mem="4G", qemu=guest.stress_qemu())
    # The debug kernel (KIND=debug) has no hang detectors: its headline says so.
    c = evaluate(res.console, res.results, res.timed_out, need_detectors=kind != "debug",
                 kcsan=kind == "kcsan")
    if res.hang:
        c.problems.append(res.hang)
    if c.kcsan is not None:
        # This run's reports, for the other core's run to compare with.
        (out / "kcsan.tsv").write_text("".join("\t".join(r) + "\n" for r in c.kcsan))
        other = cache_dir() / "results" / f"kcsan-{'c' if core == 'rust' else 'rust'}" / "kcsan.tsv"
        control = ([tuple(ln.split("\t")) for ln in other.read_text().splitlines() if ln]
                   if other.exists() else None)
        for r in c.kcsan:
            print(f"KCSAN: {' / '.join(r)}"
                  + ("" if control is None else "" if r in control else "   (not on the other core)"))
        c.problems += kcsan_verdict(c.kcsan, our_functions(build.build_dir(ARCH, profile)),
                                    control, core)
    for line in res.results.splitlines():
        if line.startswith(("KH-STRESS-ROUND", "KH-STRESS-SUM", "stress:")):
            print(line)
    for p in c.problems:
        print(f"PROBLEM: {p}\n")
    log(f"stress run of {profile} took {time.monotonic() - t0:.0f}s; logs in {out}")
    print(c.headline())
    return 0 if not c.problems else 1


# make stress-selfcheck: each detector the headline counts, fired once through LKDTM
# (guest/stress-selfcheck.sh), per boot: (trigger, the report it must give, the count that
# must hold it: "splats", "hangs", "leaks" (kmemleak's scan) or "kcsan" (the KCSAN kind's
# list of data races)). A report found but counted elsewhere fails as surely as one not
# found. KMALLOC_LEAK and DATA_RACE are LKDTM types of our series (patch "lkdtm: Add
# KMALLOC_LEAK and DATA_RACE"): upstream's LKDTM has no trigger for either detector.
SELFCHECK = {
    "splats": [("WARNING", r"WARNING: .*lkdtm|WARNING: .* at lkdtm_WARNING", "splats"),
               ("READ_AFTER_FREE", r"BUG: KASAN: \S+ in lkdtm_READ_AFTER_FREE", "splats"),
               ("REFCOUNT_INC_OVERFLOW", r"refcount_t: saturated", "splats"),
               ("HUNG_TASK", r"INFO: task \S+ blocked for more than \d+ seconds", "hangs"),
               ("KMALLOC_LEAK", r"lkdtm_KMALLOC_LEAK", "leaks")],
    "lockup": [("SOFTLOCKUP", r"BUG: soft lockup - CPU#1 stuck for", "hangs"),
               ("SOFTLOCKUP", r"rcu: INFO: \S+ (?:self-)?detected (?:expedited )?stalls? on "
                "CPU", "hangs")],
    "kcsan": [("DATA_RACE", r"BUG: KCSAN: data-race in \S*lkdtm_", "kcsan")],
}
# The kernel kind each boot runs on (KCSAN excludes KASAN: a kernel of its own), and the
# guest parts after the triggers (the leak needs kmemleak's scan, as make stress has it).
SELFCHECK_KIND = {"splats": "stress", "lockup": "stress", "kcsan": "kcsan"}
SELFCHECK_PARTS = {"splats": ["stress-selfcheck", "kmemleak"]}


def selfcheck_verdicts(boot: str, console: str, results: str = ""
                       ) -> list[tuple[str, bool, str]]:
    """(what, ok, why) per expected report of SELFCHECK[boot]: a console report found among
    parsers.find_splats()'s reports and counted by evaluate()'s rule as it should be (a
    KCSAN report in the KCSAN kind's list, not in splats or hangs), or, for "leaks", an
    object of the kmemleak section of the results that kmemleak_leaks() counts."""
    reports = parsers.find_splats(console)
    races = kcsan_reports(console)
    kml = parsers.parse_sections(results)[0].get("kmemleak") if results else None
    out = []
    for trigger, pattern, count in SELFCHECK[boot]:
        what = f"{trigger} -> {count}: /{pattern}/"
        if count == "leaks":
            objs = suites.kmemleak_objects(kml.text) if kml is not None else []
            hit = next((o for o in objs if re.search(pattern, o)), None)
            n, why = suites.kmemleak_leaks(kml)
            if hit is None:
                out.append((what, False, "no such object in the kmemleak report"
                            + ("" if n is not None else f" ({why.splitlines()[0]})")))
            else:
                first = hit.split("\n", 1)[0].strip()
                out.append((what, bool(n), f"{first!r}, counted in leaks ({n})" if n else
                            f"{first!r} was not counted: {why.splitlines()[0]}"))
            continue
        hit = next((r for r in reports if re.search(pattern, r.split("\n", 1)[0])), None)
        if hit is None:
            out.append((what, False, "no such report on the console"))
            continue
        first = hit.split("\n", 1)[0].strip()
        if count == "kcsan" or KCSAN_RE.search(first):
            # evaluate(kcsan=True) moves a KCSAN report out of the splats into its list.
            listed = any(r in races for r in kcsan_reports(first))
            counted = "kcsan" if listed else "splats"
        else:
            counted = "hangs" if HANG_RE.search(hit) else "splats"
        out.append((what, counted == count,
                    f"{first!r}, counted in {counted}" if counted == count else
                    f"{first!r} was counted in {counted}"))
    return out


def selfcheck(tree: Path, core: str, boots: list[str] | None = None) -> int:
    """Boots the kernel of each SELFCHECK entry (boots: a subset, by name) and checks
    each report."""
    failed = total = 0
    for boot in boots or list(SELFCHECK):
        profile = f"{SELFCHECK_KIND[boot]}-{core}"
        build.build(tree, ARCH, profile)
        img = rootfs.ensure_image()
        payload = suites.make_payload(f"selfcheck-{boot}-{core}",
                                      SELFCHECK_PARTS.get(boot, ["stress-selfcheck"]),
                                      tree=tree, arch=ARCH, profile=profile,
                                      env={"KH_SELFCHECK": boot})
        out = cache_dir() / "results" / f"selfcheck-{boot}-{core}"
        res = guest.boot(build.kernel_image(ARCH, profile), img, payload, out,
                         timeout=1200, smp=2, mem="4G", qemu=guest.stress_qemu())
        c = evaluate(res.console, res.results, res.timed_out, need_detectors=False,
                     kcsan=boot == "kcsan")
        leaks = "no leak scan" if c.leaks is None else f"{c.leaks} leaks"
        races = "" if c.kcsan is None else f", {len(c.kcsan)} KCSAN data races"
        print(f"selfcheck {boot} ({profile}): {c.splats} splats, {c.hangs} hangs, {leaks}"
              f"{races} (logs in {out})")
        for what, ok, why in selfcheck_verdicts(boot, res.console, res.results):
            total += 1
            failed += not ok
            print(f"  {'ok  ' if ok else 'FAIL'} {what}: {why}")
    print(f"selfcheck: {total - failed} of {total} detector reports reached their count")
    return 1 if failed else 0
