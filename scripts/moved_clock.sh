#!/usr/bin/env bash
# Run a command with the wall clock moved ahead: `scripts/moved_clock.sh DAYS COMMAND [ARGS...]`.
#
# libfaketime (Debian's `faketime`) shifts what every process of the command sees as the date,
# children included (site agents, solve-field, ...). The monotonic clock stays real, since
# Python's timed waits cannot run on a faked one; scripts/faketime_sleep_fix.c, preloaded first,
# mends the one call libfaketime 0.9.10 then gets wrong (Python's time.sleep).
set -euo pipefail
days="${1:?usage: scripts/moved_clock.sh DAYS COMMAND [ARGS...]}"
shift
here="$(cd "$(dirname "$0")" && pwd)"
lib=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -n 1 || true)
if [ -z "$lib" ]; then
  echo "moved_clock: libfaketime is not installed (apt-get install faketime)" >&2
  exit 2
fi
fix_dir="${TMPDIR:-/tmp}/datas-faketime-$(id -u)"
fix="$fix_dir/sleep_fix.so"
if [ ! -e "$fix" ] || [ "$here/faketime_sleep_fix.c" -nt "$fix" ]; then
  mkdir -p "$fix_dir"
  cc -shared -fPIC -O2 -o "$fix.tmp" "$here/faketime_sleep_fix.c" -ldl
  mv "$fix.tmp" "$fix"
fi
export LD_PRELOAD="$fix $lib${LD_PRELOAD:+ $LD_PRELOAD}"
export FAKETIME="+${days}d" FAKETIME_DONT_FAKE_MONOTONIC=1
exec "$@"
