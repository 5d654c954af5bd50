#!/bin/sh
# Unit tests for the built application.
set -eu
app=$1
fail=0
check() {
  expected=$1; shift
  got=$("$app" "$@")
  if [ "$got" = "$expected" ]; then echo "ok - $*"; else echo "FAIL - $*: got '$got', want '$expected'"; fail=1; fi
}
check "hello, world"
check "hello, sbuild" sbuild
check "hello, CI" CI
exit $fail
