# -*- coding: utf-8 -*-
# Jobnets inside a jobnet: a sub-jobnet is a vertex like a job; its own children run inside it,
# in its own order, and it has its own finally. The same job name may appear in different layers.
#
# [S]-->[prepare]-->[extract]-->[report]-->[E]
#                   (extract: [S]-->[job1]-->|-->[job2]-->|-->[E], finally: [cleanup])
#                                            |-->[job3]-->|
require 'tengine_job'

jobnet("example_nested", :server_name => "local", :credential_name => "local") do
  boot_jobs("prepare")
  job("prepare", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => "extract")
  jobnet("extract", :to => "report") do
    boot_jobs("job1")
    job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => ["job2", "job3"])
    job("job2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
    job("job3", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
    finally do
      job("cleanup", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 0 0")
    end
  end
  jobnet("report") do
    job("job1", "$TENGINE_EXAMPLES/scripts/print_env.sh")
  end
end
