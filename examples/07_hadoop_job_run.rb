# -*- coding: utf-8 -*-
# A hadoop_job_run (Tengine's acceptance test 01_01_21, without its misplaced job): a job that
# runs a script and declares the Hadoop jobs that script starts; the script sees them in
# MM_HADOOP_JOBS.
#
# [S]-->[import]-->[hadoop_job_run1]-->[export]-->[E]
require 'tengine_job'

jobnet("example_hadoop", :server_name => "local", :credential_name => "local") do
  auto_sequence
  job("import", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  hadoop_job_run("hadoop_job_run1", "$TENGINE_EXAMPLES/scripts/print_env.sh") do
    hadoop_job("hadoop_job1")
    hadoop_job("hadoop_job2")
  end
  job("export", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
