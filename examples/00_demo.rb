# -*- coding: utf-8 -*-
# The demo jobnet (`scripts/demo`): a bit of everything a Tengine jobnet has.
#
#                  |-->[extract_a]-->|
# [S]-->[prepare]--|                 |-->[transform]-->[demo_publish]-->[E]
#                  |-->[extract_b]-->|    (a sub-jobnet)  (an expansion)
#                          _____finally_____
#                         {[S]-->[cleanup]-->[E]}
require 'tengine_job'

jobnet("demo", "the demo: fork/join, a sub-jobnet, an expansion and a finally",
       :server_name => "local", :credential_name => "local") do
  boot_jobs("prepare")
  job("prepare", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => ["extract_a", "extract_b"])
  job("extract_a", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 2 0", :to => "transform")
  job("extract_b", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => "transform")
  jobnet("transform", :to => "demo_publish") do
    job("clean", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
    job("aggregate", "$TENGINE_EXAMPLES/scripts/print_env.sh")
  end
  expansion("demo_publish")
  finally do
    job("cleanup", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  end
end

# Expanded into `demo` above; a root jobnet of its own, so it can also be run alone.
jobnet("demo_publish", "publish the report", :server_name => "local",
       :credential_name => "local") do
  job("publish", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end
