# Walloc: two commands on a fresh Debian machine.
#   make demo   installs missing Debian packages, builds, runs the demo
#   make test   installs missing Debian packages, builds, runs the test suite
#   make test-sanitized   the test suite under AddressSanitizer and LeakSanitizer; kernels and coders under ThreadSanitizer
#   make report-test   the walloc eval --html report rendered in headless Chromium (not part of make test)
#   make fuzz   coverage-guided fuzzing of every parser (FUZZ_SECONDS=N per target; docs/fuzzing.md)
#   make compressed-learning   the compressed-domain learning experiment (docs/compressed-learning.md)
#   make mpq    machine perceptual quality: classifiers on decoded walloc/JPEG/WebP/AVIF/Opus inputs (docs/mpq.md)
#   make slurm-test   a local one-node Slurm runs a 4-task latents job array (root; not part of make test)
SWIFT ?= swift
# Compile for AVX2 + FMA where the CPU has them (the numeric kernels gain about 2x).
CPU_FLAGS := $(shell if [ "$$(uname -m)" = x86_64 ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then echo "-Xswiftc -target-cpu -Xswiftc haswell"; fi)
RELEASE := -c release $(CPU_FLAGS)
WALLOC := .build/release/walloc

PREFIX ?= /usr/local

.PHONY: deps build demo test test-sanitized fuzz report-test bench compare install compressed-learning mpq slurm-test clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build $(RELEASE) --product walloc

demo: build
	@scripts/demo.sh $(WALLOC)

# The Python shard loader's test runs when python3 (or $$PYTHON) has numpy and safetensors.
test: deps
	$(SWIFT) test $(RELEASE)
	@scripts/python-test.sh

# The whole test suite under AddressSanitizer and LeakSanitizer (its own build folder, optimised
# so that it finishes; leaks of the libraries below Walloc are suppressed in
# scripts/lsan-suppressions.txt), then the suites of the parallel kernels and coders under
# ThreadSanitizer (.build-tsan; any report fails the run).
TSAN_TESTS := WallocCodingTests|WallocTests\.(ParityTests|RoundTripTests|StreamingTests|WaveletTests|RateDistortionTests|DeterminismTests|VariableRateTests|DefaultModelTests|KernelTests|SmoothMarginTests|DownscaleTests)|WallocTrainingTests\.(ConvGradientTests|Layer1DGradientTests)|WallocMediaTests\.ImageRoundTripTests|WallocLearningTests\.FormatTests
test-sanitized: deps
	LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan-suppressions.txt \
	$(SWIFT) test $(RELEASE) --sanitize=address --build-path .build-asan
	TSAN_OPTIONS=halt_on_error=1 \
	$(SWIFT) test $(RELEASE) --sanitize=thread --build-path .build-tsan --filter '$(TSAN_TESTS)'


# libFuzzer + AddressSanitizer build of walloc-fuzz (its own build folder), then every target for
# FUZZ_SECONDS seconds (default 60; or FUZZ_RUNS inputs) from the seed corpus in fuzz/corpus.
# Fails on any finding. FUZZ_TARGETS picks targets (default: all).
# (swiftc keeps only its last -sanitize= option, and SwiftPM writes one per --sanitize in no fixed
# order, so the Swift code gets both as one option: otherwise a build got coverage or ASan, not both.)
fuzz: deps
	$(SWIFT) build $(RELEASE) --sanitize=fuzzer --sanitize=address --build-path .build-fuzz \
		--product walloc-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DWALLOC_LIBFUZZER
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) FUZZ_RUNS=$(FUZZ_RUNS) scripts/fuzz.sh $(FUZZ_TARGETS)

# Renders the visual report of the sample photo and music in headless Chromium (installs Debian's
# chromium when missing and run as root) and checks that every picture was drawn.
report-test: build
	scripts/report-test.sh

bench: build
	$(WALLOC) bench

# The executable and the default models (found in PREFIX/share/walloc/models).
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/walloc/models
	install -m 755 $(WALLOC) $(DESTDIR)$(PREFIX)/bin/walloc
	cp -R Sources/WallocPipeline/Models/image Sources/WallocPipeline/Models/audio $(DESTDIR)$(PREFIX)/share/walloc/models/

# Needs the PyTorch reference in the active Python environment (see BENCHMARKS.md).
compare: build
	python3 scripts/compare_reference.py --walloc $(WALLOC)

# Variables passed on: IMAGE_MODEL, AUDIO_MODEL (default: the embedded models), SEED, DATA, TASK (image|audio|all).
compressed-learning: deps
	@scripts/install-deps.sh --experiments
	$(SWIFT) build $(RELEASE) --product walloc
	$(SWIFT) build $(RELEASE) --product walloc-experiments
	scripts/compressed-learning.sh $(or $(TASK),all)

# Variables passed on as for compressed-learning, and EPOCHS, IMAGE_CODECS, AUDIO_CODECS,
# IMAGE_QUALITIES, AUDIO_QUALITIES (see scripts/mpq.sh).
mpq: deps
	@scripts/install-deps.sh --experiments
	$(SWIFT) build $(RELEASE) --product walloc
	$(SWIFT) build $(RELEASE) --product walloc-experiments
	scripts/mpq.sh $(or $(TASK),all)

# Installs slurm-wlm and munge when missing, starts a one-node cluster on localhost (state in a
# temporary folder), converts a dataset with a 4-task array + merge job, checks the shards against
# a one-worker run, and stops the daemons it started (docs/compressed-learning.md).
slurm-test: deps
	$(SWIFT) build $(RELEASE) --product walloc
	$(SWIFT) build $(RELEASE) --product walloc-experiments
	scripts/slurm-test.sh

clean:
	rm -rf .build
