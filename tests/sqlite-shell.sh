#!/bin/sh
# sqlite-shell.sh OUT.c: write the source of the sqlite3 shell (shell.c) that the version matrix
# compiles against a newer SQLite (make test-sqlite-3.53). The shell is Debian's own, 3.40.1:
# its source package is fetched with `apt-get source` from the deb-src of the mirror the system
# already uses, and shell.c is generated from it the way SQLite does (tclsh tool/mkshellc.tcl).
# Built against a newer sqlite3.h and library it passes the shell's version check and keeps
# the 3.40 output format the suites expect; better-sqlite3's amalgamation has no shell.c.
#
# The system's apt configuration is not changed: the deb-src list and apt's lists live in
# build/debian-sqlite3/, as does the downloaded source, so later runs fetch nothing.
set -eu
out=$1
work=$(pwd)/build/debian-sqlite3
mkdir -p "$work/lists/partial" "$work/src" "$work/parts"
orig=$(ls "$work"/src/sqlite3_*.orig.tar.xz 2>/dev/null | grep -v -- '-www' | head -n 1 || true)
if [ -z "$orig" ]; then
  # deb-src entries for the Debian archives the system uses (deb822 and one-line formats).
  : > "$work/sources.list"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      > "$work/parts/debian-src.sources"
  fi
  if [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb \(.*\)/deb-src \1/p' /etc/apt/sources.list > "$work/sources.list"
  fi
  apt_opts="-o Dir::Etc::SourceList=$work/sources.list -o Dir::Etc::SourceParts=$work/parts
    -o Dir::State::Lists=$work/lists -o Dir::Cache=$work/cache -o Debug::NoLocking=1
    -o APT::Sandbox::User=root"
  mkdir -p "$work/cache/archives/partial"
  # shellcheck disable=SC2086
  apt-get $apt_opts -qq update || echo "sqlite-shell: apt-get update reported errors" >&2
  # shellcheck disable=SC2086
  (cd "$work/src" && apt-get $apt_opts -qq source --download-only sqlite3)
  orig=$(ls "$work"/src/sqlite3_*.orig.tar.xz | grep -v -- '-www' | head -n 1)
fi
top=$(tar -tJf "$orig" | head -n 1 | cut -d/ -f1)
rm -rf "$work/tree"
mkdir -p "$work/tree"
tar -xJf "$orig" -C "$work/tree" "$top/src" "$top/ext" "$top/tool/mkshellc.tcl"
tclsh "$work/tree/$top/tool/mkshellc.tcl" > "$out.tmp"
mv "$out.tmp" "$out"
echo "sqlite-shell: $out from $(basename "$orig")"
