# expansion_self: a root jobnet that expands itself (2003_expansion/expansion_8.rb). Its copy
# would contain itself without end; Tengine's console ran out of stack.
require 'tengine_job'

jobnet("job_reference_test_6_4", :server_name => "local", :credential_name => "local") do
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  jobnet("jobnet2") do
    expansion("job_reference_test_6_4")
  end
end
