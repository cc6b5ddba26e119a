# duplicate_root: the second "invalid_twice" (see duplicate_root_a.rb).
require 'tengine_job'

jobnet("invalid_twice", :server_name => "local", :credential_name => "local") do
  job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
