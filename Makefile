# apify-sqlite: a SQLite extension that creates Apify webhooks from SQL.
#
#   make              build build/apify.so (build/apify.dylib on macOS); installs missing
#                     Debian packages first when run as root on Debian, else says what to install
#   make test         build, then unit, emulator and end-to-end tests against the local emulator;
#                     ends with "N passed, N failed"
#   make demo         the story of sql/demo.sql against the local emulator
#   make bench        the extension against the official JavaScript client (not part of test)
#   make test-asan    the unit and end-to-end tests with AddressSanitizer and UBSan
#   make fuzz         libFuzzer over the request rules and the template checker (bounded)
#   make coverage     line and branch coverage of ext/ from the whole test suite
#   make lint         cppcheck and clang-tidy over ext/
#   make install      copy the module to $(DESTDIR)$(PREFIX)/lib/sqlite3/
#   make dist         dist/: the Python wheel, the npm package and a tarball, with SHA256SUMS
#   make test-sqlite-3.53
#                     the end-to-end suites on SQLite 3.53 (better-sqlite3's amalgamation)
#   make clean

CC      ?= cc
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
PYTHON  ?= /usr/bin/python3
BUILD   := build

WARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
# Only the entry points (sqlite3_apify_init, sqlite3_apify_no_network_init) are exported;
# everything else stays inside the module.
VIS     := -fvisibility=hidden
CURL_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
LIBS    := $(CURL_LIBS) -lcrypto

ifeq ($(shell uname -s),Darwin)
  SO      := dylib
  SHARED  := -dynamiclib -undefined dynamic_lookup
else
  SO      := so
  SHARED  := -shared
endif

EXT     := $(BUILD)/apify.$(SO)
SRC     := ext/apify.c ext/request.c ext/template.c ext/transport.c ext/store.c ext/vtab.c \
           ext/trust.c
SRC     += ext/remote.c
HDR     := ext/apify.h
# The unit tests link the C pieces directly against libsqlite3 (SQLITE_CORE: no routine table).
UNIT_SRC := ext/request.c ext/template.c ext/transport.c
UNIT    := $(BUILD)/test_request

.PHONY: all deps test unit demo bench install dist clean

# The one version, from ext/apify.h: apify_version(), the User-Agent and every package.
VERSION := $(shell sed -n 's/^\#define APIFY_VERSION "\(.*\)"/\1/p' ext/apify.h)

all: $(EXT)

# Debian packages the build and the tests need. Missing ones are installed when we are root on a
# system with apt-get; otherwise the exact command is printed and the build stops.
DEB_BUILD := gcc libc6-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev pkg-config
DEB_TEST  := sqlite3 python3 python3-venv valgrind nodejs npm g++ make sqlite-utils
deps:
	@tests/deps.sh $(DEB_BUILD)

$(EXT): $(SRC) $(HDR) | deps
	@mkdir -p $(BUILD)
	$(CC) $(WARN) $(CFLAGS) $(VIS) -fPIC $(SHARED) $(CURL_CFLAGS) $(SRC) -o $@ $(LIBS)

$(UNIT): tests/unit/test_request.c tests/unit/unit.h tests/unit/fault.h $(UNIT_SRC) $(HDR) | deps
	@mkdir -p $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -DSQLITE_CORE -Iext $(CURL_CFLAGS) tests/unit/test_request.c \
	  $(UNIT_SRC) -o $@ -lsqlite3 $(LIBS)

unit: $(UNIT)
	$(UNIT)

# dist/ first: tests/test_install.py installs the packages make dist built.
test: $(EXT) $(UNIT) dist
	@tests/deps.sh $(DEB_TEST)
	$(PYTHON) tests/run.py

demo: $(EXT)
	@tests/deps.sh sqlite3 python3
	$(PYTHON) tests/demo.py

bench: $(EXT)
	@tests/deps.sh $(DEB_TEST)
	$(PYTHON) tests/bench/bench.py

# --- quality: sanitizers, fuzzing, coverage, lint ----------------------------------------------
#
#   make test-asan    build-asan/: the module and every tests/unit program built with
#                     -fsanitize=address,undefined (gcc), then tests/run.py against them; fails
#                     on any sanitizer report
#   make fuzz         libFuzzer (clang) over the request rules, the template checker and the
#                     reading of the API's answers: FUZZ_SECONDS (default 60) per target; new
#                     inputs and crashes go to build/fuzz/, the seeds stay in tests/fuzz/corpus/
#   make coverage     build-cov/: gcc --coverage, the unit programs and the whole suite, then
#                     line and branch coverage of ext/ (gcovr): build-cov/coverage.txt
#   make lint         cppcheck and clang-tidy (.clang-tidy) over ext/; any finding fails
#
# TESTS="test_faults test_alloc" runs only the suites and unit programs whose names contain one
# of the words (tests/run.py's patterns), in test-asan and coverage.
# make test also builds build/test_alloc, the whole extension running out of memory at every
# allocation (tests/unit/test_alloc.c), which tests/run.py runs with the other unit programs.

.PHONY: test-asan fuzz coverage lint

# Every tests/unit/test_*.c is a unit program linked with all of ext/ (SQLITE_CORE: SQLite is
# linked in, no routine table); tests/run.py's UNIT_PROGRAMS says which ones run.
UNIT_NAMES := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))
UNIT_DEPS  := tests/unit/unit.h tests/unit/fault.h $(SRC) $(HDR)
ALLOC      := $(BUILD)/test_alloc

test: $(ALLOC)

$(ALLOC): tests/unit/test_alloc.c $(UNIT_DEPS) | deps
	@mkdir -p $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -DSQLITE_CORE -Iext $(CURL_CFLAGS) $< $(SRC) -o $@ -lsqlite3 $(LIBS)

# -- sanitizers ---------------------------------------------------------------------------------
# gcc, because the sqlite3 shell and Python that load the module are not instrumented: they run
# with gcc's ASan runtime preloaded (LD_PRELOAD; it must come first), and the module takes
# libubsan as a dependency. The same suites then run against build-asan/apify.so; subprocesses
# inherit the environment.
#
# Leaks: the host processes (sqlite3, python3, the emulator) run with detect_leaks=0. Their own
# exit-time allocations would drown any report, and a suppression by module cannot tell the
# module's leaks from theirs (every allocation's stack goes through the host); leaks of the
# module in a real host are valgrind's job in make test (tests/test_function.py). The unit
# programs, wholly instrumented, run with leak detection on (APIFY_UNIT_ASAN_OPTIONS).
#
# Reports go to files under build-asan/reports/ (log_path): tests/run.py prints each one and
# counts it as a failure, so a report in a subprocess whose test would otherwise pass still
# fails the run. Tests that cannot run here (valgrind on top of ASan, node) skip themselves when
# APIFY_SANITIZER is set.
ASAN_CC     ?= gcc
ASAN_DIR    := build-asan
SAN_FLAGS   := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=all
ASAN_REPORT := $(CURDIR)/$(ASAN_DIR)/reports
ASAN_ENV     = LD_PRELOAD=$$($(ASAN_CC) -print-file-name=libasan.so) \
  ASAN_OPTIONS=detect_leaks=0:log_path=$(ASAN_REPORT)/asan \
  APIFY_UNIT_ASAN_OPTIONS=detect_leaks=1:log_path=$(ASAN_REPORT)/asan \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(ASAN_REPORT)/ubsan \
  APIFY_SANITIZER=asan APIFY_SANITIZER_REPORTS=$(ASAN_REPORT)

$(ASAN_DIR)/apify.$(SO): $(SRC) $(HDR) | deps
	@mkdir -p $(ASAN_DIR)
	$(ASAN_CC) $(WARN) $(SAN_FLAGS) $(VIS) -fPIC $(SHARED) $(CURL_CFLAGS) $(SRC) -o $@ $(LIBS)

$(ASAN_DIR)/test_%: tests/unit/test_%.c $(UNIT_DEPS) | deps
	@mkdir -p $(ASAN_DIR)
	$(ASAN_CC) $(WARN) $(SAN_FLAGS) -DSQLITE_CORE -Iext $(CURL_CFLAGS) $< $(SRC) -o $@ \
	  -lsqlite3 $(LIBS)

test-asan: $(ASAN_DIR)/apify.$(SO) $(addprefix $(ASAN_DIR)/,$(UNIT_NAMES))
	@tests/deps.sh $(DEB_TEST)
	@rm -rf $(ASAN_REPORT) && mkdir -p $(ASAN_REPORT)
	$(ASAN_ENV) $(PYTHON) tests/run.py --build $(ASAN_DIR) $(TESTS)

# -- fuzzing ------------------------------------------------------------------------------------
# clang's libFuzzer with ASan and UBSan; SQLite linked in directly, like the unit programs. Each
# target runs FUZZ_SECONDS on build/fuzz/corpus/T (grown across runs) seeded from
# tests/fuzz/corpus/T, with tests/fuzz/apify.dict; a crash, a leak, an undefined behaviour or a
# broken invariant (see each target's header) stops it, keeps the input as
# build/fuzz/artifacts/T-crash-..., and fails the target. Replay one with: build/fuzz/T FILE
# The targets call request.c and template.c (and transport.c's URL parser); all of ext/ is linked so that
# they keep building whatever request.c comes to call.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_TARGETS := fuzz_request fuzz_template fuzz_reply
FUZZ_SRC     := $(SRC)
FUZZ_FLAGS   := -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_OPTS    := -dict=tests/fuzz/apify.dict -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
DEB_FUZZ     := clang libclang-rt-dev

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_SRC) $(HDR) | deps
	@tests/deps.sh $(DEB_FUZZ)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(WARN) $(FUZZ_FLAGS) -DSQLITE_CORE -Iext $(CURL_CFLAGS) $< $(FUZZ_SRC) -o $@ \
	  -lsqlite3 $(LIBS)

fuzz: $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts; \
	  printf '%s: %s s ... ' $$t $(FUZZ_SECONDS); \
	  if $(FUZZ_DIR)/$$t $(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t $(FUZZ_OPTS) \
	       -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- \
	       >$(FUZZ_DIR)/$$t.log 2>&1; then \
	    sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1 inputs, no finding/p' \
	      $(FUZZ_DIR)/$$t.log; \
	  else \
	    echo "FAILED"; grep -v '^#' $(FUZZ_DIR)/$$t.log | tail -n 60; \
	    echo "(whole log: $(FUZZ_DIR)/$$t.log)"; exit 1; \
	  fi; \
	done

# -- coverage -----------------------------------------------------------------------------------
# gcc --coverage at -O0 into build-cov/; every process that loads the module (the sqlite3
# shells, Python, the unit programs) adds its counts to build-cov/*.gcda as it exits (a process
# killed with SIGKILL adds none). gcovr (Debian) merges them per source file.
COV_DIR   := build-cov
COV_FLAGS := -O0 -g --coverage
# libgcov's own symbols stay inside the module, which still exports only its entry points
# (tests/test_function.py checks that).
COV_LDFLAGS := -Wl,--exclude-libs,ALL
# Below this percentage of the lines of ext/ covered, the target fails.
COV_MIN_LINES ?= 90

$(COV_DIR)/apify.$(SO): $(SRC) $(HDR) | deps
	@mkdir -p $(COV_DIR)
	$(CC) $(WARN) $(COV_FLAGS) $(VIS) -fPIC $(SHARED) $(CURL_CFLAGS) $(SRC) -o $@ $(LIBS) \
	  $(COV_LDFLAGS)

$(COV_DIR)/test_%: tests/unit/test_%.c $(UNIT_DEPS) | deps
	@mkdir -p $(COV_DIR)
	$(CC) $(WARN) $(COV_FLAGS) -DSQLITE_CORE -Iext $(CURL_CFLAGS) $< $(SRC) -o $@ \
	  -lsqlite3 $(LIBS)

coverage: $(COV_DIR)/apify.$(SO) $(addprefix $(COV_DIR)/,$(UNIT_NAMES)) dist
	@tests/deps.sh $(DEB_TEST) gcovr
	@find $(COV_DIR) -name '*.gcda' -delete
	-$(PYTHON) tests/run.py --build $(COV_DIR) $(TESTS)
	gcovr --root . --filter 'ext/' --object-directory $(COV_DIR) --json $(COV_DIR)/coverage.json
	@cd $(COV_DIR) && G="gcovr --root .. --add-tracefile coverage.json" && \
	  $$G --output coverage-lines.txt && $$G --branches --output coverage-branches.txt && \
	  $$G --print-summary --output /dev/null > coverage-summary.txt && \
	  cat coverage-summary.txt coverage-lines.txt coverage-branches.txt > coverage.txt && \
	  cat coverage.txt && echo "(build-cov/coverage.txt)" && \
	  $$G --fail-under-line $(COV_MIN_LINES) --output /dev/null

# -- lint ---------------------------------------------------------------------------------------
# cppcheck sees the real SQLite and libcurl headers (the system include path, with SQLITE_CORE:
# plain sqlite3_* calls its sqlite3 library knows) and reports nothing from them; its findings
# in ext/ are fixed, or suppressed in tests/lint/cppcheck.supp with the reason. clang-tidy reads
# .clang-tidy (the checks and why some are off); one process per file, in parallel. Its findings
# go to stdout; stderr only counts the warnings it filtered out of the system headers.
DEB_LINT  := cppcheck clang-tidy
LINT_INC  := -I/usr/include -I/usr/include/$(shell $(CC) -dumpmachine 2>/dev/null)
TIDY_JOBS ?= 4

lint: | deps
	@tests/deps.sh $(DEB_LINT)
	cppcheck --enable=warning,style,performance,portability --error-exitcode=1 --inline-suppr \
	  --std=c11 --library=sqlite3,libcurl,openssl,posix -DSQLITE_CORE -Iext $(LINT_INC) \
	  --suppressions-list=tests/lint/cppcheck.supp --suppress='*:/usr/include/*' \
	  --suppress=missingIncludeSystem --quiet \
	  --template='{file}:{line}: {severity}: {message} [{id}]' $(SRC)
	printf '%s\n' $(SRC) | xargs -P $(TIDY_JOBS) -I{} sh -c 'clang-tidy --quiet {} -- \
	  -std=c11 -DSQLITE_CORE -Iext $(CURL_CFLAGS) 2>/dev/null'
	@echo "lint: no findings"

# --- end of quality --------------------------------------------------------------------------

install: $(EXT)
	install -d $(DESTDIR)$(PREFIX)/lib/sqlite3
	install -m 0644 $(EXT) $(DESTDIR)$(PREFIX)/lib/sqlite3/

# -- SQLite versions ----------------------------------------------------------------------------
# The end-to-end suites run on Debian's SQLite 3.40.1 (make test) and on the newest SQLite, from
# the amalgamation better-sqlite3 12 ships (tests/hosts, `npm ci`; 3.53.0 today):
#   build/sqlite-3.53/libsqlite3.so.0   that amalgamation, Debian's options (JSON, FTS5, R*Tree,
#                                       load_extension on)
#   build/sqlite-3.53/sqlite3           Debian's own shell (3.40.1's shell.c, from its source
#                                       package: tests/sqlite-shell.sh) built against it; it
#                                       finds the library through its rpath
#   build/sqlite-3.53/apify.so          the extension compiled against 3.53's headers
# make test-sqlite-3.53 runs MATRIX_SUITES with them: the shell through APIFY_SQLITE3, Python's
# sqlite3 module (the runner's and every child's) through LD_LIBRARY_PATH=APIFY_SQLITE_LIB,
# the module through APIFY_EXT; tests/run.py first checks that both report that version.
# Linux only (soname, rpath).
.PHONY: test-sqlite-3.53 sqlite-3.53

SQLITE_NEW    := 3.53
AMALG         := tests/hosts/node_modules/better-sqlite3/deps/sqlite3
NEW_DIR       := $(BUILD)/sqlite-$(SQLITE_NEW)
SQLITE_OPTS   := -DSQLITE_THREADSAFE=1 -DSQLITE_USE_URI=1 -DSQLITE_ENABLE_FTS3 \
  -DSQLITE_ENABLE_FTS3_PARENTHESIS -DSQLITE_ENABLE_FTS4 -DSQLITE_ENABLE_FTS5 \
  -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_COLUMN_METADATA -DSQLITE_ENABLE_DBSTAT_VTAB \
  -DSQLITE_ENABLE_MATH_FUNCTIONS -DSQLITE_ENABLE_STMTVTAB -DSQLITE_ENABLE_UNLOCK_NOTIFY \
  -DSQLITE_ENABLE_PREUPDATE_HOOK -DSQLITE_ENABLE_SESSION -DSQLITE_SECURE_DELETE \
  -DSQLITE_SOUNDEX -DSQLITE_LIKE_DOESNT_MATCH_BLOBS -DSQLITE_DEFAULT_RECURSIVE_TRIGGERS=1 \
  -DSQLITE_MAX_VARIABLE_NUMBER=250000
# The suites that take another SQLite: their names, or parts of them (tests/run.py patterns).
MATRIX_SUITES ?= test_function test_vtab test_faults test_security test_hostile test_semantics \
  test_bad_input test_bulk test_crash test_no_network

# Only the sources are needed here: --ignore-scripts skips compiling better-sqlite3 (which
# tests/test_hosts.py does, by its own npm ci, when it finds it unbuilt).
$(AMALG)/sqlite3.c:
	@tests/deps.sh nodejs npm
	npm ci --prefix tests/hosts --no-audit --no-fund --ignore-scripts

$(NEW_DIR)/libsqlite3.so.0: $(AMALG)/sqlite3.c
	@mkdir -p $(NEW_DIR)
	$(CC) -O2 -g -fPIC -shared -Wl,-soname,libsqlite3.so.0 $(SQLITE_OPTS) $< -o $@ -lm -lpthread

$(NEW_DIR)/shell.c: tests/sqlite-shell.sh
	@tests/deps.sh tcl xz-utils
	@mkdir -p $(NEW_DIR)
	tests/sqlite-shell.sh $@

$(NEW_DIR)/sqlite3: $(NEW_DIR)/shell.c $(NEW_DIR)/libsqlite3.so.0 $(AMALG)/sqlite3.c
	$(CC) -O2 -g -I$(AMALG) $(SQLITE_OPTS) $< -o $@ $(NEW_DIR)/libsqlite3.so.0 \
	  -Wl,-rpath,'$$ORIGIN' -lm

# NEW_WARN: sqlite3_module grew xIntegrity in 3.44; a module initializer written for 3.40 leaves
# it zero (no integrity check), which is right, but -Wextra would call it missing.
NEW_WARN := $(WARN) -Wno-missing-field-initializers
$(NEW_DIR)/apify.$(SO): $(SRC) $(HDR) $(AMALG)/sqlite3.c | deps
	@mkdir -p $(NEW_DIR)
	$(CC) $(NEW_WARN) $(CFLAGS) $(VIS) -fPIC $(SHARED) -I$(AMALG) $(CURL_CFLAGS) $(SRC) -o $@ \
	  $(LIBS)

sqlite-$(SQLITE_NEW): $(NEW_DIR)/apify.$(SO) $(NEW_DIR)/sqlite3

test-sqlite-$(SQLITE_NEW): sqlite-$(SQLITE_NEW)
	@tests/deps.sh $(DEB_TEST)
	APIFY_EXT=$(CURDIR)/$(NEW_DIR)/apify APIFY_SQLITE3=$(CURDIR)/$(NEW_DIR)/sqlite3 \
	  APIFY_SQLITE_LIB=$(CURDIR)/$(NEW_DIR) \
	  APIFY_SQLITE_VERSION=$$(sed -n 's/^#define SQLITE_VERSION *"\(.*\)"/\1/p' $(AMALG)/sqlite3.h) \
	  $(PYTHON) tests/run.py $(MATRIX_SUITES)

# -- packages -----------------------------------------------------------------------------------
# make dist builds, offline and from the tree alone, into dist/ (ignored by git):
#   apify_sqlite-V-py3-none-TAG.whl   the Python wheel: ext/loaders/python/apify_sqlite (a thin
#                                     loader: loadable_path(), load(conn)) beside the module;
#                                     TAG is this machine's (mkwheel.py, standard library only)
#   apify-sqlite-V.tgz                the npm package: ext/loaders/npm (ES module, CommonJS,
#                                     TypeScript types: getLoadablePath(), load(db)), the module
#                                     in lib/; npm pack, nothing fetched
#   apify-sqlite-V-OS-ARCH.tar.gz     the module and README.md
#   SHA256SUMS                        sha256 of the three (sha256sum -c SHA256SUMS)
# V is APIFY_VERSION. The module is the one `make` builds: it links the system's libcurl and
# libcrypto, so the packages are for machines like this one (Debian 12 and alike).
DIST      := dist
UNAME_M   := $(shell uname -m)
DIST_OS   := $(if $(filter $(SO),dylib),darwin,linux)
NPM_CPU   := $(if $(filter x86_64 amd64,$(UNAME_M)),x64,$(if $(filter aarch64 arm64,$(UNAME_M)),arm64,$(UNAME_M)))
DIST_TAR  := apify-sqlite-$(VERSION)-$(DIST_OS)-$(UNAME_M)
NPM_STAGE := $(BUILD)/npm
SHA256    := $(shell command -v sha256sum >/dev/null 2>&1 && echo sha256sum || echo 'shasum -a 256')

dist: $(EXT)
	@tests/deps.sh python3 nodejs npm
	rm -rf $(DIST) $(NPM_STAGE) $(BUILD)/$(DIST_TAR)
	mkdir -p $(DIST) $(NPM_STAGE)/lib $(BUILD)/$(DIST_TAR)
	$(PYTHON) ext/loaders/python/mkwheel.py --version $(VERSION) --lib $(EXT) \
	  --readme README.md --out $(DIST)
	cp ext/loaders/npm/index.cjs ext/loaders/npm/index.mjs ext/loaders/npm/index.d.ts \
	  README.md $(NPM_STAGE)/
	sed -e 's/"version": "[^"]*"/"version": "$(VERSION)"/' -e 's/@OS@/$(DIST_OS)/' \
	  -e 's/@CPU@/$(NPM_CPU)/' ext/loaders/npm/package.json > $(NPM_STAGE)/package.json
	cp $(EXT) $(NPM_STAGE)/lib/
	cd $(NPM_STAGE) && npm pack --offline --ignore-scripts --silent \
	  --pack-destination $(CURDIR)/$(DIST) >/dev/null
	cp $(EXT) README.md $(BUILD)/$(DIST_TAR)/
	tar -C $(BUILD) --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - \
	  $(DIST_TAR) | gzip -9n > $(DIST)/$(DIST_TAR).tar.gz
	cd $(DIST) && $(SHA256) *.whl *.tgz *.tar.gz > SHA256SUMS
	@ls -l $(DIST)

clean:
	rm -rf $(BUILD) build-asan build-cov $(DIST)
