# trainer: an OpenMP CNN trainer for MNIST.
#   make            build ./trainer (optimised for this CPU; PORTABLE=1 for any x86-64)
#   make run        install what is missing (apt packages, MNIST), build, train configs/default.ini
#   make test       unit and command-line tests, then the same suite under ASan+UBSan
#   make bench      throughput table (scripts/bench.sh)
#   make bench-mpi  1 vs 2 MPI ranks over TCP, uncapped and capped at 1 Gbit/s (scripts/bench-mpi.sh)
#   make install    PREFIX=/usr/local DESTDIR=

CC      ?= gcc
PREFIX  ?= /usr/local
DATADIR ?= $(PREFIX)/share/trainer
# systemd reads units from /usr/local/lib/systemd/system as well as /etc.
SYSTEMDDIR ?= $(PREFIX)/lib/systemd/system

ifeq ($(PORTABLE),1)
  ARCH_FLAGS ?= -mtune=generic
else
  ARCH_FLAGS ?= -march=native
endif
# FMA contraction is off by default in ISO C mode; the kernels want it. The
# model bytes stay identical across thread counts for a given binary.
# Nothing reads errno after a math call, and with it GCC cannot vectorise
# a loop that calls sqrtf (the Adam step); sqrt is exact either way.
FP_FLAGS := -ffp-contract=fast -fno-math-errno
OPT_FLAGS ?= -O3 $(ARCH_FLAGS) $(FP_FLAGS)

# make MPI=1: the same trainer, built with Open MPI's mpicc, runs one
# process per node under mpirun or srun (dist.h).
ifeq ($(MPI),1)
  CC := mpicc
  CPPFLAGS += -DTRAINER_MPI
endif

ifeq ($(NO_OMP),1)
  # The omp pragmas are meant to be ignored here.
  OMP_FLAGS := -Wno-unknown-pragmas
else
  OMP_FLAGS := -fopenmp
endif

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2
CPPFLAGS += -Iinclude -D_GNU_SOURCE -DTRAINER_DATADIR='"$(DATADIR)"'
CFLAGS   ?= $(OPT_FLAGS)
CFLAGS   += -std=c11 $(WARN) $(OMP_FLAGS) -MMD -MP
LDLIBS   += -linih -lpng -ljpeg -lprotobuf-c -lnettle -lisal -lz -lm

# The ONNX messages: C code that protoc-c generates at build time from the
# schema Debian ships (libonnx-dev), never edited by hand.
ONNX_INCLUDE ?= /usr/include
ONNX_PROTO := $(ONNX_INCLUDE)/onnx/onnx.proto
GEN      := build/gen
GEN_SRCS := $(GEN)/onnx/onnx.pb-c.c
CPPFLAGS += -I$(GEN)

SRCS := $(filter-out src/main.c,$(wildcard src/*.c)) $(GEN_SRCS)
OBJS := $(patsubst $(GEN)/onnx/%.c,build/%.o,$(SRCS:src/%.c=build/%.o))

.PHONY: all run test deps test-deps data bench bench-mpi fuzz install uninstall clean

all: trainer

trainer: $(OBJS) build/main.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	@echo "built ./trainer ($(if $(filter 1,$(NO_OMP)),no OpenMP,OpenMP); $(OPT_FLAGS))"

build/%.o: src/%.c | build
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# cli.o has DATADIR compiled in: rebuild it when DATADIR changes (make
# install PREFIX=X after a plain make).
build/datadir: FORCE | build
	@echo '$(DATADIR)' | cmp -s - $@ || echo '$(DATADIR)' > $@
build/cli.o: build/datadir
FORCE:

$(GEN)/onnx/%.pb-c.c $(GEN)/onnx/%.pb-c.h: $(ONNX_PROTO)
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -I$(ONNX_INCLUDE) $<

build/onnx.pb-c.o: $(GEN)/onnx/onnx.pb-c.c | build
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# Before the first build there are no .d files to say so.
build/onnx_export.o: $(GEN)/onnx/onnx.pb-c.h

build build/test build/asan build/mpi:
	mkdir -p $@

deps:
	@scripts/install-deps.sh

# ONNX Runtime for tests/onnx.bats, from the npm registry at the locked
# version; its install script would fetch CUDA libraries we do not use.
test-deps:
	@scripts/install-deps.sh --test
	@cd tests/onnx && { [ node_modules/.package-lock.json -nt package-lock.json ] || \
		ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci --no-audit --no-fund --loglevel=error; }

data:
	@scripts/fetch-mnist.sh

run: deps data
	$(MAKE) trainer
	./trainer configs/default.ini

# ---- tests ----
# The suite is built twice: once with -Werror, once under AddressSanitizer
# and UndefinedBehaviorSanitizer; both must pass.
TEST_SRCS := $(wildcard tests/unit/*.c)
# The tests build for this CPU like the real binary, so they exercise the
# same vector paths.
TEST_CFLAGS := -std=c11 $(WARN) -Werror -fopenmp -g $(ARCH_FLAGS) $(FP_FLAGS)
ASAN_CFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

build/test/%: CFLAGS := -O3 $(TEST_CFLAGS)
build/asan/%: CFLAGS := $(ASAN_CFLAGS) $(TEST_CFLAGS)
# The MPI build of the suite: Open MPI's mpicc around the same flags.
build/mpi/%: CFLAGS := -DTRAINER_MPI -O3 $(TEST_CFLAGS)
SUITE_CC = $(CC)
build/mpi/%: SUITE_CC = mpicc

# Each of these builds (test, asan, mpi) compiles every source once into
# build/NAME/obj, so make -j spreads the files over the cores and a
# build's trainer and unit tests link the same objects. No .d files here:
# every object depends on every header and included kernel template.
HDRS := $(wildcard include/*.h src/*.h src/*.inc tests/unit/*.h)
build_objs = $(patsubst $(GEN)/onnx/%.c,build/$(1)/obj/%.o,$(SRCS:src/%.c=build/$(1)/obj/%.o))

define objs_rules # NAME
build/$(1)/obj/%.o: src/%.c $$(HDRS) $$(GEN)/onnx/onnx.pb-c.h
	@mkdir -p $$(@D)
	$$(SUITE_CC) $$(CPPFLAGS) $$(CFLAGS) -c -o $$@ $$<
build/$(1)/obj/onnx.pb-c.o: $$(GEN)/onnx/onnx.pb-c.c
	@mkdir -p $$(@D)
	$$(SUITE_CC) $$(CPPFLAGS) $$(CFLAGS) -c -o $$@ $$<
endef
$(foreach b,test asan mpi,$(eval $(call objs_rules,$(b))))
# Reached only through the pattern rules below, the objects would count as
# intermediate and be deleted after each link, so every later make of a
# suite binary compiled all of them again.
.SECONDARY: $(foreach b,test asan mpi,$(call build_objs,$(b)) build/$(b)/obj/main.o)

.SECONDEXPANSION:
build/%/trainer: $$(call build_objs,$$*) build/%/obj/main.o
	$(SUITE_CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/%/unit_tests: $$(call build_objs,$$*) $(TEST_SRCS) $(HDRS)
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -o $@ $(filter %.o %.c,$^) $(LDLIBS) -lcmocka

# The kernel tests again, built for the CPUs other builds target: 256-bit
# vectors (-mavx2 -mfma), no -march at all (SSE2 only), and no vector
# types (TRAINER_NO_VECTORS, the plain loops). Every fast path is held
# against the reference kernels wherever it can run. -O1 keeps these
# builds quick; the vector code they run is the same.
KERNEL_VARIANTS := avx2 generic novec
build/kernels-avx2/kernel_tests: KFLAGS := -mavx2 -mfma
build/kernels-generic/kernel_tests: KFLAGS := -mtune=generic
build/kernels-novec/kernel_tests: KFLAGS := $(ARCH_FLAGS) -DTRAINER_NO_VECTORS
build/kernels-%/kernel_tests: $(SRCS) tests/unit/main.c tests/unit/test_kernels.c tests/unit/util.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/unit -DKERNELS_ONLY -O1 -std=c11 $(WARN) -Werror -fopenmp -g $(KFLAGS) \
	    $(FP_FLAGS) -o $@ $(filter %.c,$^) $(LDLIBS) -lcmocka

test: test-deps data
	$(MAKE) -j$$(nproc) trainer build/test/trainer build/test/unit_tests build/asan/trainer build/asan/unit_tests build/mpi/trainer \
	    $(KERNEL_VARIANTS:%=build/kernels-%/kernel_tests)
	@tests/run.sh

# ---- fuzzing (clang's libFuzzer): make fuzz FUZZ_SECONDS=600 ----
# Each target runs FUZZ_SECONDS; corpora live in build/fuzz/corpus-NAME and
# start from tests/fuzz/seeds-NAME; crashes land in build/fuzz/.
FUZZ_TARGETS := idx config model image
FUZZ_SECONDS ?= 60
# The fuzzers read files; the conv kernels use GCC's vector builtins, which clang
# lacks, so they build the plain loops (-DTRAINER_NO_VECTORS).
FUZZ_CFLAGS := -std=c11 -g -O1 $(ARCH_FLAGS) -DTRAINER_NO_VECTORS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

build/fuzz:
	mkdir -p $@

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(SRCS) | build/fuzz
	clang $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $^ $(LDLIBS)

fuzz:
	@scripts/install-deps.sh --fuzz
	$(MAKE) $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus-$$t; \
		echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
		build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
			-artifact_prefix=build/fuzz/$$t- build/fuzz/corpus-$$t tests/fuzz/seeds-$$t \
			> build/fuzz/$$t.log 2>&1; rc=$$?; \
		grep -E '^#[0-9]+.*DONE|Done [0-9]+ runs|ERROR|SUMMARY' build/fuzz/$$t.log; \
		[ $$rc -eq 0 ] || { echo "fuzz_$$t failed: see build/fuzz/$$t.log"; exit 1; }; \
	done

bench: deps data trainer
	@scripts/install-deps.sh --bench
	@scripts/bench.sh

bench-mpi: data
	@scripts/install-deps.sh --bench-mpi
	$(MAKE) build/mpi/trainer
	@scripts/bench-mpi.sh

# The scripts find the installed binary as ../../../bin/trainer from
# $(DATADIR)/scripts, so keep DATADIR under PREFIX.
# BIN: the binary to install (the tests install the one they test).
BIN ?= trainer
install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(DATADIR)/configs $(DESTDIR)$(DATADIR)/scripts \
		$(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/trainer
	install -m 644 configs/*.ini $(DESTDIR)$(DATADIR)/configs/
	install -m 644 configs/default.ini $(DESTDIR)$(DATADIR)/default.ini
	install -m 755 scripts/retrain.sh scripts/rollback.sh scripts/fetch-mnist.sh $(DESTDIR)$(DATADIR)/scripts/
	install -m 644 scripts/registry.sh scripts/crontab.example $(DESTDIR)$(DATADIR)/scripts/
	install -m 644 docs/trainer.1 $(DESTDIR)$(PREFIX)/share/man/man1/trainer.1
	install -d $(DESTDIR)$(SYSTEMDDIR)
	for u in trainer-retrain.service trainer-retrain.timer; do \
		sed 's|@DATADIR@|$(DATADIR)|g' scripts/systemd/$$u > $(DESTDIR)$(SYSTEMDDIR)/$$u && \
		chmod 644 $(DESTDIR)$(SYSTEMDDIR)/$$u || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/trainer $(DESTDIR)$(PREFIX)/share/man/man1/trainer.1 \
		$(DESTDIR)$(SYSTEMDDIR)/trainer-retrain.service $(DESTDIR)$(SYSTEMDDIR)/trainer-retrain.timer
	rm -rf $(DESTDIR)$(DATADIR)

clean:
	rm -rf build trainer

-include $(OBJS:.o=.d) build/main.d
