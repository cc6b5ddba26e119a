# unreachable (a warning): job3 is neither in boot_jobs nor the target of any :to, so it never
# runs; Tengine runs the jobnet without it (feature @01_03_13).
require 'tengine_job'

jobnet("warning_unreachable", :server_name => "local", :credential_name => "local") do
  boot_jobs("job1")
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => "job2")
  job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  job("job3", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
