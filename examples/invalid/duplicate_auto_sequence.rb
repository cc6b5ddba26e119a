# duplicate_auto_sequence: auto_sequence given as an option and called again in the block
# (Tengine's expected error E6 "auto_sequence is duplicated").
require 'tengine_job'

jobnet("invalid_auto_sequence_twice", :server_name => "local", :credential_name => "local", :auto_sequence => true) do
  auto_sequence
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
