#!/usr/bin/env ruby
# -*- coding: utf-8 -*-
# Every form the static reader accepts, in one valid Ruby file.
require "tengine_job"
dsl_version("1.0")

=begin
A block comment: job("not_a_job", "x.sh") is not read.
=end

SCRIPTS = File.dirname(__FILE__)
signals = %w(INT TERM KILL)

jobnet "all", "everything at once",
       server_name: "s1", :credential_name => "c1" do
  auto_sequence
  job "plain", "#{SCRIPTS}/plain.sh"
  job("described", "a description", "#{SCRIPTS}/described.sh",
      :killing_signals => signals, :killing_signal_interval => 30,)
  hadoop_job_run("hjr", "Hadoop run", "hjr.sh") do
    hadoop_job("h1")
    hadoop_job "h2"
  end
  jobnet("inner", :caption => "captioned", :auto_sequence => true) { job("i1", 'it''s.sh'); job("i2", "i2.sh") }
  expansion("other")
  finally {
    job "cleanup", "cleanup.sh"
  }
end

jobnet("other", {:instance_name => "s2"}) do
  boot_jobs(*%w[a b])
  job("a", "a.sh", to: "c")
  job("b", "b.sh", :redirect_to => ["c"])
  job("c", "c.sh")
end
__END__
Anything after __END__ is data: jobnet("ignored") do end
