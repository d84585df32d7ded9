"""kh: the host-side harness of the perf Rust core project.

It fetches and caches the pinned upstream Linux source, materialises our delta
into a git work tree, builds kernels, builds a Debian guest, boots it in QEMU,
runs the suites and compares them with the recorded C baselines.
"""
