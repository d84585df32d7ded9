# The perf Rust core project: see README.md. The kernel's own Makefile lives in the
# materialised tree (in the cache); these targets drive harness/kh.
KH := cd harness && python3 -m kh
TIMEOUT ?= 3600
FULL_FLAG := $(if $(FULL),--full,)$(if $(PART), --part $(PART),)
PROFILE ?= debug-rust

.PHONY: run test bench crossings stress stress-selfcheck soak tree refresh build rootfs baseline patches unit toolchain hostcheck clean help

help:
	@sed -n 's/^## //p' README.md | head -40

# ARCH: x86_64 (default) or arm64; `make test` also takes a comma-separated list.
# The harness gives every make it starts its ARCH explicitly (see harness/kh/__main__.py).
KH_ARCH := $(or $(ARCH),x86_64)
QUICK_FLAG := $(if $(QUICK),--quick,)

run:		## the main job: build, boot, perf stat/record/report in the guest (ARCH=arm64: + cycles, instructions)
	$(KH) run --profile $(PROFILE) --arch $(KH_ARCH)

test:		## every suite; last line "N passed, N failed, N skipped"; ARCH=arm64 [QUICK=1]
	$(KH) test --timeout $(TIMEOUT) $(FULL_FLAG) --arch $(KH_ARCH) $(QUICK_FLAG)

bench:		## Rust core vs C core as ratios (QUICK=1: 3 rounds instead of 10)
	$(KH) bench --rounds $(if $(QUICK),3,10)

stress:		## MINUTES (30) of parallel load under KASAN/lockdep/kmemleak; CORE=rust|c
	$(KH) stress --minutes $(or $(MINUTES),30) --core $(or $(CORE),rust) $(if $(KIND),--kind $(KIND),)

stress-selfcheck:	## each detector make stress counts, fired once on the stress/kcsan kernels (LKDTM); CORE=rust|c BOOTS=
	$(KH) stress-selfcheck --core $(or $(CORE),rust) $(if $(BOOTS),--boots $(BOOTS),)

crossings:	## calls and C<->Rust crossings per operation, both cores, from QEMU's exec log (PROFILE=bench|debug)
	$(KH) crossings --profile $(or $(filter bench debug,$(PROFILE)),bench) --ops $(or $(N),200)

soak:		## N (20) runs of the same guest (ARCH=arm64, PROFILE, PARTS, LOAD=host hogs): hangs, failures
	$(KH) soak --profile $(PROFILE) --arch $(or $(ARCH),arm64) --n $(or $(N),20) $(if $(PARTS),--parts $(PARTS),) --load $(or $(LOAD),0)

toolchain:	## install/check clang, rust-src, bindgen, QEMU, debootstrap
	$(KH) toolchain

hostcheck:	## the toolchain step in a minimal bookworm chroot: every host command we run is found
	$(KH) hostcheck

tree:		## materialise upstream + our delta in the cache work tree
	$(KH) tree

refresh:	## copy commits of the work tree (REV=, default HEAD) back into linux/ and patches/
	$(KH) refresh --rev $(or $(REV),HEAD)

build:		## build one kernel profile (PROFILE=debug-rust|debug-c|bench-rust|bench-c)
	$(KH) build --profile $(PROFILE) --arch $(KH_ARCH)

rootfs:		## build the Debian guest image
	$(KH) rootfs --arch $(KH_ARCH)

baseline:	## regenerate the C-core baselines (CONFIG_PERF_EVENTS_RUST_CORE=n)
	$(KH) baseline --timeout $(TIMEOUT) $(FULL_FLAG) --arch $(KH_ARCH) $(if $(REUSE),--reuse,)

patches:	## export the delta as a git format-patch series into out/series
	$(KH) patches --out $(CURDIR)/out/series $(if $(CHECK),--check,) $(if $(FROM),--from $(FROM),)

unit:		## the harness's own unit tests
	$(KH) unit

clean:		## remove out/ (the cache is left alone: see README)
	rm -rf out
