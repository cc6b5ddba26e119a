# -*- coding: utf-8 -*-
# An expansion (Tengine's acceptance test 01_01_06_expansion_in_jobnet.rb): at run time the
# children of the root jobnet "example_expanded" are copied in place of expansion(...), which
# takes part in the edges under that name.
#
# [S]-->[job1]-->[example_expanded: [job2]]-->[job3]-->[E]
require 'tengine_job'

jobnet("example_expansion", :server_name => "local", :credential_name => "local") do
  boot_jobs("job1")
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => "example_expanded")
  expansion("example_expanded", :to => "job3")
  job("job3", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end

jobnet("example_expanded", :server_name => "local", :credential_name => "local") do
  boot_jobs("job2")
  job("job2", "$TENGINE_EXAMPLES/scripts/print_env.sh")
end
