# bad_value: killing_signal_interval must be a positive number of seconds.
require 'tengine_job'

jobnet("invalid_killing_signal_interval", :server_name => "local", :credential_name => "local",
       :killing_signals => ["TERM", "KILL"], :killing_signal_interval => 0) do
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
