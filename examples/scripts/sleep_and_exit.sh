#!/bin/sh
# sleep_and_exit.sh SECONDS [EXIT_CODE]
# Sleeps SECONDS (default 1), then exits with EXIT_CODE (default 0). Logs a start and a finish
# line with the job's name path, as Tengine's tengine_job_test.sh did, so a person can follow it.
seconds=${1:-1}
code=${2:-0}
name=${MM_ACTUAL_JOB_NAME_PATH:-$0}
echo "$(date '+%Y-%m-%dT%H:%M:%S') $name start (sleep $seconds, exit $code)"
sleep "$seconds"
echo "$(date '+%Y-%m-%dT%H:%M:%S') $name finish"
exit "$code"
