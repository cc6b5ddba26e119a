# -*- coding: utf-8 -*-
# Tengine's standard test jobnet (tengine_job/examples/0004_retry_one_layer.rb): j1, then j2 and
# j3 in parallel (a fork), then j4 once both are done (a join); the finally job runs at the end
# whatever happened before.
#
#               |-->[j2]-->|
# [S1]-->[j1]-->|          |-->[j4]-->[E1]
#               |-->[j3]-->|
#                     _________finally________
#                    {                        }
#                    {[S2]-->[jn0004_f]-->[E2]}
#                    {________________________}
require 'tengine_job'

jobnet("jn0004", :server_name => "local", :credential_name => "local") do
  boot_jobs("j1")
  job("j1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => ["j2", "j3"])
  job("j2", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 2 0", :to => "j4")
  job("j3", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0", :to => "j4")
  job("j4", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  finally do
    job("jn0004_f", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  end
end
