#!/bin/sh
# Lint: no tabs, no trailing spaces, every file parses.
set -eu
status=0
for f in "$@"; do
  if grep -n "$(printf '\t')" "$f"; then echo "$f: tab found" >&2; status=1; fi
  if grep -n ' $' "$f"; then echo "$f: trailing space" >&2; status=1; fi
  sh -n "$f" || status=1
  echo "lint ok: $f"
done
exit $status
