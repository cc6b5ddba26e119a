# -*- coding: utf-8 -*-
# Three jobs one after the other, in the order written (auto_sequence, Tengine's default).
#
# [S]-->[job1]-->[job2]-->[job3]-->[E]
#
# The scripts live beside this file in scripts/; $TENGINE_EXAMPLES (the examples directory on
# the job host) is expanded by the job host's shell, as Tengine passes the script line verbatim.
require 'tengine_job'

jobnet("example_serial", "three jobs in a row", :server_name => "local", :credential_name => "local") do
  auto_sequence
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  job("job3", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
