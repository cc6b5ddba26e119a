# -*- coding: utf-8 -*-
# One long job, to try force stop and the failures of the scenarios (S05..S21) by hand: it
# sleeps 600 seconds; TERM first, then KILL 5 seconds later if it is still there.
require 'tengine_job'

jobnet("example_long", :server_name => "local", :credential_name => "local",
       :killing_signals => ["TERM", "KILL"], :killing_signal_interval => 5) do
  job("sleep600", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 600 0")
end
