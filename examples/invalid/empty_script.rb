# empty_script: job2 has an empty script, so there is nothing to run.
require 'tengine_job'

jobnet("invalid_empty_script", :server_name => "local", :credential_name => "local") do
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  job("job2", "")
end
