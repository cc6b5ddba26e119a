# duplicate_finally: two finally blocks in one jobnet (Tengine's expected error E5
# "finally is duplicated").
require 'tengine_job'

jobnet("invalid_two_finally", :server_name => "local", :credential_name => "local") do
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  finally do
    job("cleanup1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  end
  finally do
    job("cleanup2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  end
end
