#!/bin/sh
# "Compile": bundle the library and the entry point into one executable script.
set -eu
src=$1 out=$2
{
  echo '#!/bin/sh'
  echo '# built by src/build.sh'
  cat "$src/greet.sh"
  echo 'greet "${1:-world}"'
} > "$out"
echo "built $out ($(wc -c < "$out") bytes)"
