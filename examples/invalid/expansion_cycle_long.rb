# expansion_cycle through three root jobnets: loop_a -> loop_b -> loop_c -> loop_a, the last one
# from inside a nested jobnet.
require 'tengine_job'

jobnet("loop_a", :server_name => "local", :credential_name => "local") do
  expansion("loop_b")
end

jobnet("loop_b", :server_name => "local", :credential_name => "local") do
  expansion("loop_c")
end

jobnet("loop_c", :server_name => "local", :credential_name => "local") do
  jobnet("inner") do
    job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
    expansion("loop_a")
  end
end
