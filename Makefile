# toolgate: plain GNU make.  `make` builds gatewayd, executor, gatewayctl
# and toolgate-mcp into $(BUILD)/; `make check` runs every test; `make check SAN=1` runs the
# same suite under ASan+UBSan (in build-san/); `make demo` shows the flows.

CC	?= cc
SAN	?= 0
PKGS	 = libevent msgpack libsodium lmdb yaml-0.1 jansson libcurl
DEBS	 = build-essential pkg-config libevent-dev libmsgpack-dev \
	   libsodium-dev liblmdb-dev libseccomp-dev libyaml-dev libjansson-dev libcurl4-openssl-dev \
	   python3 python3-msgpack python3-cryptography \
	   clang libclang-rt-14-dev cppcheck libfaketime prometheus \
	   systemd logrotate procps mandoc postgresql libpq-dev

ifeq ($(SAN),1)
BUILD	?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	   -fno-omit-frame-pointer
# gatewayd's seccomp filter allows what the sanitizers' runtime needs.
SANDEFS	 = -DTG_SANITIZERS
OPT	 = -O1
else
BUILD	?= build
SANFLAGS =
SANDEFS	 =
OPT	 = -O2
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# gatewayd's seccomp filter (gatewayd/sandbox.c): gatewayd alone links it.
SECCOMP_CFLAGS := $(shell pkg-config --cflags libseccomp 2>/dev/null)
SECCOMP_LIBS   := $(shell pkg-config --libs libseccomp 2>/dev/null)
# The store on PostgreSQL (executor/pg*.c): the executor alone links libpq.
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null)
PQ_LIBS   := $(shell pkg-config --libs libpq 2>/dev/null)

CFLAGS	+= -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 \
	   -Wstrict-prototypes -Wmissing-prototypes -g $(OPT) \
	   -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong $(SANFLAGS) $(SANDEFS) \
	   -pthread -I. $(PKG_CFLAGS) $(SECCOMP_CFLAGS) $(PQ_CFLAGS)
# Each program links only the libraries it uses: gatewayd and gatewayctl
# have no use for libcurl (the executor alone talks to HTTP APIs).
LDFLAGS	+= $(SANFLAGS) -pthread -Wl,--as-needed
LDLIBS	+= $(PKG_LIBS)

# Each process folder has one file with main(); everything else goes into
# a library so unit tests can link the pieces they exercise.
COMMON_SRC	:= $(wildcard common/*.c) $(wildcard proto/*.c)
GATEWAYD_SRC	:= $(filter-out gatewayd/gatewayd.c,$(wildcard gatewayd/*.c))
EXECUTOR_SRC	:= $(filter-out executor/executor.c,$(wildcard executor/*.c))
BRIDGE_SRC	:= $(filter-out bridge/toolgate-mcp.c,$(wildcard bridge/*.c))
TEST_SRC	:= $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCOMMON	:= $(BUILD)/libcommon.a
LIBGATEWAYD	:= $(BUILD)/libgatewayd.a
LIBEXECUTOR	:= $(BUILD)/libexecutor.a
LIBBRIDGE	:= $(BUILD)/libbridge.a
PROGS		:= $(BUILD)/gatewayd $(BUILD)/executor $(BUILD)/gatewayctl \
		   $(BUILD)/toolgate-mcp
TESTS		:= $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH		:= $(BUILD)/bench
# The bench's trivial peers: an MCP server (stdio) and an HTTP API.
BENCH_PEERS	:= $(BUILD)/bench-mcp-server $(BUILD)/bench-http-server

.PHONY: all check check-san test demo bench deps clean cppcheck fuzz fuzz-smoke \
	faults soak install uninstall man-lint FORCE
all: $(PROGS)
FORCE:

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
	@rm -f $@; $(AR) rcs $@ $^
$(LIBGATEWAYD): $(call obj,$(GATEWAYD_SRC))
	@rm -f $@; $(AR) rcs $@ $^
$(LIBEXECUTOR): $(call obj,$(EXECUTOR_SRC))
	@rm -f $@; $(AR) rcs $@ $^
$(LIBBRIDGE): $(call obj,$(BRIDGE_SRC))
	@rm -f $@; $(AR) rcs $@ $^

$(BUILD)/gatewayd: $(call obj,gatewayd/gatewayd.c) $(LIBGATEWAYD) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(SECCOMP_LIBS)
$(BUILD)/executor: $(call obj,executor/executor.c) $(LIBEXECUTOR) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(PQ_LIBS)
$(BUILD)/gatewayctl: $(call obj,$(wildcard ctl/*.c)) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/toolgate-mcp: $(call obj,bridge/toolgate-mcp.c) $(LIBBRIDGE) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# The gatewayd that make install installs: the same sources, with the
# executor's installed path compiled in (gatewayd.c, executor_path()).
# The build tree's gatewayd runs the executor beside it instead.  The
# object is rebuilt when the path changes (a stamp holding it).
$(BUILD)/install/executor-path: FORCE
	@mkdir -p $(dir $@)
	@echo '$(EXECUTOR_PATH)' | cmp -s - $@ 2>/dev/null || \
	  echo '$(EXECUTOR_PATH)' > $@
$(BUILD)/install/gatewayd.o: gatewayd/gatewayd.c $(BUILD)/install/executor-path
	$(CC) $(CFLAGS) -DEXECUTOR_PATH='"$(EXECUTOR_PATH)"' -MMD -MP -c -o $@ $<
$(BUILD)/install/gatewayd: $(BUILD)/install/gatewayd.o $(LIBGATEWAYD) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(SECCOMP_LIBS)
# A unit test links libcommon and the few objects it names here.
test_toolrun_SRC	= executor/toolrun.c executor/spawn.c executor/credential.c
test_store_SRC		= executor/store.c executor/apquota.c
test_ledger_SRC		= executor/ledger.c executor/record.c executor/store.c \
			  executor/sweep.c
test_checkpoint_SRC	= executor/checkpoint.c executor/record.c
test_record_SRC		= executor/record.c executor/ledger.c executor/sweep.c \
			  executor/apstore.c executor/apquota.c executor/store.c \
			  executor/checkpoint.c
test_runs_SRC		= gatewayd/runs.c gatewayd/metrics.c
test_agentreq_SRC	= gatewayd/agentreq.c
test_jsonrpc_SRC	= executor/jsonrpc.c
test_bridge_SRC		= bridge/rpcread.c bridge/names.c
test_aconn_SRC		= bridge/agent.c
test_http_SRC		= executor/http.c executor/credential.c

.SECONDEXPANSION:
$(BUILD)/tests/%: $(call obj,tests/unit/%.c) $$(call obj,$$($$*_SRC)) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
# The bench's 'ledger alone' row runs the executor's ledger in process;
# it links libpq for its raw commits (the postgresql rows).
$(BENCH): $(call obj,bench/bench.c executor/ledger.c executor/record.c \
	    executor/store.c) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(PQ_LIBS) -lpthread
$(BUILD)/bench-mcp-server: $(call obj,bench/mcp-server.c)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/bench-http-server: $(call obj,bench/http-server.c)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The whole suite: unit tests, then regression tests against the real
# daemon pair.  Ends with "N passed, N failed"; non-zero on any failure.
check: $(PROGS) $(TESTS) man-lint
	@BUILD=$(BUILD) SAN=$(SAN) tests/run

# Everything CI runs (README's test command): the suite, the suite under
# ASan+UBSan, every fuzz target for a bounded run, cppcheck, a bounded
# run of the fault-injection test, with and without clock steps, and a
# short soak.
test: deps
	$(MAKE) check
	$(MAKE) check SAN=1
	$(MAKE) fuzz-smoke
	$(MAKE) cppcheck
	$(MAKE) faults FAULT_ITERS=15
	$(MAKE) faults FAULT_ITERS=10 FAULT_CLOCK=1
	$(MAKE) faults FAULT_ITERS=10 FAULT_PG=1
	$(MAKE) soak SOAK_SECONDS=30

# The seeded fault-injection test (tests/faults/faults.py): SIGKILL of
# gatewayd or the executor under a mixed load, restart, retries, and the
# answers reconciled against the tools' side-effect log; fails on any
# doubled, lost or unapproved write.  FAULT_CLOCK=1 also steps the
# executor's wall clock +-2 h (libfaketime: the normal build only).
# FAULT_PG=1: two daemon pairs (two hosts) on one PostgreSQL instead.
FAULT_ITERS	?= 300
FAULT_SEED	?= 1
FAULT_CLOCK	?= 0
FAULT_PG	?= 0
faults: $(PROGS)
	@BUILD=$(BUILD) SAN=$(SAN) FAULT_ITERS=$(FAULT_ITERS) \
	  FAULT_SEED=$(FAULT_SEED) FAULT_CLOCK=$(FAULT_CLOCK) FAULT_PG=$(FAULT_PG) \
	  /usr/bin/python3 tests/faults/faults.py

# The soak (tests/soak/soak.py, as root): 1000 agent connections of four
# tenants and a stranger under paced mixed traffic (reads, writes,
# approvals, denials, hang-ups, slow readers) for SOAK_SECONDS after a
# warm-up; fails on any unexpected answer or dropped connection, or when
# the RSS or descriptors of gatewayd or the executor grew.
SOAK_SECONDS	?= 600
soak: $(PROGS)
	@BUILD=$(BUILD) SAN=$(SAN) SOAK_SECONDS=$(SOAK_SECONDS) \
	  /usr/bin/python3 tests/soak/soak.py

check-san:
	$(MAKE) SAN=1 check

bench: $(PROGS) $(BENCH) $(BENCH_PEERS)
	@BUILD=$(BUILD) bench/run

demo: deps $(PROGS)
	@BUILD=$(BUILD) examples/demo

# make install: where things go.  PREFIX=/usr puts the config under
# /etc, as a distribution does; any directory may be given on its own
# (make install sbindir=/sbin), and DESTDIR is prefixed to every one of
# them (staged installs, packages).  The compiled-in executor path never
# holds DESTDIR.
PREFIX		?= /usr/local
DESTDIR		?=
bindir		?= $(PREFIX)/bin
sbindir		?= $(PREFIX)/sbin
libexecdir	?= $(PREFIX)/libexec
sysconfdir	?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
datarootdir	?= $(PREFIX)/share
mandir		?= $(datarootdir)/man
docdir		?= $(datarootdir)/doc/toolgate
unitdir		?= $(PREFIX)/lib/systemd/system
INSTALL		?= install
EXECUTOR_PATH	 = $(libexecdir)/toolgate/executor

# What goes where.  A program of PROGS named in BIN_NAMES goes to bindir
# (one word to add a program); man pages go to the section their name
# ends in, toolgate-mcp(1) only with its program.
BIN_NAMES	:= gatewayctl toolgate-mcp
BIN_PROGS	:= $(filter $(addprefix $(BUILD)/,$(BIN_NAMES)),$(PROGS))
MAN_PAGES	:= $(wildcard man/*.[158])
ifeq ($(filter %/toolgate-mcp,$(BIN_PROGS)),)
MAN_PAGES	:= $(filter-out man/toolgate-mcp.1,$(MAN_PAGES))
endif
UNITS		:= $(wildcard systemd/*.service systemd/*.socket)
DOCS		:= proto/CONFIG.md proto/PROTOCOL.md
# The units name the installed paths as PREFIX=/usr has them; these
# follow the directories given.
UNIT_SED	 = -e 's|/usr/sbin/gatewayd|$(sbindir)/gatewayd|g' \
		   -e 's|/usr/bin/gatewayctl|$(bindir)/gatewayctl|g' \
		   -e 's|/usr/libexec/toolgate/|$(libexecdir)/toolgate/|g' \
		   -e 's|/etc/toolgate/|$(sysconfdir)/toolgate/|g' \
		   -e 's|/usr/share/doc/toolgate/|$(docdir)/|g'

# The example config never replaces toolgate.yaml, which is the
# operator's; uninstall leaves that, the credentials and the state dir.
install: $(BUILD)/install/gatewayd $(BUILD)/executor $(BIN_PROGS)
	$(INSTALL) -d -m 755 $(DESTDIR)$(sbindir) $(DESTDIR)$(bindir) \
	  $(DESTDIR)$(libexecdir)/toolgate $(DESTDIR)$(sysconfdir)/toolgate \
	  $(DESTDIR)$(docdir) $(DESTDIR)$(unitdir) \
	  $(addprefix $(DESTDIR)$(mandir)/man,1 5 8)
	$(INSTALL) -m 755 $(BUILD)/install/gatewayd $(DESTDIR)$(sbindir)/gatewayd
	$(INSTALL) -m 755 $(BUILD)/executor $(DESTDIR)$(EXECUTOR_PATH)
	$(INSTALL) -m 755 $(BIN_PROGS) $(DESTDIR)$(bindir)
	$(INSTALL) -m 644 examples/toolgate.yaml.example \
	  $(DESTDIR)$(sysconfdir)/toolgate/toolgate.yaml.example
	@# The unit's LoadCredential= needs the directory to exist; root's alone.
	$(INSTALL) -d -m 700 $(DESTDIR)$(sysconfdir)/toolgate/credentials
	$(INSTALL) -m 644 $(DOCS) $(DESTDIR)$(docdir)
	@for p in $(MAN_PAGES); do \
	  d=$(DESTDIR)$(mandir)/man$${p##*.}; \
	  echo "$(INSTALL) -m 644 $$p $$d"; $(INSTALL) -m 644 $$p $$d || exit 1; \
	done
	@for u in $(UNITS); do \
	  d=$(DESTDIR)$(unitdir)/$${u#systemd/}; \
	  echo "sed $$u > $$d"; \
	  sed $(UNIT_SED) $$u > $$d.tmp && chmod 644 $$d.tmp && \
	  mv -f $$d.tmp $$d || exit 1; \
	done

# Removes every file install may have put there (toolgate-mcp's too),
# then the directories that are toolgate's alone, when empty: the
# operator's toolgate.yaml keeps its directory.
uninstall:
	rm -f $(DESTDIR)$(sbindir)/gatewayd $(DESTDIR)$(EXECUTOR_PATH) \
	  $(addprefix $(DESTDIR)$(bindir)/,$(BIN_NAMES)) \
	  $(DESTDIR)$(sysconfdir)/toolgate/toolgate.yaml.example \
	  $(addprefix $(DESTDIR)$(docdir)/,$(notdir $(DOCS)))
	@for p in $(notdir $(wildcard man/*.[158])); do \
	  f=$(DESTDIR)$(mandir)/man$${p##*.}/$$p; echo "rm -f $$f"; rm -f $$f; \
	done
	@for u in $(notdir $(UNITS)); do \
	  echo "rm -f $(DESTDIR)$(unitdir)/$$u"; rm -f $(DESTDIR)$(unitdir)/$$u; \
	done
	@for d in $(DESTDIR)$(libexecdir)/toolgate $(DESTDIR)$(docdir) \
	  $(DESTDIR)$(sysconfdir)/toolgate/credentials \
	  $(DESTDIR)$(sysconfdir)/toolgate; do \
	  [ ! -d $$d ] || rmdir $$d 2>/dev/null || echo "$$d: kept (not empty)"; \
	done

# The man pages: mandoc's lint down to style messages, any one fails
# (run by make check).  Not the lookups of pages we refer to: whether
# gatewayd(8) is found depends on what this machine has installed.
man-lint:
	@out=$$(mandoc -Tlint -Wstyle $(wildcard man/*.[158]) 2>&1 | \
	  grep -v -e 'referenced manual not found' -e 'mandoc\.db'); \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
	echo "man-lint: $(words $(wildcard man/*.[158])) pages clean"

# Install the Debian packages the build, the tests and the demo need, then
# the real MCP servers (tests/npm/install: node and npm, pinned by
# tests/npm/package-lock.json, into NPM_DIR; without node it says so and
# goes on, except under CI=true).
NPM_DIR	?= .cache/npm
deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@tests/npm/install $(NPM_DIR)

# Fuzz targets (clang + libFuzzer): one per decoder.  fuzz-smoke runs each
# for a bounded number of inputs, as part of the test suite in CI.
FUZZ_SRC	:= $(wildcard fuzz/fuzz_*.c)
FUZZERS		:= $(patsubst fuzz/%.c,build-fuzz/%,$(FUZZ_SRC))
FUZZ_CFLAGS	 = -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
		   -fno-sanitize-recover=undefined -I. $(PKG_CFLAGS)
# Sources beyond common/ and proto/ that a fuzz target links.
fuzz_ledger_SRC		= executor/ledger.c executor/record.c executor/store.c
fuzz_approval_SRC	= executor/apstore.c executor/record.c executor/store.c \
			  executor/ledger.c executor/sweep.c executor/apquota.c
fuzz_checkpoint_SRC	= executor/checkpoint.c executor/record.c
fuzz_agentreq_SRC	= gatewayd/agentreq.c
fuzz_jsonrpc_SRC	= executor/jsonrpc.c
fuzz_bridge_rpc_SRC	= bridge/rpcread.c
fuzz: $(FUZZERS)
build-fuzz/%: fuzz/%.c $(COMMON_SRC) $$($$*_SRC) $(wildcard common/*.h proto/*.h executor/*.h gatewayd/*.h bridge/*.h fuzz/*.h)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(COMMON_SRC) $($*_SRC) $(PKG_LIBS)
# New inputs go to a scratch corpus (listed first), crashes to build-fuzz/:
# the seed corpora in fuzz/corpus stay as committed.
fuzz-smoke: $(FUZZERS)
	@for f in $(FUZZERS); do \
	  n=$$(basename $$f); echo "fuzz: $$n"; mkdir -p build-fuzz/corpus-$$n; \
	  $$f -runs=$${FUZZ_RUNS:-200000} -max_len=4096 -seed=1 \
	    -artifact_prefix=build-fuzz/$$n- build-fuzz/corpus-$$n fuzz/corpus/$$n \
	    >/dev/null 2>build-fuzz/$$n.log \
	    || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	done

# Static analysis of our code; any warning fails.  cppcheck does not know
# <sys/queue.h>'s macros, so it is handed the header itself.
cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --std=c11 -D_GNU_SOURCE -I. \
	  --include=/usr/include/$$(gcc -print-multiarch)/sys/queue.h \
	  common proto gatewayd executor ctl bridge bench fuzz tests/unit

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD)/obj $(BUILD)/install -name '*.d' 2>/dev/null)
