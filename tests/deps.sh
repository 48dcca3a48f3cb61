#!/bin/sh
# deps.sh PACKAGE...: make sure these Debian packages are installed.
# Missing ones are installed with apt-get when running as root on a Debian-like system;
# otherwise the exact command to run is printed and the script fails. Nothing is fetched from
# anywhere but the system's package manager. Node.js and npm count as present when the
# commands exist, however they were installed.
set -u
missing=""
for pkg in "$@"; do
  case "$pkg" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm)    command -v npm  >/dev/null 2>&1 && continue ;;
  esac
  if command -v dpkg-query >/dev/null 2>&1; then
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)
    [ "$status" = "install ok installed" ] && continue
  else
    # Not Debian (macOS, say): trust the toolchain; the compiler will name what is missing.
    continue
  fi
  missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null && exit 0
  echo "deps: apt-get could not install$missing" >&2
  exit 1
fi
echo "deps: missing Debian packages:$missing" >&2
echo "deps: install them with: sudo apt-get install -y$missing" >&2
exit 1
