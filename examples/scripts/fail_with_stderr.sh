#!/bin/sh
# fail_with_stderr.sh [EXIT_CODE] [MESSAGE]
# Writes MESSAGE to stderr and exits with EXIT_CODE (default 1): a job that fails with a reason,
# to show the error path (stderr tail, exit status, finally still running).
code=${1:-1}
message=${2:-"something went wrong"}
echo "about to fail with exit status $code"
echo "$message" >&2
exit "$code"
