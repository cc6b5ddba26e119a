# duplicate_boot_jobs: boot_jobs declared twice; Tengine would keep only the last one
# (expected error E10 "boot_jobs or auto_sequence is duplicated").
require 'tengine_job'

jobnet("invalid_boot_jobs_twice", :server_name => "local", :credential_name => "local") do
  boot_jobs("job1")
  boot_jobs("job1", "job2")
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
