# duplicate_root: "invalid_twice" is defined here and in duplicate_root_b.rb. Tengine refused
# this at load time: 2 jobnet named "invalid_twice" found at ...
require 'tengine_job'

jobnet("invalid_twice", :server_name => "local", :credential_name => "local") do
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
