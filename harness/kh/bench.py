"""`make bench`: the Rust core against the C core, side by side, as ratios.

Both kernels are built from the same tree with the bench profile (no debug options),
CONFIG_PERF_EVENTS_RUST_CORE=y and =n. Rounds alternate the order (C, Rust, then Rust, C)
so that drift on a shared machine hits both equally. Each boot runs every workload once
(guest/bench.sh). Two measures: wall time under TCG, and TCG with `-icount shift=0,sleep=off`,
where guest time counts executed instructions and host noise cannot move it (the headline).
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import build, guest, parsers, rootfs, suites
from .common import KhError, cache_dir, log

ARCH = "x86_64"
# The bench kernels carry the KUnit suites (common.config), and the Rust core's open CPU
# kernel counters, which link the embedded per-CPU epc of their PMU into a CPU context for
# good (as any first CPU event does, on either core): the Rust kernel would then walk a
# longer CPU-context epc list in every ctx_resched() and sched in than the C kernel. The
# suites do not run when measuring, so both kernels start in the same state.
BENCH_CMDLINE = "kunit.enable=0"
UNITS = {"sched-pipe": "µs/op", "sched-pipe-threaded": "µs/op", "messaging": "ms",
         "mem-task-event": "B/event"}
# The rows of the coming slices' paths (guest/src/kh-bench.c), each with its floor.
SLICE_ROWS = ["fork-inherit", "exec", "ctx-swap", "multiplex"]
FLOORS = {"sched-pipe": "floor:sched-pipe", "sched-pipe-threaded": "floor:sched-pipe-threaded",
          "messaging": "floor:messaging", **{w: f"floor:{w}" for w in SLICE_ROWS}}


# Every workload of guest/bench.sh: each must give a number on both cores in every round.
WORKLOADS = ["sched-pipe", "sched-pipe-threaded", "floor:sched-pipe",
             "floor:sched-pipe-threaded", "messaging", "floor:messaging", "open-task",
             "open-cpu-local", "open-cpu-remote", "open-group4", "read", "enable-disable",
             *[v for w in SLICE_ROWS for v in (w, f"floor:{w}")], "mem-task-event"]


def parse_bench(text: str) -> tuple[dict[str, float], list[str]]:
    """'KH-BENCH <name> <value>' lines → {name: value}, and the problems: a workload that
    failed (KH-BENCH-FAIL), gave no number, or is missing from WORKLOADS' list."""
    out: dict[str, float] = {}
    problems = []
    for line in parsers.strip_ansi(text).split("\n"):
        parts = line.split()
        if parts[:1] == ["KH-BENCH-FAIL"]:
            problems.append(line.strip())
        elif parts[:1] == ["KH-BENCH"]:
            try:
                if len(parts) != 3:
                    raise ValueError
                out[parts[1]] = float(parts[2])
            except ValueError:
                problems.append(f"no number: {line.strip()!r}")
    for w in WORKLOADS:
        if w not in out and not any(p.split()[1:2] == [w] for p in problems):
            problems.append(f"{w}: missing")
    return out, problems


@dataclass
class Row:
    workload: str
    unit: str
    c: list[float] = field(default_factory=list)
    rust: list[float] = field(default_factory=list)

    def ratios(self) -> list[float]:
        """Per-round Rust/C ratios (rounds pair one C and one Rust boot)."""
        return [r / c for c, r in zip(self.c, self.rust) if c > 0]

    def ratio(self) -> float:
        return statistics.median(self.rust) / statistics.median(self.c)


def summarise(results: dict[str, dict[str, list[float]]]) -> list[Row]:
    """results[core][workload] = values per round → rows (floors included, named floor:*)."""
    rows = []
    names = [n for n in results.get("c", {}) if n in results.get("rust", {})]
    for n in names:
        unit = UNITS.get(n.removeprefix("floor:"), "ns/op")
        rows.append(Row(n, unit, results["c"][n], results["rust"][n]))
    return rows


def table(rows: list[Row], mode: str, rounds: int) -> str:
    by = {r.workload: r for r in rows}
    lines = [f"mode {mode}, {rounds} rounds (medians; spread = min-max of per-round Rust/C)",
             f"{'workload':<28}{'C':>12}{'Rust':>12}{'Rust/C':>9}  {'spread':<15}"
             f"{'overhead C':>12}{'overhead Rust':>15}  unit"]
    for r in rows:
        rs = r.ratios()
        spread = f"{min(rs):.3f}-{max(rs):.3f}" if rs else "-"
        ov_c = ov_r = ""
        floor = by.get(FLOORS.get(r.workload, ""))
        if floor:
            ov_c = f"{statistics.median(r.c) - statistics.median(floor.c):.2f}"
            ov_r = f"{statistics.median(r.rust) - statistics.median(floor.rust):.2f}"
        lines.append(f"{r.workload:<28}{statistics.median(r.c):>12.2f}"
                     f"{statistics.median(r.rust):>12.2f}{r.ratio():>9.3f}  {spread:<15}"
                     f"{ov_c:>12}{ov_r:>15}  {r.unit}")
    return "\n".join(lines)


def svg_plot(rows: list[Row], title: str) -> str:
    """Horizontal plot: Rust/C median ratio per workload with its min-max whisker."""
    rows = [r for r in rows if r.ratios()]
    w, left, top, bar = 760, 230, 40, 26
    h = top + bar * len(rows) + 50
    lo = min([0.9] + [min(r.ratios()) for r in rows])
    hi = max([1.1] + [max(r.ratios()) for r in rows])

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (w - left - 80)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{x(1.0):.1f}" y1="{top - 5}" x2="{x(1.0):.1f}" y2="{h - 40}" '
           'stroke="#888" stroke-dasharray="4,3"/>']
    for i, r in enumerate(rows):
        y = top + i * bar + bar / 2
        rs = r.ratios()
        colour = "#2a7" if r.ratio() <= 1.0 else "#c53"
        out += [f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{r.workload}</text>',
                f'<line x1="{x(min(rs)):.1f}" y1="{y}" x2="{x(max(rs)):.1f}" y2="{y}" '
                f'stroke="{colour}" stroke-width="2"/>',
                f'<circle cx="{x(r.ratio()):.1f}" cy="{y}" r="5" fill="{colour}"/>',
                f'<text x="{x(max(rs)) + 6:.1f}" y="{y + 4}">{r.ratio():.3f}</text>']
    for t in (lo, 1.0, hi):
        out.append(f'<text x="{x(t):.1f}" y="{h - 22}" text-anchor="middle">{t:.2f}</text>')
    out.append(f'<text x="{w / 2}" y="{h - 6}" text-anchor="middle">Rust/C (median, '
               'whisker: min-max of per-round ratios; lower is faster)</text></svg>')
    return "\n".join(out)


def headline(rows: list[Row], rounds: int, mode: str) -> str:
    main = [r for r in rows if not r.workload.startswith("floor:")]
    if not main:
        raise KhError("no benchmark results")
    worst = max(main, key=lambda r: r.ratio())
    best = min(main, key=lambda r: r.ratio())
    return (f"bench: worst Rust/C {worst.ratio():.3f} ({worst.workload}), best {best.ratio():.3f} "
            f"({best.workload}), {len(main)} workloads, {rounds} rounds ({mode})")


def run(tree: Path, rounds: int, modes: list[str]) -> int:
    kernels = {}
    for core in ("c", "rust"):
        build.build(tree, ARCH, f"bench-{core}")
        kernels[core] = build.kernel_image(ARCH, f"bench-{core}")
    img = rootfs.ensure_image()
    payload = suites.make_payload("bench", ["bench"])
    results = {m: {"c": {}, "rust": {}} for m in modes}
    t0 = time.monotonic()
    for rnd in range(rounds):
        order = ("c", "rust") if rnd % 2 == 0 else ("rust", "c")
        for mode in modes:
            for core in order:
                out = cache_dir() / "results" / f"bench-{mode}-{core}"
                res = guest.boot(kernels[core], img, payload, out, timeout=900,
                                 icount=(mode == "icount"), quiet_kvm=True,
                                 cmdline=BENCH_CMDLINE)
                sections, _ = parsers.parse_sections(res.results)
                sec = sections.get("bench")
                vals, problems = parse_bench(sec.text) if sec else ({}, ["no bench section"])
                splats = parsers.find_splats(res.console)
                if res.hang:
                    problems.append(res.hang)
                if res.timed_out:
                    problems.append("guest timed out")
                if sec and sec.rc != 0:
                    problems.append(f"bench section rc={sec.rc}")
                if splats:
                    problems.append(f"{len(splats)} console reports; first:\n{splats[0]}")
                if problems:
                    raise KhError(f"bench round {rnd + 1} ({mode}, {core}) failed: "
                                  + "; ".join(problems) + f"; see {out}")
                for k, v in vals.items():
                    results[mode][core].setdefault(k, []).append(v)
        log(f"bench round {rnd + 1}/{rounds} done ({time.monotonic() - t0:.0f}s)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    outdir = cache_dir() / "bench" / stamp
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "results.json").write_text(json.dumps(results, indent=1))
    heads = {}
    for mode in modes:
        rows = summarise(results[mode])
        with open(outdir / f"{mode}.csv", "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["workload", "unit", "c_median", "rust_median", "ratio", "ratio_min",
                         "ratio_max", "c_values", "rust_values"])
            for r in rows:
                rs = r.ratios()
                wr.writerow([r.workload, r.unit, statistics.median(r.c), statistics.median(r.rust),
                             f"{r.ratio():.4f}", f"{min(rs):.4f}", f"{max(rs):.4f}",
                             " ".join(map(str, r.c)), " ".join(map(str, r.rust))])
        (outdir / f"{mode}.svg").write_text(
            svg_plot(rows, f"Rust/C, {mode}, {rounds} rounds, x86_64 QEMU TCG"))
        print(f"\n{table(rows, mode, rounds)}\n")
        heads[mode] = headline(rows, rounds, mode)
        print(f"{mode}: {heads[mode]}")
    print(f"results: {outdir} (results.json, <mode>.csv, <mode>.svg)")
    # The last line is the headline: the deterministic measure when it ran.
    print(heads.get("icount", heads[modes[-1]]))
    return 0
