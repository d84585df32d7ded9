"""Parsers for what the guest prints: sections, KTAP/TAP, perf test, perf stat and report,
and kernel-console splats. Pure functions; unit-tested in harness/tests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(s: str) -> str:
    return ANSI.sub("", s).replace("\r", "")


@dataclass
class Section:
    name: str
    rc: int | None = None          # None: the section never ended (guest died or hung)
    lines: list[str] = field(default_factory=list)
    seconds: float | None = None   # guest uptime from its start to its end (KH-TIME)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def parse_sections(log: str) -> tuple[dict[str, Section], int | None]:
    """Splits the results channel into KH-BEGIN/KH-END sections; returns them and the
    guest script's exit code (KH-DONE rc=N), or None if it never finished."""
    sections: dict[str, Section] = {}
    cur: Section | None = None
    done = None
    for raw in strip_ansi(log).split("\n"):
        line = raw.rstrip()
        m = re.match(r"^KH-BEGIN (\S+)$", line)
        if m:
            cur = Section(m.group(1))
            sections[cur.name] = cur
            continue
        m = re.search(r"KH-END (\S+) rc=(\d+)$", line)
        if m and cur is not None and m.group(1) == cur.name:
            if line[:m.start()].strip():
                cur.lines.append(line[:m.start()])
            cur.rc = int(m.group(2))
            cur = None
            continue
        m = re.match(r"^KH-DONE rc=(\d+)", line)
        if m:
            done = int(m.group(1))
            continue
        m = re.match(r"^KH-TIME (\S+) ([\d.]+) ([\d.]+)$", line)
        if m and cur is None and m.group(1) in sections:
            sections[m.group(1)].seconds = float(m.group(3)) - float(m.group(2))
            continue
        if cur is not None:
            cur.lines.append(line)
    return sections, done


@dataclass(frozen=True)
class Case:
    suite: str
    name: str
    result: str      # "pass", "fail" or "skip"
    detail: str = ""
    # Why it failed or skipped, normalised (signature()): the baseline records the C
    # core's, and the same result for another reason is a difference.
    signature: str = ""

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.name}"


# The lines of a failing test that say why: kselftest_harness's failed expectation or
# assertion ('# file.c:LINE:test:Expected ...') and how the test ended ('# test: Test
# terminated by timeout|assertion|unexpectedly by signal N'), KUnit's 'EXPECTATION FAILED at
# file:LINE' / 'ASSERTION FAILED at ...'.
WHY_RE = re.compile(r":Expected |EXPECTATION FAILED|ASSERTION FAILED")
END_RE = re.compile(r": Test terminated |\btimed out\b|\bTimed out\b")


def normalise(text: str) -> str:
    """A failure text without what changes from run to run: addresses and long numbers
    (pids, counts, times). Small numbers (signal numbers, errnos, small counts) stay."""
    text = re.sub(r"0x[0-9a-fA-F]+", "0x?", text.strip())
    # mktemp's random suffix: /tmp/perftool-testsuite_report.6Vt/... (perf's shell tests).
    text = re.sub(r"(/tmp/[\w+-]+)\.[A-Za-z0-9]{3,12}(?=/|\s|$)", r"\1.X", text)
    text = re.sub(r"\d{4,}", "N", text)
    return re.sub(r"\s+", " ", text)


def signature(result: str, directive: str, diag: list[str]) -> str:
    """A non-passing case's signature: a skip's reason; for a failure the first failed
    expectation or assertion (kselftest_harness's '# file.c:LINE:test:Expected ...', KUnit's
    'EXPECTATION FAILED at file:LINE') and the line that says how the test ended ('Test
    terminated by timeout|assertion|unexpectedly by signal N'), else its directive."""
    if result == "pass":
        return ""
    if result == "skip":
        return normalise(re.sub(r"^SKIP\s*", "", directive, flags=re.I))
    texts = [line.strip().lstrip("#").strip() for line in diag]
    why = [t for t in texts if WHY_RE.search(t)][:1] + [t for t in texts if END_RE.search(t)][:1]
    # kselftest_harness prints the operands' values after each: 'Expected a (3) <= b (4)'.
    # The failed expression is the cause; the values vary from run to run (a count of
    # samples, a pid) and are left out.
    why = [re.sub(r" \((?:-?\d+|0x[0-9a-fA-F]+|\(nil\)|-?\d+\.\d+)\)", "", t)
           if ":Expected " in t else t for t in why]
    return normalise(" | ".join(why) if why else directive)


RESULT_RE = re.compile(r"^(\s*)(ok|not ok) (\d+)(?: (?:- )?([^#]*?))?\s*(?:#\s*(.*))?$")


def parse_ktap(text: str, top: str = "") -> list[Case]:
    """Leaf results of (nested) KTAP/TAP: a result line whose preceding result line was
    more indented closes a group and is not a case itself. Cases are named
    '<enclosing subtest>/<name>'; SKIP/TODO directives give 'skip'."""
    cases: list[Case] = []
    subtests: dict[int, str] = {}
    prev_indent = None
    diag: list[str] = []     # the diagnostic lines since the last result line
    for line in strip_ansi(text).split("\n"):
        m = re.match(r"^(\s*)# Subtest: (.*)$", line)
        if m:
            subtests[len(m.group(1))] = m.group(2).strip()
            continue
        m = RESULT_RE.match(line)
        if not m:
            if line.strip().startswith("#"):
                diag.append(line)
            continue
        why, diag = diag, []
        indent = len(m.group(1))
        name = (m.group(4) or f"#{m.group(3)}").strip()
        # A group's own result: it follows more indented results, or (flat KTAP, as in
        # debugfs) it repeats the name of the '# Subtest:' header at its indentation.
        is_group = ((prev_indent is not None and prev_indent > indent)
                    or subtests.get(indent) == name)
        prev_indent = indent
        if is_group:
            continue
        directive = (m.group(5) or "").strip()
        outer = [v for k, v in sorted(subtests.items()) if k <= indent]
        suite = outer[-1] if outer else top
        if directive.upper().startswith("SKIP"):
            result = "skip"
        elif m.group(2) == "ok":
            result = "pass"
        else:
            result = "fail"
        cases.append(Case(suite or top, name, result, directive,
                          signature(result, directive, why)))
    return cases


PERF_TEST_RE = re.compile(r"^\s*(\d+(?:\.\d+)?): (.*?)\s*: (Ok|FAILED!|Skip)(.*)$")


@dataclass(frozen=True)
class Precondition:
    """A subtest of an upstream perf test that assumes something of the machine, not of
    the kernel: its failure line (`fails`), the line the test prints right after it when
    the assumption did not hold (`evidence`, the failed command's own words), and why."""
    fails: str
    evidence: str
    why: str


# Each one found in a run, with its evidence, is a case of its own with the result "unmet"
# (reported as skipped, with the evidence, on either core, never written to a baseline),
# and leaves the test's signature; the same failure line with other evidence stays in it.
PERF_TEST_PRECONDITIONS = [
    # tools/perf/tests/shell/stat.sh, test_stat_pid: `sleep 1 &`, then `perf stat -p $!`.
    # perf reads the pid's /proc/PID/task before it opens an event; under TCG perf's own
    # start-up takes 0.9-2.2 s (measured on both cores: `perf --version` alone 0.86 s), so
    # the sleep may be gone by then. smoke.stat_pid counts 2 s of a task that runs on.
    Precondition(r"^stat -p test \[Failed - command failed\]$",
                 r"^Problems finding threads of monitor$",
                 "perf stat -p started after its target, `sleep 1`, had ended (perf's start-up "
                 "under TCG takes about a second): the kernel was not asked anything; "
                 "smoke/stat -p checks the same attach to a live task"),
]


def parse_perf_test(text: str) -> list[Case]:
    """`perf test` result lines ('N: name : Ok|FAILED!|Skip (reason)'), subtests too."""
    cases = []
    lines = strip_ansi(text).split("\n")
    # guest/perf-test.sh reruns a failed test with -v and prints the lines that say what
    # failed: 'KH-PERF-TEST-WHY N: ...'.
    # Each why line with the line after it ('KH-PERF-TEST-THEN N: ...'), if any.
    why: dict[str, list[list[str]]] = {}
    for line in lines:
        m = re.match(r"^KH-PERF-TEST-(WHY|THEN) (\d+): (.*)$", line)
        if not m:
            continue
        kind, n, text = m.group(1), m.group(2), m.group(3).strip()
        if kind == "THEN":
            if why.get(n) and why[n][-1][1] is None:
                why[n][-1][1] = text
        # perf's own tallies ('Skipped tests : 1', 'List of failed tests:') say nothing.
        elif not re.search(r"(Failed|Skipped|Passed) tests\s*:|List of \w+ tests", text):
            why.setdefault(n, []).append([text, None])
    for line in lines:
        m = PERF_TEST_RE.match(line)
        if not m:
            continue
        res = {"Ok": "pass", "FAILED!": "fail", "Skip": "skip"}[m.group(3)]
        detail = m.group(4).strip().strip("()").strip()
        name = f"{m.group(1)} {m.group(2).strip()}"
        # perf test says why it skips; why it failed: its -v lines (above), or a time-out.
        sig = ""
        if res != "pass":
            kept = []
            for text, then in why.get(m.group(1), []):
                pre = next((p for p in PERF_TEST_PRECONDITIONS if re.search(p.fails, text)
                            and then is not None and re.search(p.evidence, then)), None)
                if pre is None:
                    kept.append(text)
                else:
                    cases.append(Case("perf-test", f"{name}: {text}", "unmet",
                                      f"{pre.why} (it printed {then!r})", normalise(text)))
            sig = normalise(detail or " | ".join(kept))
        cases.append(Case("perf-test", name, res, detail, sig))
    return cases


def perf_test_list(text: str) -> dict[str, str]:
    """`perf test --list` → {description: number} (top-level tests only)."""
    out = {}
    for line in strip_ansi(text).split("\n"):
        m = re.match(r"^\s*(\d+): (.*?)\s*$", line)
        if m:
            out[m.group(2)] = m.group(1)
    return out


STAT_RE = re.compile(
    r"^\s*(<not counted>|<not supported>|[\d.,]+)\s+(?:(msec)\s+)?([\w:\-/.]+)")


def parse_perf_stat(text: str) -> dict[str, float | None]:
    """`perf stat` counters: event → value (None when not counted/supported)."""
    out: dict[str, float | None] = {}
    for line in strip_ansi(text).split("\n"):
        if "Performance counter stats" in line or "seconds" in line.split("#")[0][-20:]:
            continue
        m = STAT_RE.match(line)
        if not m:
            continue
        val = m.group(1)
        out[m.group(3)] = None if val.startswith("<") else float(val.replace(",", ""))
    return out


def parse_loop_csv(text: str) -> dict[int, dict[str, list[float | None]]]:
    """Lines 'kh-loop N: <perf stat -x, line>' (guest/smoke.sh): N -> event -> the values of
    each run (None when not counted or not supported). Event names lose their modifiers."""
    out: dict[int, dict[str, list[float | None]]] = {}
    for m in re.finditer(r"^kh-loop (\d+): ([^,\n]*),[^,\n]*,([^,\n]+)", strip_ansi(text), re.M):
        val, ev = m.group(2).strip(), m.group(3).strip()
        ev = re.sub(r"^[^/]+/([^/]+)/\w*$", r"\1", ev).split(":")[0]
        num = None if val.startswith("<") else float(val)
        out.setdefault(int(m.group(1)), {}).setdefault(ev, []).append(num)
    return out


def parse_report_samples(text: str) -> int:
    """The sample count from `perf report --stdio` ('# Samples: 1K of event ...')."""
    m = re.search(r"^# Samples: ([\d.]+)([KM]?)\s+of event", text, re.M)
    if not m:
        return 0
    mult = {"": 1, "K": 1000, "M": 1000000}[m.group(2)]
    return int(float(m.group(1)) * mult)


SPLAT_PATTERNS = [
    r"\bBUG: ", r"\bWARNING: ", r"\bOops\b", r"Kernel panic", r"general protection fault",
    r"kernel BUG at", r"\bKASAN: ", r"\bUBSAN: ", r"refcount_t: ", r"rcu: INFO: ",
    r"detected stalls? on CPU", r"\bODEBUG: ", r"INFO: task .* blocked for more than",
    r"possible recursive locking", r"possible circular locking", r"inconsistent lock state",
    r"suspicious RCU usage", r"list_(add|del) corruption", r"Unable to handle kernel",
]
SPLAT_RE = re.compile("|".join(SPLAT_PATTERNS))


def find_splats(console: str, context: int = 30) -> list[str]:
    """Kernel oopses, BUGs, WARNINGs, lockdep/RCU/KASAN/refcount reports in a console log,
    each with the lines that follow it."""
    lines = strip_ansi(console).split("\n")
    out = []
    i = 0
    while i < len(lines):
        if SPLAT_RE.search(lines[i]):
            out.append("\n".join(lines[i:i + context]))
            i += context
        else:
            i += 1
    return out


# A stall report on the console: RCU's, the soft-lockup detector's, the hung-task detector's
# (the hang watchdog's trigger, guest.Watchdog, and where hang_evidence() starts).
STALL_RE = re.compile(r"rcu: INFO: \S+ (?:self-)?detected stall|"
                      r"rcu: INFO: \S+ detected (?:expedited )?stalls on CPUs|"
                      r"BUG: soft lockup|INFO: task \S+ blocked for more than")


def hang_evidence(console: str, limit: int = 400) -> str:
    """What a hung guest's console says: from the first stall report (RCU, soft lockup,
    hung task) on, else its last lines; at most `limit` lines, the sysrq dumps included."""
    lines = strip_ansi(console).split("\n")
    for i, line in enumerate(lines):
        if STALL_RE.search(line):
            return "\n".join(lines[i:i + limit])
    return "\n".join(lines[-200:])
