# misplaced: a finally directly inside a finally (Tengine's acceptance test
# 01_01_23_finally_in_finally.rb, expected error E4).
require 'tengine_job'

jobnet("jobnet1023", :server_name => "local", :credential_name => "local") do
  boot_jobs("job1")
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  finally do
    finally do
      job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
    end
  end
end
