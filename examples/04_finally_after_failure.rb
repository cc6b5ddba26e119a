# -*- coding: utf-8 -*-
# A job that fails: its successor never runs, the finally block still runs, and the root jobnet
# ends in error. The failing job writes its reason to stderr, which the console shows.
#
# [S]-->[load]-->[publish]-->[E]      finally: [notify]
#        (exit 3)  (not run)
require 'tengine_job'

jobnet("example_failure", :server_name => "local", :credential_name => "local") do
  boot_jobs("load")
  job("load", "$TENGINE_EXAMPLES/scripts/fail_with_stderr.sh 3 'input file is missing'", :to => "publish")
  job("publish", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
  finally do
    job("notify", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 0 0")
  end
end
