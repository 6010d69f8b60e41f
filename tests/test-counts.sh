#!/usr/bin/env bash
# test-counts.sh: reads the output of `cargo test` (stdout and stderr together) on stdin, passes it
# through as it comes, and ends with the number of tests each test binary ran, so that a binary
# running fewer tests than before, or none, or dying before its result line, shows. `make test`
# pipes into it; the exit status stays cargo's (pipefail), this script only reports.
set -euo pipefail

awk '
  function finish() {
    if (current != "" && !(current in seen)) { order[++n] = current; result[current] = "" }
    current = ""
  }
  { print; fflush() }
  /^ *Running / {
    finish()
    if ($2 == "unittests") {
      # Running unittests src/lib.rs (target/debug/deps/common-0123abcd)
      bin = $NF; gsub(/[()]/, "", bin); sub(/.*\//, "", bin); sub(/-[0-9a-f]+$/, "", bin)
      current = bin " " $3
    } else {
      current = $2
    }
    next
  }
  /^ *Doc-tests / { finish(); current = "doc-tests " $2; next }
  /^test result: / && current != "" {
    passed = failed = ignored = 0
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^passed;?$/) passed = $i
      if ($(i + 1) ~ /^failed;?$/) failed = $i
      if ($(i + 1) ~ /^ignored;?$/) ignored = $i
    }
    order[++n] = current; seen[current] = 1
    result[current] = sprintf("%6d passed %4d failed %4d ignored", passed, failed, ignored)
    total_run += passed + failed; total_failed += failed
    if (passed + failed == 0 && current ~ /^tests\//) empty[current] = 1
    current = ""
  }
  END {
    finish()
    if (n == 0) exit
    print ""
    print "Tests run per test binary:"
    for (i = 1; i <= n; i++) {
      name = order[i]
      if (result[name] == "") printf "  %-38s no result line (the binary died?)\n", name
      else printf "  %s  %s%s\n", result[name], name, (name in empty ? "  <- ran no test" : "")
    }
    printf "  %6d run in %d binaries, %d failed\n", total_run, n, total_failed
  }
'
