# Valid Ruby, but four constructs the static reader does not evaluate.
require 'tengine_job'

jobnet("ok1") do
  job("j1", "j1.sh")
end

jobnet("uses_proc") do
  job("j1", "env", :preparation => proc { "export FOO=BAR" })
end

jobnet("uses_loop") do
  %w(a b c).each do |name|
    job(name, "#{name}.sh")
  end
end

jobnet("ok2") do
  job("j2", "j2.sh")
end

jobnet("uses_env") do
  job("j1", ENV["HOME"] + "/j1.sh")
end

jobnet("uses_if") do
  if true
    job("j1", "j1.sh")
  end
end
