# misplaced: a hadoop_job directly in a jobnet; it belongs in a hadoop_job_run block (Tengine's
# expected error E1 "jobnet block contains unexpected method(hadoop_job)").
require 'tengine_job'

jobnet("invalid_hadoop_job_in_jobnet", :server_name => "local", :credential_name => "local") do
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  hadoop_job("hadoop_job1")
end
