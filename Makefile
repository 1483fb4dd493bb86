# dozed — scale-to-zero for Docker and Podman hosts.
# make          build the daemon, its client and the eBPF objects
# make check    install missing packages, build, run every test (ASan/UBSan)
# make lint     cppcheck, clang-format, the include rules, systemd-analyze security of the unit
# make bench    benchmarks, peers side by side
# make fuzz     every libFuzzer target for FUZZ_SECONDS each (make check: 30 s)
# make stress   crash safety at 20 moments and the soak (minutes; not in CI)
# make deps     install what is missing (Debian 12, as root)

PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc
CLANG    ?= clang
BPFTOOL  ?= $(or $(shell command -v bpftool 2>/dev/null),/usr/sbin/bpftool)
PKG_CONFIG ?= pkg-config
# The BPF programs use UAPI headers only. clang -target bpf searches none of
# the host's system directories, <asm/types.h>'s multiarch one included: pass
# it the ones clang itself uses for the host (as libbpf-bootstrap does).
BPF_SYS_INCLUDES := $(shell $(CLANG) -v -E - </dev/null 2>&1 | \
	sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')

PKGS := libbpf libnftnl libmnl libevent libsystemd json-c

# Debian packages: build, tests and lint. `make deps` installs the missing ones.
DEB_PKGS := make gcc libc6-dev pkg-config clang llvm bpftool libbpf-dev libnftnl-dev libmnl-dev \
	    libevent-dev libsystemd-dev libjson-c-dev nftables iproute2 cppcheck clang-format \
	    procps util-linux podman runc netavark aardvark-dns docker.io busybox-static iptables \
	    curl jq socat systemd systemd-container libclang-rt-dev \
	    postgresql-15 postgresql-client-15 redis-server redis-tools \
	    prometheus docker-compose podman-compose mandoc bash-completion libcurl4-openssl-dev

WARN     := -Wall -Wextra -Werror
CPPFLAGS := -D_GNU_SOURCE -Iinclude -I$(BUILD)
CFLAGS   ?= -O2 -g
# Asked once per make, not once per compile. On a fresh host they are empty
# until `make deps` has run: `make check` re-runs make after installing.
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LDLIBS     := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
# dozectl speaks JSON over a unix socket: it links json-c and nothing else.
DOZECTL_LDLIBS := $(shell $(PKG_CONFIG) --libs json-c 2>/dev/null)
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(CPPFLAGS) $(PKG_CFLAGS)
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Each part is a set of modules; the daemon's entry points are kept apart.
# daemon/ is its core plus one folder per subsystem (runtime/, control/,
# dozectl/, basic/); bpf/ holds each program (foo.bpf.c) beside its loader (foo.c).
MAINS    := daemon/dozed_main.c daemon/dozectl/dozectl.c
BPF_SRCS := $(wildcard bpf/*.bpf.c)
LIB_SRCS := $(filter-out $(MAINS) $(BPF_SRCS),$(wildcard daemon/*.c daemon/*/*.c nft/*.c activator/*.c bpf/*.c))
SKELS    := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
TEST_LIB := $(wildcard tests/lib/*.c)
TESTS    := $(patsubst %.c,$(BUILD)/%,$(wildcard tests/unit/test_*.c tests/integration/test_*.c))
BENCHES  := $(patsubst %.c,$(BUILD)/%,$(wildcard tests/bench/*.c))
# End-to-end: scripts driving the built binaries against real runtimes.
E2E      := $(wildcard tests/e2e/test_*.sh)
# libFuzzer targets, on the same sources built by clang with coverage.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_OBJS := $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(LIB_SRCS))
FUZZ_SAN  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_SECONDS ?= 120
FUZZ_CHECK_SECONDS ?= 30

LIB_OBJS  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
ASAN_OBJS := $(patsubst %.c,$(BUILD)/asan/%.o,$(LIB_SRCS) $(TEST_LIB))
BINS      := $(BUILD)/dozed $(BUILD)/dozectl

.PHONY: all check test lint format bench demo install clean deps deps-if-missing fuzz fuzz-build \
	stress lint-unit
.DELETE_ON_ERROR:
.SECONDARY:

all: $(BINS)

# --- eBPF: objects and skeletons ------------------------------------------------

$(BUILD)/%.bpf.o: bpf/%.bpf.c
	@mkdir -p $(@D)
	$(CLANG) -target bpf -O2 -g -Wall -Werror -Iinclude $(BPF_SYS_INCLUDES) -MMD -MP -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@

# The skeletons are prerequisites of every loader file (bpf/*.c: foo.c and the
# files beside it that share its skeleton), in every build.
define skel_dep
$(patsubst bpf/%.c,$(BUILD)/$(1)/bpf/%.o,$(filter-out %.bpf.c,$(wildcard bpf/*.c))): $(SKELS)
endef
$(foreach v,obj asan fuzzobj,$(eval $(call skel_dep,$(v))))

# --- userspace ------------------------------------------------------------------

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN) -Itests/lib -MMD -MP -c $< -o $@

$(BUILD)/libdozed.a: $(LIB_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/libdozed-asan.a: $(ASAN_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/dozed: $(BUILD)/obj/daemon/dozed_main.o $(BUILD)/libdozed.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/dozectl: $(BUILD)/obj/daemon/dozectl/dozectl.o $(BUILD)/libdozed.a
	$(CC) $(CFLAGS) -o $@ $^ $(DOZECTL_LDLIBS)

$(BUILD)/tests/%: $(BUILD)/asan/tests/%.o $(BUILD)/libdozed-asan.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

# The parsers as the daemon links them, instrumented for libFuzzer: each
# target takes from the archive only the objects its parser needs.
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(@D)
	$(CLANG) $(ALL_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(BUILD)/libdozed-fuzz.a: $(FUZZ_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/fuzz/%: $(BUILD)/fuzzobj/tests/fuzz/%.o $(BUILD)/libdozed-fuzz.a
	@mkdir -p $(@D)
	$(CLANG) $(CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# --- tests ----------------------------------------------------------------------

check: deps-if-missing
	$(MAKE) test

# Every benchmark runs once in its quick mode (tests/bench/quick.sh), so one
# that no longer runs fails here. The fuzzers come last, FUZZ_CHECK_SECONDS
# each, counted with the rest.
test: $(BINS) $(TESTS) $(BENCHES) $(FUZZ_BINS)
	BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_CHECK_SECONDS) DOZED_IMAGE_CACHE=$(abspath $(BUILD))/image-cache \
		tests/run.sh $(TESTS) $(E2E) \
		tests/bench/quick.sh tests/fuzz/run.sh

fuzz-build: $(FUZZ_BINS)

fuzz: deps-if-missing
	$(MAKE) fuzz-build
	BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/run.sh tests/fuzz/run.sh

stress: deps-if-missing
	$(MAKE) $(BINS)
	BUILD=$(BUILD) tests/stress/run.sh

demo: deps-if-missing
	$(MAKE) $(BINS)
	BUILD=$(BUILD) tests/demo.sh

bench: deps-if-missing
	$(MAKE) $(BINS) $(BENCHES)
	BUILD=$(BUILD) tests/bench/run.sh

# Benchmarks share tests/lib's namespace helpers (not its harness).
$(BUILD)/obj/tests/bench/%.o: CPPFLAGS += -Itests/lib
$(BUILD)/tests/bench/%: $(BUILD)/obj/tests/bench/%.o $(BUILD)/obj/tests/lib/netns.o $(BUILD)/libdozed.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The HTTP client comparison also links libcurl (the peer it measures).
$(BUILD)/tests/bench/bench_http_client: LDLIBS += $(shell $(PKG_CONFIG) --libs libcurl 2>/dev/null)

# --- lint and format ------------------------------------------------------------

C_SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find daemon nft activator bpf include tests -name '*.[ch]')

# cppcheck cannot see __attribute__((cleanup)) and reports every guarded
# allocation as leaked; leaks are checked for real by LeakSanitizer in `make check`.
lint: $(SKELS) $(BINS)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--std=c11 --inline-suppr --suppress=missingIncludeSystem \
		--suppress=memleak --suppress=resourceLeak -D_GNU_SOURCE \
		-Iinclude -I$(BUILD) -Itests/lib $(filter-out %.bpf.c,$(C_SOURCES))
	clang-format --dry-run --Werror $(C_SOURCES)
	tests/lint/includes.sh
	BUILD=$(BUILD) tests/lint/man.sh
	@$(MAKE) --no-print-directory lint-unit

# The unit's sandboxing, as systemd rates it: "OK" is an exposure of 3.0 or less.
lint-unit:
	@out=$$(systemd-analyze security --offline=true --no-pager daemon/systemd/dozed.service 2>&1); \
	score=$$(printf '%s\n' "$$out" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p'); \
	if [ -z "$$score" ]; then printf '%s\n' "$$out" >&2; echo "error: systemd-analyze security gave no score" >&2; exit 1; fi; \
	echo "dozed.service: exposure $$score (at most 3.0)"; \
	awk -v s="$$score" 'BEGIN { exit !(s <= 3.0) }' || { \
		printf '%s\n' "$$out" | grep -v '^✓' >&2; \
		echo "error: dozed.service exposure $$score is above 3.0" >&2; exit 1; }

format:
	clang-format -i $(C_SOURCES)

# --- install --------------------------------------------------------------------

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(BUILD)/dozed $(DESTDIR)$(PREFIX)/sbin/dozed
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/dozectl $(DESTDIR)$(PREFIX)/bin/dozectl
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed 's|/usr/local/sbin/dozed|$(PREFIX)/sbin/dozed|' daemon/systemd/dozed.service \
		> $(DESTDIR)$(PREFIX)/lib/systemd/system/dozed.service
	install -m 0644 daemon/systemd/dozed.socket $(DESTDIR)$(PREFIX)/lib/systemd/system/dozed.socket
	install -d $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0644 docs/man/dozed.8 $(DESTDIR)$(PREFIX)/share/man/man8/dozed.8
	install -m 0644 docs/man/dozectl.1 $(DESTDIR)$(PREFIX)/share/man/man1/dozectl.1
	install -m 0644 docs/man/dozed.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/dozed.conf.5
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0644 daemon/dozectl/dozectl.bash \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/dozectl

clean:
	rm -rf $(BUILD)

# --- dependencies (Debian 12) ---------------------------------------------------

deps:
	@$(MAKE) --no-print-directory deps-if-missing

deps-if-missing:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -ne 0 ]; then echo "error: missing packages:$$missing; run 'make deps' as root" >&2; exit 1; fi; \
		echo "installing:$$missing"; \
		tests/apt-install.sh $$missing; \
	fi
