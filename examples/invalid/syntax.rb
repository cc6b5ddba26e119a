# syntax (reported by the Ruby reader): the jobnet's do block is never closed.
require 'tengine_job'

jobnet("invalid_syntax", :server_name => "local", :credential_name => "local") do
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
