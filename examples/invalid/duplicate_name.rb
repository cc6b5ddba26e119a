# duplicate_name: two children named job1 in one jobnet (Tengine's acceptance test
# 01_03_16_duplicated_jobname_on_same_layer.rb, expected error E9 "job1 is duplicated").
require 'tengine_job'

jobnet("jobnet1041", :server_name => "local", :credential_name => "local") do
  auto_sequence
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
