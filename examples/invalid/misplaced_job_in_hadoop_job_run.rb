# misplaced: a job inside a hadoop_job_run, which holds only hadoop_job (Tengine's acceptance
# test 01_01_21_job_in_hadoop_job_run.rb, expected error E2).
require 'tengine_job'

jobnet("jobnet1021", :server_name => "local", :credential_name => "local") do
  auto_sequence
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  hadoop_job_run("hadoop_job_run1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0") do
    hadoop_job("hadoop_job1")
    hadoop_job("hadoop_job2")
    job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  end
  job("job3", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
