"""The suites: payload assembly, in-guest runs, result evaluation against baselines."""

from __future__ import annotations

import math
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import build, guest, parsers, rootfs
from .common import REPO, KhError, cache_dir, log, run, took

GUEST = REPO / "guest"
BASELINES = REPO / "baselines"


# ----------------------------------------------------------------------------- payload

# The guest programs and kselftests are built with gcc: the host's for x86_64, Debian's
# cross compiler for arm64 (static, so they need nothing from the guest's libc).
CROSS_COMPILE = {"x86_64": "", "arm64": "aarch64-linux-gnu-"}


def build_workload(dest: Path, arch: str = "x86_64") -> None:
    dest.mkdir(parents=True, exist_ok=True)
    cc = CROSS_COMPILE[arch] + "gcc"
    run([cc, "-O1", "-g", "-fno-omit-frame-pointer", "-static", "-o", dest / "kh-workload",
         GUEST / "src" / "kh-workload.c"], capture=True)
    run([cc, "-O2", "-Wall", "-static", "-o", dest / "kh-bench", GUEST / "src" / "kh-bench.c"],
        capture=True)
    run([cc, "-O2", "-Wall", "-static", "-pthread",
         "-I", REPO / "linux/tools/testing/selftests/perf_events", "-o", dest / "kh-stress",
         GUEST / "src" / "kh-stress.c"], capture=True)
    run([cc, "-O2", "-Wall", "-static", "-o", dest / "kh-loop", GUEST / "src" / "kh-loop.c"],
        capture=True)
    run([cc, "-O2", "-Wall", "-static", "-o", dest / "kh-timeout",
         GUEST / "src" / "kh-timeout.c"], capture=True)


def build_selftests(tree: Path, arch: str, profile: str, dest: Path) -> list[str]:
    """Builds tools/testing/selftests/perf_events against the kernel's exported headers."""
    t0 = time.monotonic()
    hdr = build.headers(tree, arch, profile)
    out = cache_dir() / "selftests" / f"{arch}-{profile}"
    out.mkdir(parents=True, exist_ok=True)
    cross = [f"ARCH={arch}", f"CROSS_COMPILE={CROSS_COMPILE[arch]}"] if arch != "x86_64" else []
    # Only what this tree installs: a program of an older tree (a test since removed) must
    # not linger in the install directory and run.
    shutil.rmtree(out / "install", ignore_errors=True)
    run(["make", "-s", "-C", tree / "tools/testing/selftests", "TARGETS=perf_events",
         *cross, f"O={out}", f"KHDR_INCLUDES=-isystem {hdr}", "install",
         f"INSTALL_PATH={out / 'install'}"], capture=True)
    src = out / "install" / "perf_events"
    dest.mkdir(parents=True, exist_ok=True)
    progs = []
    for p in sorted(src.iterdir()):
        if p.is_file() and p.stat().st_mode & 0o111 and p.suffix not in (".sh",):
            shutil.copy2(p, dest / p.name)
            progs.append(p.name)
    if not progs:
        raise KhError(f"no perf_events selftest programs were built in {src}")
    took(f"selftests {arch}", time.monotonic() - t0)
    return progs


def make_payload(name: str, parts: list[str], *, tree: Path | None = None, arch="x86_64",
                 profile="debug-rust", full: bool = False, env: dict | None = None,
                 repeat: list[str] | None = None) -> Path:
    """Assembles the payload disk: main.sh sourcing the requested guest scripts, with
    `env` exported first; `repeat`: case keys that run REPEAT_N times each: kselftest ones
    (<program>/<fixture.test>, guest/kselftest.sh) and perf test ones (perf-test/<number>
    <description>, guest/perf-test.sh)."""
    d = cache_dir() / "payload" / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for f in ("lib.sh", "smoke.sh", "kunit.sh", "kselftest.sh", "perf-test.sh", "stress.sh",
              "bench.sh", "crossings.sh", "kmemleak.sh", "stress-long.sh", "stress-selfcheck.sh",
              "perf-test-subset.tsv"):
        shutil.copy2(GUEST / f, d / f)
    build_workload(d / "bin", arch)
    if "kselftest" in parts or "stress-long" in parts:
        assert tree is not None
        build_selftests(tree, arch, profile, d / "selftests" / "perf_events")
    (d / "repeat.tsv").write_text("".join(k.replace("/", "\t", 1) + "\n"
                                          for k in (repeat or [])))
    main = ["set -u", ". /kh/lib.sh", 'echo "KH-KERNEL $(uname -r)"',
            f"export KH_REPEAT_N={REPEAT_N}"]
    if full:
        main.append("export KH_FULL=1")
    for k, v in (env or {}).items():
        main.append(f"export {k}={v}")
    for p in parts:
        main.append(f". /kh/{p}.sh")
    (d / "main.sh").write_text("\n".join(main) + "\n")
    return rootfs.make_payload(d, cache_dir() / "images" / f"payload-{name}.ext4")


# Cases that give either result on the C core run REPEAT_N times on each core; the Rust core
# fails such a case when its pass count is improbably low next to C's, both being samples:
# Fisher's exact test, one-sided (P[X <= Rust's passes], X hypergeometric: REPEAT_N draws
# from the 2 * REPEAT_N runs of both cores, of which the passes of both) < REPEAT_ALPHA.
# Taking C's count for its exact rate would make a C sample of 10 of 10 demand 10 of 10
# of a case that C itself fails in other runs.
REPEAT_N = 10
REPEAT_ALPHA = 0.01


def fisher_lower(passes: int, runs: int, c_passes: int, c_runs: int) -> float:
    """P[X <= passes], X the passes among `runs` runs drawn from all runs of both cores
    (runs + c_runs, with passes + c_passes passes): Fisher's exact test, one-sided."""
    total, good = runs + c_runs, passes + c_passes
    return sum(math.comb(good, i) * math.comb(total - good, runs - i)
               for i in range(passes + 1)) / math.comb(total, runs)


def repeat_counts(sections: dict) -> dict[str, tuple[int, int]]:
    """The repeated runs (sections kselftest-repeat.<program>.<fixture.test>.<i>): case key
    -> (passes, runs). A run passes when the case's own result line says ok."""
    out: dict[str, list[int]] = {}
    for name, s in sections.items():
        if not name.startswith("kselftest-repeat."):
            continue
        prog, rest = name.split(".", 2)[1:]
        test = rest.rsplit(".", 1)[0]
        got = [c for c in parsers.parse_ktap(s.text, top=prog) if c.name == test]
        k = out.setdefault(f"{prog}/{test}", [0, 0])
        k[1] += 1
        k[0] += 1 if s.rc is not None and got and got[0].result == "pass" else 0
    return {key: (v[0], v[1]) for key, v in out.items()}


def perf_test_repeat_counts(sections: dict, keys: list[str]) -> dict[str, tuple[int, int]]:
    """The repeated runs of the perf tests `keys` (sections perf-test-repeat.<number>.<i>,
    guest/perf-test.sh): key -> (passes, runs). A run passes when it finished and its result
    line for that test says Ok; one without the line (killed, hung) is a run that did not."""
    out = {}
    for key in keys:
        num = perf_test_number(key)
        runs = [s for name, s in sections.items()
                if name.startswith(f"perf-test-repeat.{num}.")]
        if runs:
            out[key] = (sum(1 for s in runs if s.rc is not None and any(
                c.key == key and c.result == "pass" for c in parsers.parse_perf_test(s.text))),
                len(runs))
    return out


def perf_test_repeats(known: dict, part: tuple[int, int] | None) -> list[str]:
    """The perf test keys that reasons.tsv marks 'repeat', of part `part`."""
    return [k for k, v in known.items() if v.result == "repeat" and k.startswith("perf-test/")
            and in_perf_test_part(k, part)]


def repeat_verdict(passes: int, runs: int, c_passes: int, c_runs: int) -> str | None:
    """None if `passes` of `runs` is consistent with the C core's `c_passes` of `c_runs`
    (see REPEAT_ALPHA), else why not."""
    if runs != c_runs:
        return f"ran {runs} times, the C baseline {c_runs}"
    p = fisher_lower(passes, runs, c_passes, c_runs)
    if p < REPEAT_ALPHA:
        return (f"passed {passes} of {runs}, the C core {c_passes} of {c_runs}: Fisher's exact "
                f"test, one-sided, p = {p:.4f} < {REPEAT_ALPHA}")
    return None


def repeated_keys(base: dict) -> list[str]:
    """The case keys a baseline compares by pass counts."""
    return [k for k, v in base.items() if v.result == "passes"]


def prefixed(rep: "Report", prefix: str) -> "Report":
    """The same results with every case name under `prefix/` (one run, several arches)."""
    out = Report()
    out.passed = [f"{prefix}/{n}" for n in rep.passed]
    out.failed = [(f"{prefix}/{n}", w) for n, w in rep.failed]
    out.skipped = [(f"{prefix}/{n}", w) for n, w in rep.skipped]
    return out


# ----------------------------------------------------------------------------- results

@dataclass
class Report:
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def ok(self, name: str) -> None:
        self.passed.append(name)

    def fail(self, name: str, why: str) -> None:
        self.failed.append((name, why))

    def skip(self, name: str, why: str) -> None:
        self.skipped.append((name, why))

    def extend(self, other: "Report") -> None:
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped

    def summary(self) -> str:
        s = f"{len(self.passed)} passed, {len(self.failed)} failed"
        if self.skipped:
            s += f", {len(self.skipped)} skipped"
        return s


@dataclass(frozen=True)
class Expected:
    """One baseline line: the C core's result, the reason it does not pass (hand-written in
    reasons.tsv, else the test's own words), and its signature (parsers.signature())."""
    result: str
    reason: str = ""
    signature: str = ""

    def __getitem__(self, i):      # (result, reason) as the tuple it used to be
        return (self.result, self.reason, self.signature)[i]


def load_baseline(path: Path) -> dict[str, Expected]:
    """A baseline file: '<case key>\t<pass|fail|skip>\t<reason>\t<signature>' per line."""
    out = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise KhError(f"{path}: malformed line {line!r}")
        out[parts[0]] = Expected(parts[1], parts[2] if len(parts) > 2 else "",
                                 parts[3] if len(parts) > 3 else "")
    return out


def baseline_lines(cases: list[parsers.Case], reasons: dict[str, str],
                   repeats: dict[str, tuple[int, int]] | None = None) -> list[str]:
    """The lines of a baseline for `cases`: every case with its result, and for those that
    do not pass the reason and the C core's signature; a case of `repeats` (key -> passes,
    runs) as 'passes' with its pass count."""
    lines = []
    for c in cases:
        # A subtest whose precondition the machine did not meet (parsers.Precondition)
        # says nothing about the C core.
        if c.result == "unmet":
            continue
        reason = reasons.get(c.key) or c.detail or ""
        if repeats and c.key in repeats:
            k, n = repeats[c.key]
            lines.append(f"{c.key}\tpasses\t{reason}\t{k}/{n}")
            continue
        if c.result != "pass" and not reason:
            reason = "no reason recorded yet: read the test and add one to reasons.tsv"
        if c.result == "pass":
            lines.append(f"{c.key}\t{c.result}\t{reason}".rstrip("\t"))
        else:
            lines.append(f"{c.key}\t{c.result}\t{reason}\t{c.signature}")
    return lines


BASELINE_COLUMNS = ("# <case>\t<result>\t<reason>\t<signature: why it failed or skipped, "
                    "normalised; for 'passes': passes/runs>")


def write_baseline(path: Path, cases: list[parsers.Case], header: str,
                   reasons: dict[str, str],
                   repeats: dict[str, tuple[int, int]] | None = None) -> None:
    """Writes a baseline (baseline_lines()) under `header`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {line}" for line in header.strip().split("\n")]
    lines.append(BASELINE_COLUMNS)
    path.write_text("\n".join(lines + baseline_lines(cases, reasons, repeats)) + "\n")


# `make test|baseline FULL=1 PART=k/N`: the whole `perf test` list in N guest runs; part k
# holds the top-level tests numbered n with (n - 1) mod N = k - 1 (round robin, so that
# neighbouring slow tests, e.g. the shell tests at the end of the list, spread over the
# parts). guest/perf-test.sh selects the same numbers.

def parse_part(spec: str | None) -> tuple[int, int] | None:
    """'k/N' -> (k, N), 1 <= k <= N; None for no part."""
    if not spec:
        return None
    m = re.fullmatch(r"(\d+)/(\d+)", spec.strip())
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise KhError(f"PART={spec!r}: give k/N with 1 <= k <= N (e.g. PART=1/4)")
    return int(m[1]), int(m[2])


def perf_test_number(key: str) -> int:
    """The top-level test number of a perf test case key ('perf-test/21.1 Read Only ...')."""
    m = re.match(r"^perf-test/(\d+)[.: ]", key)
    if not m:
        raise KhError(f"not a perf test case key: {key!r}")
    return int(m[1])


def in_perf_test_part(key: str, part: tuple[int, int] | None) -> bool:
    if part is None:
        return True
    k, n = part
    return (perf_test_number(key) - 1) % n == k - 1


def write_part_baseline(path: Path, cases: list[parsers.Case], header: str,
                        reasons: dict[str, str], part: tuple[int, int] | None,
                        repeats: dict[str, tuple[int, int]] | None = None) -> None:
    """Writes the whole-list perf test baseline, or with `part` replaces that part's lines
    of it and keeps the others' (and their header lines), sorted by test number; a case of
    `repeats` as 'passes' with its pass count. A case of another part refuses: the guest ran
    what it should not have."""
    stray = [c.key for c in cases if c.result != "unmet" and not in_perf_test_part(c.key, part)]
    if stray:
        raise KhError(f"cases outside part {part[0]}/{part[1]} in the run: {stray[:5]}")
    tag = f"part {part[0]}/{part[1]}" if part else "the whole list"
    head = [f"# {tag}: {line}" for line in header.strip().split("\n")]
    kept: list[str] = []
    if part and path.exists():
        for line in path.read_text().splitlines():
            if line == BASELINE_COLUMNS or not line.strip():
                continue
            if line.startswith("# "):
                if not line.startswith(f"# {tag}: ") and not line.startswith("# the whole list"):
                    head.append(line)
                continue
            if not in_perf_test_part(line.split("\t", 1)[0], part):
                kept.append(line)
    rows = kept + baseline_lines(cases, reasons, repeats)
    rows.sort(key=lambda line: perf_test_number(line.split("\t", 1)[0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(sorted(head, key=lambda h: h.split(":", 1)[0]) + [BASELINE_COLUMNS]
                              + rows) + "\n")


def compare_with_baseline(cases: list[parsers.Case], base: dict[str, Expected],
                          suite: str, repeats: dict[str, tuple[int, int]] | None = None
                          ) -> Report:
    """Each case must give the baseline's result. Baseline passes count as passed, known
    environment failures/skips (same result for the same reason: the same signature) as
    skipped; any difference, a case missing from either side included, is a failure. A
    'passes' case (either result on C) is judged by its repeated runs (repeat_verdict());
    an 'unmet' one (parsers.PERF_TEST_PRECONDITIONS) is skipped with its evidence."""
    rep = Report()
    seen = set()
    for c in cases:
        seen.add(c.key)
        if c.result == "unmet":
            rep.skip(c.key, f"not compared, its precondition did not hold: {c.detail}")
            continue
        if c.key in base and base[c.key].result == "passes":
            continue
        if c.key not in base:
            if c.result == "pass":
                rep.fail(c.key, "passes but is not in the baseline (regenerate it)")
            else:
                rep.fail(c.key, f"{c.result} and not in the baseline: {c.detail}")
            continue
        want = base[c.key]
        if c.result != want.result:
            rep.fail(c.key, f"{c.result} but the C baseline says {want.result}"
                     + (f" ({want.reason})" if want.reason else "")
                     + (f": {c.detail}" if c.detail else ""))
        elif want.result == "pass":
            rep.ok(c.key)
        elif c.signature != want.signature:
            rep.fail(c.key, f"{c.result} as on the C core, but for another reason: here "
                     f"{c.signature!r}, on C {want.signature!r} ({want.reason})")
        else:
            rep.skip(c.key, f"{want.result} on the C core too, the same way "
                     f"({c.signature!r}): {want.reason}")
    for key in repeated_keys(base):
        c_passes, c_runs = (int(x) for x in base[key].signature.split("/"))
        if key not in (repeats or {}):
            rep.fail(f"{key} (x{c_runs})", "was not repeated")
            continue
        passes, runs = repeats[key]
        why = repeat_verdict(passes, runs, c_passes, c_runs)
        if why:
            rep.fail(f"{key} (x{c_runs})", why + f" ({base[key].reason})")
        else:
            rep.ok(f"{key} (x{c_runs})")
            log(f"{key}: passed {passes} of {runs}, the C core {c_passes} of {c_runs}")
    for key, want in base.items():
        if key not in seen:
            rep.fail(key, f"did not run (baseline: {want.result}) in {suite}")
    return rep


def check_section(sections: dict, name: str, rep: Report) -> parsers.Section | None:
    s = sections.get(name)
    if s is None:
        rep.fail(name, "section missing from the guest output (guest died or hung?)")
        return None
    if s.rc is None:
        rep.fail(name, "section did not finish")
        return None
    return s


# kh-loop N runs exactly 2 * N user instructions; the smoke run's instructions:u of
# kh-loop N minus kh-loop 0 must be that within this fraction. Not exact because QEMU's
# PMUv3 counts instructions from the global icount, so whatever the other vCPU runs while
# the counter is on (a timer tick, say) counts too.
LOOP_TOLERANCE = 0.01
# QEMU's CPU_CYCLES runs at 1 GHz of guest time and, with -icount shift=N, one instruction
# is 2^N ns: the loop's cycles:u per instructions:u must be 2^N within this factor.
CYCLES_FACTOR = 2.0


def eval_hw(s: parsers.Section, rep: Report) -> None:
    """arm64: perf stat -e cycles,instructions counts, and a loop of known length counted
    within LOOP_TOLERANCE (see guest/smoke.sh)."""
    st = parsers.parse_perf_stat(s.text)
    m = re.search(r"^KH-LOOP-N (\d+)$", s.text, re.M)
    n = int(m.group(1)) if m else 0
    for ev in ("cycles", "instructions"):
        v = next((val for k, val in st.items() if k == ev or k.endswith(f"/{ev}/")), None)
        if s.rc == 0 and v is not None and v >= 2 * n > 0:
            rep.ok(f"smoke/hw perf stat {ev}")
        else:
            rep.fail(f"smoke/hw perf stat {ev}", f"expected >= {2 * n} (the loop alone), got "
                     f"{v} (rc={s.rc}):\n{s.text[-1500:]}")
    runs = parsers.parse_loop_csv(s.text)

    def loop(ev: str) -> float | None:
        base, full = runs.get(0, {}).get(ev, []), runs.get(n, {}).get(ev, [])
        if not base or not full or None in base + full:
            return None
        return min(full) - min(base)

    insns, cycles = loop("instructions"), loop("cycles")
    name = f"smoke/hw instructions:u of a {2 * n}-instruction loop within {LOOP_TOLERANCE:.0%}"
    if insns is not None and n and abs(insns - 2 * n) <= LOOP_TOLERANCE * 2 * n:
        rep.ok(name)
    else:
        rep.fail(name, f"counted {insns} (runs: {runs})")
    per = 2 ** guest.ARM64_ICOUNT_SHIFT
    lo, hi = per / CYCLES_FACTOR, per * CYCLES_FACTOR
    name = f"smoke/hw cycles:u of the loop {lo:g}..{hi:g} per instruction"
    if cycles is not None and insns and lo <= cycles / insns <= hi:
        rep.ok(name)
    else:
        rep.fail(name, f"cycles {cycles}, instructions {insns} (runs: {runs})")


def eval_long_events(sections: dict, want: str) -> Report:
    """arm_pmu's chained_events says how the PMU gave config1 "long" events: as chained
    counter pairs or as 64-bit counters; the CPU model decides which (see ARM64_CPUS)."""
    rep = Report()
    name = f"arm_pmu/long events are {want}"
    s = check_section(sections, "kselftest.arm_pmu", rep)
    if s:
        m = re.search(r"KH-ARM-PMU-LONG (\S+)", s.text)
        if m and m.group(1) == want:
            rep.ok(name)
        else:
            rep.fail(name, f"arm_pmu says {m.group(0) if m else 'nothing'}")
    return rep


def eval_smoke(sections: dict, hw: bool = False) -> Report:
    """The main job's checks: perf stat counts, a group, record + report with samples; with
    hw (a guest with a hardware PMU), hardware events of a loop of known length."""
    rep = Report()
    if hw:
        s = check_section(sections, "smoke.hw", rep)
        if s:
            eval_hw(s, rep)
    s = check_section(sections, "smoke.stat", rep)
    if s:
        st = parsers.parse_perf_stat(s.text)
        checks = {"task-clock": 1.0, "context-switches": 1, "page-faults": 1}
        for ev, minimum in checks.items():
            v = st.get(ev)
            if s.rc != 0 or v is None or v < minimum:
                rep.fail(f"smoke/stat {ev}", f"expected >= {minimum}, got {v} (rc={s.rc})")
            else:
                rep.ok(f"smoke/stat {ev}")
        # The workload ran slice i pinned to CPU i % 2: at least slices - 1 migrations.
        m = re.search(r"^KH-SMOKE-SLICES (\d+)$", s.text, re.M)
        want = int(m.group(1)) - 1 if m else None
        got = st.get("cpu-migrations")
        if want is None:
            rep.fail("smoke/stat cpu-migrations", "no KH-SMOKE-SLICES line in smoke.stat")
        elif s.rc != 0 or got is None or got < want:
            rep.fail("smoke/stat cpu-migrations",
                     f"expected >= {want} (one per change of CPU), got {got} (rc={s.rc})")
        else:
            rep.ok("smoke/stat cpu-migrations")
    s = check_section(sections, "smoke.stat_pid", rep)
    if s:
        # 2 s of a task that spins 45 ms of every 50: task-clock well above 200 ms, and a
        # context switch at every sleep; the counts of that process, nothing else.
        st = parsers.parse_perf_stat(s.text)
        m = re.search(r"^KH-SMOKE-PID (\d+)$", s.text, re.M)
        tc, cs = st.get("task-clock"), st.get("context-switches")
        of_pid = bool(m) and f"Performance counter stats for process id '{m.group(1)}'" in s.text
        if s.rc == 0 and of_pid and tc is not None and tc >= 200 and cs is not None and cs >= 1:
            rep.ok("smoke/stat -p")
        else:
            rep.fail("smoke/stat -p", f"task-clock {tc} (want >= 200 ms), context-switches "
                     f"{cs} (want >= 1), counts of the pid {'found' if of_pid else 'missing'} "
                     f"(rc={s.rc})")
    s = check_section(sections, "smoke.group", rep)
    if s:
        st = parsers.parse_perf_stat(s.text)
        vals = [st.get(e) for e in ("task-clock", "context-switches", "page-faults")]
        if s.rc == 0 and all(v is not None and v > 0 for v in vals):
            rep.ok("smoke/stat group")
        else:
            rep.fail("smoke/stat group", f"group members {vals} (rc={s.rc})")
    s = check_section(sections, "smoke.record", rep)
    if s:
        # The flat profile (kh_spin at 2 % or more), then kh_spin's call chains.
        flat, _, chains = s.text.partition("KH-CALLCHAIN kh_spin")
        n = parsers.parse_report_samples(flat)
        if s.rc == 0 and n > 0 and "kh_spin" in flat:
            rep.ok("smoke/record+report")
        else:
            rep.fail("smoke/record+report", f"{n} samples, kh_spin "
                     f"{'found' if 'kh_spin' in flat else 'missing'} (rc={s.rc})")
        if "kh_work" in chains and "main" in chains:
            rep.ok("smoke/record -g callchain")
        else:
            rep.fail("smoke/record -g callchain", "main -> kh_work -> kh_spin not in the report")
    return rep


def eval_stress(sections: dict) -> Report:
    """Concurrent perf record loops: each loop must finish without a failed run."""
    rep = Report()
    s = check_section(sections, "stress.perf-record", rep)
    if s:
        runs = sum(int(m) for m in re.findall(r"^loop \d+: (\d+) runs$", s.text, re.M))
        if s.rc == 0 and runs > 0:
            rep.ok("stress/concurrent perf record")
        else:
            rep.fail("stress/concurrent perf record", f"rc={s.rc}, {runs} runs:\n{s.text[-1500:]}")
    s = check_section(sections, "stress.kh-stress", rep)
    if s:
        m = re.search(r"^KH-STRESS-TOTAL (\d+) ops (\d+) unexpected$", s.text, re.M)
        kinds = dict((k, int(n)) for k, n in
                     re.findall(r"^KH-STRESS (\S+) (\d+) \d+$", s.text, re.M))
        idle = [k for k, n in kinds.items() if n == 0]
        if s.rc == 0 and m and int(m.group(1)) > 0 and kinds and not idle:
            rep.ok("stress/kh-stress (open, ioctl, mmap, fork+exec, migrate, hotplug, uncore)")
        else:
            rep.fail("stress/kh-stress (open, ioctl, mmap, fork+exec, migrate, hotplug, uncore)",
                     f"rc={s.rc}, kinds that did nothing: {idle}:\n{s.text[-1500:]}")
    return rep


def kmemleak_objects(text: str) -> list[str]:
    """The reports of /sys/kernel/debug/kmemleak: one block per unreferenced object."""
    blocks = re.split(r"^(?=unreferenced object )", text, flags=re.M)
    return [b.strip() for b in blocks if b.startswith("unreferenced object ")]


def kmemleak_leaks(s: parsers.Section | None) -> tuple[int | None, str]:
    """Leaks found by guest/kmemleak.sh's section: (count, first report), or (None, why)
    when the scan did not run."""
    if s is None or s.rc != 0:
        return None, "the kmemleak scan did not run" + (f":\n{s.text[-1500:]}" if s else "")
    m = re.search(r"^KH-KMEMLEAK (\d+) unreferenced objects$", s.text, re.M)
    if not m:
        return None, f"no count line from the kmemleak scan:\n{s.text[-1500:]}"
    objs = kmemleak_objects(s.text)
    n = max(len(objs), int(m.group(1)))
    return n, (objs[0] if objs else s.text[-1500:]) if n else ""


def eval_kmemleak(sections: dict) -> Report:
    """kmemleak's scan after every suite must find no unreferenced object."""
    rep = Report()
    s = check_section(sections, "kmemleak", rep)
    if s:
        n, detail = kmemleak_leaks(s)
        if n is None:
            rep.fail("kmemleak/scan", detail)
        elif n:
            rep.fail("kmemleak/no leaks", f"{n} unreferenced objects; first:\n{detail}")
        else:
            rep.ok("kmemleak/no leaks")
    return rep


def kunit_cases(sections: dict) -> list[parsers.Case]:
    s = sections.get("kunit")
    return parsers.parse_ktap(s.text, top="kunit") if s else []


def rust_kunit_suites(root: Path | None = None) -> dict[str, int]:
    """The Rust KUnit suites of our overlay and how many cases each declares: every
    `#[kunit_tests(NAME)]` module of a .rs file under linux/ and the `#[test]` functions
    after it (up to the next suite of the same file). Read from the source, so that a suite
    or a case that stops running is noticed without a hand-kept list."""
    root = root or REPO / "linux"
    found: dict[str, int] = {}
    for path in sorted(root.rglob("*.rs")):
        suite = None
        for line in path.read_text().split("\n"):
            m = re.match(r"^\s*#\[kunit_tests\((\w+)\)\]", line)
            if m:
                suite = m.group(1)
                if suite in found:
                    raise KhError(f"KUnit suite {suite} declared twice ({path})")
                found[suite] = 0
            elif suite and re.match(r"^\s*#\[test\]", line):
                found[suite] += 1
    return found


def eval_kunit(sections: dict, required: list[str],
               known: dict[str, tuple[str, str]] | None = None,
               counts: dict[str, int] | None = None) -> Report:
    """Every KUnit case must pass, except those `known` (baselines/<arch>/kunit.tsv) to give
    the same result on the C core, which count as skipped with the recorded reason. Each
    suite of `required` must run; each of `counts` (rust_kunit_suites()) must run with as
    many cases as its source declares."""
    rep = Report()
    if check_section(sections, "kunit", rep) is None:
        return rep
    cases = kunit_cases(sections)
    suites = {c.suite for c in cases}
    for r in required:
        if r not in suites:
            rep.fail(f"kunit/{r}", "suite did not run")
    for r, want in sorted((counts or {}).items()):
        got = sum(1 for c in cases if c.suite == r)
        if r not in suites:
            rep.fail(f"kunit/{r}", f"suite did not run (its source declares {want} cases)")
        elif got != want:
            rep.fail(f"kunit/{r} (cases)", f"{got} cases ran, its source declares {want}")
        else:
            rep.ok(f"kunit/{r} (cases)")
    for c in cases:
        name = f"kunit/{c.key}"
        if c.result == "pass":
            rep.ok(name)
        elif known and c.key in known and known[c.key].result == c.result:
            want = known[c.key]
            if c.signature == want.signature:
                rep.skip(name, f"{c.result} on the C core too, the same way "
                         f"({c.signature!r}): {want.reason}")
            else:
                rep.fail(name, f"{c.result} as on the C core, but for another reason: here "
                         f"{c.signature!r}, on C {want.signature!r} ({want.reason})")
        elif c.result == "skip":
            rep.fail(name, f"skipped: {c.detail}")
        else:
            rep.fail(name, "failed")
    return rep


def kselftest_cases(sections: dict) -> list[parsers.Case]:
    cases = []
    for name, s in sections.items():
        if not name.startswith("kselftest."):
            continue
        prog = name.split(".", 1)[1]
        got = parsers.parse_ktap(s.text, top=prog)
        cases += [parsers.Case(prog, c.name, c.result, c.detail, c.signature) for c in got]
        if s.rc is None or (not got and s.rc != 0):
            cases.append(parsers.Case(prog, "(program)", "fail", f"rc={s.rc}", f"rc={s.rc}"))
    return cases


def perf_test_cases(sections: dict) -> list[parsers.Case]:
    s = sections.get("perf-test")
    return parsers.parse_perf_test(s.text) if s else []
