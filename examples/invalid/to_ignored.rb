# to_ignored (a warning): without boot_jobs the children run in the order written and Tengine
# ignores :to, so job1 -> job3 here does not do what it says.
require 'tengine_job'

jobnet("warning_to_ignored", :server_name => "local", :credential_name => "local") do
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => "job3")
  job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  job("job3", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
