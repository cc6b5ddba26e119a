# expansion_cycle (mutual reference, feature @01_01_28): jobnet1053 expands jobnet1053_2, which
# expands jobnet1053 again.
require 'tengine_job'

jobnet("jobnet1053", :server_name => "local", :credential_name => "local") do
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  expansion("jobnet1053_2")
end

jobnet("jobnet1053_2", :server_name => "local", :credential_name => "local") do
  job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  expansion("jobnet1053")
end
