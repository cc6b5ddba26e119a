# boot_jobs_with_auto_sequence: both in one jobnet, so which order is meant is unclear
# (Tengine's expected error E10 "boot_jobs or auto_sequence is duplicated").
require 'tengine_job'

jobnet("invalid_boot_and_auto", :server_name => "local", :credential_name => "local") do
  boot_jobs("job1")
  auto_sequence
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
