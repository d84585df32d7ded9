"""Quality gates on the delta: rustfmt, clippy, checkpatch, the exported series, symbols."""

from __future__ import annotations

import re
from pathlib import Path

from . import build, tree as treemod
from .common import cache_dir, log, run, versions
from .suites import Report
from .upstream import git

RUST_CORE_SYMBOLS = [
    # S1
    "get_ctx", "put_ctx", "__perf_event_init_context", "alloc_perf_context",
    # S2
    "__perf_init_event_pmu_context", "find_get_pmu_context", "get_pmu_ctx", "put_pmu_ctx",
    # S3
    "perf_event_ctx_lock_nested", "perf_event_ctx_lock", "perf_event_ctx_unlock", "unclone_ctx",
    "perf_pin_task_context", "perf_unpin_context", "find_get_context",
    # S4 (exported to drivers by core.c)
    "perf_pmu_migrate_context",
]
# Replaced functions that have no C caller left: Rust-internal (no symbol), gone from core.o.
RUST_CORE_INTERNAL = ["perf_lock_task_context",
                      # S4 (the C core's core.o has it as a local symbol; clang inlines
                      # __perf_pmu_remove() and __perf_pmu_install(), so their absence
                      # proves nothing and they are not listed)
                      "__perf_pmu_install_event"]


def changed_rust_files() -> list[str]:
    out = git("diff", "--name-only", "upstream", "kh-delta").stdout.split()
    return [f for f in out if f.endswith(".rs")]


def rustfmt(tree: Path, odir: Path, rep: Report) -> None:
    r = run([*build.make_args(build.arch_of(odir), odir), "-C", tree, "rustfmtcheck"],
            env=build.make_env(odir), capture=True, check=False)
    if r.returncode == 0:
        rep.ok("gate/rustfmtcheck")
    else:
        rep.fail("gate/rustfmtcheck", (r.stdout + r.stderr)[-3000:])


def clippy(tree: Path, odir: Path, rep: Report) -> None:
    """Builds the Rust core with CLIPPY=1; any clippy/rustc warning in a file of ours fails."""
    ours = changed_rust_files()
    r = run([*build.make_args(build.arch_of(odir), odir), "-C", tree, "CLIPPY=1",
             "kernel/events/rust_core/perf_rust_core.o"], env=build.make_env(odir), capture=True,
            check=False)
    text = r.stdout + r.stderr
    if r.returncode != 0:
        rep.fail("gate/clippy", "CLIPPY=1 build failed:\n" + text[-3000:])
        return
    hits = []
    blocks = re.split(r"\n(?=(?:warning|error)(?:\[\S+\])?: )", text)
    for b in blocks:
        if not re.match(r"(?:warning|error)", b):
            continue
        m = re.search(r"-->\s+(\S+?):\d+:\d+", b)
        if m and any(m.group(1).endswith(f) for f in ours):
            hits.append(b.strip()[:800])
    if hits:
        rep.fail("gate/clippy", f"{len(hits)} warnings in our files:\n" + "\n".join(hits[:10]))
    else:
        rep.ok("gate/clippy")


def exported_series(tree: Path, rep: Report) -> list[Path]:
    out = cache_dir() / "export" / "series"
    pats = treemod.export(out)
    ok, msg = treemod.check_export_applies(pats)
    if ok:
        rep.ok("gate/exported series applies to pristine upstream")
    else:
        rep.fail("gate/exported series applies to pristine upstream", msg)
    return pats


CHECKPATCH_TOTAL = re.compile(r"total: (\d+) errors, (\d+) warnings, (?:\d+ checks, )?"
                              r"(\d+) lines checked")


def checkpatch_verdict(name: str, returncode: int, out: str, err: str
                       ) -> tuple[list[str], list[str], str | None]:
    """One patch's checkpatch run: its ERROR and WARNING lines, and a problem if checkpatch
    did not run through (no closing summary line, or an exit code other than 0 or 1: 1 is
    what it returns for a patch with reports)."""
    errs = [f"{name}: {line}" for line in out.splitlines() if ": ERROR:" in line]
    warns = [f"{name}: {line}" for line in out.splitlines() if ": WARNING:" in line]
    m = CHECKPATCH_TOTAL.search(out)
    if returncode not in (0, 1) or not m:
        return errs, warns, (f"{name}: checkpatch did not run through (exit {returncode}, "
                             f"{'no' if not m else 'a'} summary line): "
                             + (err or out)[-500:].strip())
    if int(m.group(1)) != len(errs) or int(m.group(2)) != len(warns):
        return errs, warns, (f"{name}: summary says {m.group(0)!r}, but {len(errs)} ERROR and "
                             f"{len(warns)} WARNING lines were read")
    return errs, warns, None


def checkpatch(tree: Path, pats: list[Path], rep: Report) -> None:
    """Every patch of the exported series through checkpatch.pl: it must run through (its
    closing 'total:' line, checked against the reports read) and report no ERROR; its
    WARNINGs are listed in the log."""
    errors, warnings, problems = [], [], []
    if not pats:
        problems.append("no patch was exported")
    for p in pats:
        # --emacs: one 'file:line: TYPE: msg' line per report, like --terse, which also
        # silences the closing summary of a clean patch.
        r = run(["perl", tree / "scripts/checkpatch.pl", "--no-tree", "--emacs", "--show-types",
                 p], capture=True, check=False, quiet=True)
        e, w, problem = checkpatch_verdict(p.name, r.returncode, r.stdout, r.stderr)
        errors += e
        warnings += w
        if problem:
            problems.append(problem)
    for w in warnings:
        log(f"checkpatch: {w}")
    if problems or errors:
        rep.fail("gate/checkpatch (runs, no errors)", "\n".join(problems + errors[:30]))
    else:
        rep.ok("gate/checkpatch (runs, no errors)")
    log(f"checkpatch: {len(pats)} patches, {len(errors)} errors, {len(warnings)} warnings")


def symbols(odir: Path, rep: Report) -> None:
    """With the Rust core, core.o must not define the replaced functions; rust_core.o must."""
    nm = f"llvm-nm{versions()['toolchain']['llvm']}"
    core = run([nm, odir / "kernel/events/core.o"], capture=True, quiet=True).stdout
    rust = run([nm, odir / "kernel/events/rust_core/perf_rust_core.o"], capture=True, quiet=True).stdout

    def defined(text: str, sym: str) -> bool:
        return re.search(rf"^\S+ [TtWw] {re.escape(sym)}$", text, re.M) is not None

    for s in RUST_CORE_SYMBOLS:
        if defined(rust, s) and not defined(core, s):
            rep.ok(f"gate/symbol {s} from Rust")
        else:
            rep.fail(f"gate/symbol {s} from Rust",
                     f"rust_core.o defines it: {defined(rust, s)}, core.o: {defined(core, s)}")
    for s in RUST_CORE_INTERNAL:
        # Neither defined nor referenced: any symbol-table line naming it.
        if re.search(rf"\s{re.escape(s)}$", core, re.M):
            rep.fail(f"gate/symbol {s} gone from core.o", "core.o still has it")
        else:
            rep.ok(f"gate/symbol {s} gone from core.o")
