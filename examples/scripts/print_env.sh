#!/bin/sh
# print_env.sh
# Prints every MM_* variable the job was given, one "NAME=value" line each, sorted, so a person
# (or a test) can check MM_ACTUAL_JOB_ANCESTOR_IDS and friends from the job's stdout.
env | grep '^MM_' | LC_ALL=C sort
exit 0
