# expansion_missing: the 2011 use-case DSL 2003_expansion/expansion_4.rb expanded
# "u1pj1_pattern_nothing", which no file defines. Tengine crashed at run time; we refuse it.
require 'tengine_job'

jobnet("u1pj1_pattern", :server_name => "local", :credential_name => "local") do
  job("job1", "$TENGINE_EXAMPLES/scripts/sleep_and_exit.sh 1 0")
end

jobnet("invalid_expansion_missing", :server_name => "local", :credential_name => "local") do
  jobnet("sub") do
    expansion("u1pj1_pattern_nothing")
  end
end
