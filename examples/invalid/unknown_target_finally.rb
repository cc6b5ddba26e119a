# unknown_target: a finally block runs by itself at the end; it cannot be the target of :to.
require 'tengine_job'

jobnet("invalid_to_finally", :server_name => "local", :credential_name => "local") do
  boot_jobs("job1")
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => "finally")
  finally do
    job("cleanup", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  end
end
