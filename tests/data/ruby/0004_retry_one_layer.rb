# -*- coding: utf-8 -*-
# The standard test jobnet of Tengine's acceptance suite, as a Tengine user writes it:
# j1 forks to j2 and j3, both join into j4; a finally block runs jn0004_f.

require 'tengine_job'

base_dir = File.expand_path("..", __FILE__)

jobnet("jn0004", :server_name => "localhost", :credential_name => "ssh_pk") do
  boot_jobs("j1")
  job("j1", "#{base_dir}/0004_retry_one_layer.sh", :to => ["j2", "j3"])
  job("j2", "#{base_dir}/0004_retry_one_layer.sh", :to => "j4")
  job("j3", "#{base_dir}/0004_retry_one_layer.sh", :to => "j4")
  job("j4", "#{base_dir}/0004_retry_one_layer.sh")
  finally do
    job("jn0004_f", "#{base_dir}/0004_retry_one_layer.sh")
  end
end
