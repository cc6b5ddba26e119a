# unknown_target: job1 leads to "jbo2", which is no child of the jobnet (a typo of job2).
require 'tengine_job'

jobnet("invalid_unknown_target", :server_name => "local", :credential_name => "local") do
  boot_jobs("job1", "job2")
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => "jbo2")
  job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
