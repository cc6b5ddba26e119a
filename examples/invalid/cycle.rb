# cycle: extract -> transform -> load -> extract never starts; Tengine refused it too
# ("circular dependency found in jobnet").
require 'tengine_job'

jobnet("invalid_cycle", :server_name => "local", :credential_name => "local") do
  boot_jobs("start")
  job("start", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => "extract")
  job("extract", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => "transform")
  job("transform", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => "load")
  job("load", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => "extract")
end
