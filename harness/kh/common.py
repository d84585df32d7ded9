"""Paths, configuration and process helpers shared by the harness."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class KhError(Exception):
    """An error the user must see; printed without a traceback."""


def cache_dir() -> Path:
    """The persistent cache (outside the checkout): $KH_CACHE or ~/.cache/perf-rust."""
    d = Path(os.environ.get("KH_CACHE", Path.home() / ".cache" / "perf-rust"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def versions() -> dict:
    with open(REPO / "versions.toml", "rb") as f:
        return tomllib.load(f)


_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[kh {time.monotonic() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# Where a run's time went: (step, seconds) of every step that took long (toolchain, kernel
# builds, rootfs, guests), in the order they ended; `make test` prints them just above its
# summary line, so that CI's tail says which step made a run slow.
STEPS: list[tuple[str, float]] = []


def took(step: str, secs: float) -> None:
    STEPS.append((step, secs))


def steps_line() -> str:
    """The steps of 5 s or more (an incremental step is not worth a word)."""
    return "times: " + ", ".join(f"{s} {t:.0f}s" for s, t in STEPS if t >= 5)


def warn(msg: str) -> None:
    bar = "!" * 78
    print(f"{bar}\n!! WARNING: {msg}\n{bar}", file=sys.stderr, flush=True)


def run(cmd, *, cwd=None, env=None, check=True, capture=False, quiet=False, stdout=None,
        stderr=None, input=None, timeout=None) -> subprocess.CompletedProcess:
    """Runs a command, echoing it; raises KhError naming it when it fails."""
    if not quiet:
        log("$ " + " ".join(shlex.quote(str(c)) for c in cmd))
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=full_env, text=True,
                             capture_output=capture, stdout=stdout, stderr=stderr,
                             input=input, timeout=timeout)
    except FileNotFoundError as e:
        raise KhError(f"command not found: {cmd[0]} ({e})") from e
    if check and res.returncode != 0:
        detail = ""
        if capture:
            detail = "\n" + (res.stdout or "")[-3000:] + (res.stderr or "")[-3000:]
        raise KhError(f"command failed (exit {res.returncode}): "
                      f"{' '.join(shlex.quote(str(c)) for c in cmd)}{detail}")
    return res


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_paths(paths, extra: str = "") -> str:
    """A content hash of files (sorted by path) and a string: a cache key."""
    h = hashlib.sha256(extra.encode())
    for p in sorted(Path(p) for p in paths):
        h.update(str(p).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class Stamp:
    """A file recording the key of a finished, cached step."""
    path: Path

    def ok(self, key: str) -> bool:
        return self.path.exists() and self.path.read_text().strip() == key

    def set(self, key: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(key + "\n")
