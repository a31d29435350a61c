# Thin shortcuts over CMake. Everything here is plain CMake/CTest underneath:
#   cmake -S . -B build && cmake --build build && (cd build && ctest)
#
#   make demo     install missing deps, build, render the SES examples into demo-out/
#   make test     install missing deps, build with -Werror and run every test, then again
#                 with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   make build    configure and build build/
#   make asan     configure and build build-asan/ (sanitizers) and run its tests
#   make fuzz     build the libFuzzer harnesses with clang into build-fuzz/
#   make bench    build Release into build-bench/ and run the benchmarks
#   make format   clang-format every C file we own
#   make install  install into PREFIX (default /usr/local)
#   make clean    remove every build directory and demo-out/

BUILD       ?= build
ASAN_BUILD  ?= build-asan
FUZZ_BUILD  ?= build-fuzz
BENCH_BUILD ?= build-bench
PREFIX      ?= /usr/local
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
WERROR      ?= OFF
CMAKE       ?= cmake
CTEST       ?= ctest
CMAKE_ARGS  ?=

SANITIZER_ENV = ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
CTEST_FLAGS   = --output-on-failure --no-tests=error --timeout 900 -j$(JOBS)
FORMAT_DIRS   = src include tests fuzz benchmarks

.PHONY: all deps build demo test test-main test-asan asan fuzz bench format install clean

all: build

deps:
	bash scripts/install-deps.sh

build: deps
	$(CMAKE) -S . -B $(BUILD) -DMAILBARS_WERROR=$(WERROR) $(CMAKE_ARGS)
	$(CMAKE) --build $(BUILD) -j$(JOBS)

demo: build
	MAILBARS=$(BUILD)/mailbars bash scripts/demo.sh

# Both builds run even when the first fails, so one run shows every failure; the exit status is
# non-zero if either failed.
test: deps
	@rc=0; \
	$(MAKE) --no-print-directory test-main || rc=1; \
	$(MAKE) --no-print-directory test-asan || rc=2$$rc; \
	case $$rc in \
	0) echo "make test: all tests passed (normal and sanitizer builds)" ;; \
	1) echo "make test: FAILED in the normal build ($(BUILD))" ;; \
	20) echo "make test: FAILED in the sanitizer build ($(ASAN_BUILD))" ;; \
	*) echo "make test: FAILED in both builds" ;; \
	esac; \
	[ $$rc = 0 ]

test-main:
	$(CMAKE) -S . -B $(BUILD) -DMAILBARS_WERROR=ON $(CMAKE_ARGS)
	$(CMAKE) --build $(BUILD) -j$(JOBS)
	cd $(BUILD) && $(CTEST) $(CTEST_FLAGS)

test-asan:
	$(CMAKE) -S . -B $(ASAN_BUILD) -DMAILBARS_SANITIZE=ON -DMAILBARS_WERROR=ON $(CMAKE_ARGS)
	$(CMAKE) --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && $(SANITIZER_ENV) $(CTEST) $(CTEST_FLAGS)

asan: deps test-asan

fuzz:
	bash scripts/install-deps.sh --fuzz
	$(CMAKE) -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DMAILBARS_FUZZ=ON $(CMAKE_ARGS)
	$(CMAKE) --build $(FUZZ_BUILD) -j$(JOBS)
	@echo "make fuzz: harnesses built in $(FUZZ_BUILD)/fuzz/ (see fuzz/README.md to run them)"

bench: deps
	$(CMAKE) -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DMAILBARS_BENCH=ON $(CMAKE_ARGS)
	$(CMAKE) --build $(BENCH_BUILD) -j$(JOBS)
	$(CMAKE) --build $(BENCH_BUILD) --target bench

format:
	find $(FORMAT_DIRS) -name '*.[ch]' -type f -print0 2>/dev/null | xargs -0 -r clang-format -i

install: build
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(BENCH_BUILD) demo-out
