require 'tengine_job'

jobnet("first") do
  job("j1", "j1.sh")
  jobnet("nested") do
    job("j2", "j2.sh")
end

jobnet("second") do
  job("j3", "j3.sh")
end
