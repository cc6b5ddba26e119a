# bad_value: a name may not contain "/", which separates the names of a name path.
require 'tengine_job'

jobnet("invalid_name", :server_name => "local", :credential_name => "local") do
  job("extract/load", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
