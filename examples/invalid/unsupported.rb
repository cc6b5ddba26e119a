# unsupported (reported by the Ruby reader): :preparation takes a Ruby proc that tengined runs at
# run time; the static reader does not run Ruby, so it says so instead of guessing.
require 'tengine_job'

jobnet("invalid_unsupported", :server_name => "local", :credential_name => "local") do
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :preparation => proc { "export IP_MESSAGE=hello" })
end
