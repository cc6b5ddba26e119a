# unknown_option: :hoge is no option of a jobnet (Tengine's acceptance test
# 01_03_09_unexpected_option_for_jobnet.rb, expected error E8 "hoge is invalid option.").
require 'tengine_job'

jobnet("jobnet1034", :server_name => "local", :credential_name => "local", :hoge => "hoge") do
  auto_sequence
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
