# -*- coding: utf-8 -*-
# A nested expansion (tengine-facts section 4, DSLs 2004_environment/MM_FULL_ACTUAL_JOB_ANCESTOR_IDS_*):
# expansion_jobnet_99_4_1 expands child_root2, whose jobnet21 expands grandchild_root, whose
# jobnet31 contains job311. job311 prints its MM_* variables:
#   MM_ACTUAL_JOB_NAME_PATH = /expansion_jobnet_99_4_1/child_root2/jobnet21/grandchild_root/jobnet31/job311
#   MM_FULL_ACTUAL_JOB_ANCESTOR_IDS = R;C2;J21;G;J31   (every ancestor from the root)
#   MM_ACTUAL_JOB_ANCESTOR_IDS      = G;J31            (from the nearest expansion down)
require 'tengine_job'

jobnet("expansion_jobnet_99_4_1", :server_name => "local", :credential_name => "local") do
  expansion("child_root2")
end

jobnet("child_root2", :server_name => "local", :credential_name => "local") do
  jobnet("jobnet21") do
    expansion("grandchild_root")
  end
end

jobnet("grandchild_root", :server_name => "local", :credential_name => "local") do
  jobnet("jobnet31") do
    job("job311", "$TENGINE_EXAMPLES/scripts/print_env.sh")
  end
end
