# Test oracle, not Tengine: stand-ins for Tengine's jobnet DSL methods that record what a DSL file
# calls, with which arguments, on which line, and print it as JSON when Ruby exits. Arguments are
# split the way Tengine's loader (tengine_job/lib/tengine/job/dsl/loader.rb) splits them, so the
# tests can compare what real Ruby evaluates with what the static reader reads.
#
#   ruby -I tests/data/ruby/oracle -r tengine_job FILE.rb
require 'json'

$dsl_roots = []
$dsl_stack = []

def __dsl_plain(value)
  case value
  when Symbol then value.to_s
  when Array then value.map { |v| __dsl_plain(v) }
  when Hash then value.each_with_object({}) { |(k, v), h| h[__dsl_plain(k)] = __dsl_plain(v) }
  else value
  end
end

# The line of the DSL call: two frames up from here (this method, then the DSL method).
def __dsl_line
  caller_locations(2, 1)[0].lineno
end

def __dsl_add(kind, name, line, description, script, options, &block)
  node = { "kind" => kind, "name" => name, "line" => line, "description" => description,
           "script" => script, "options" => __dsl_plain(options), "children" => [],
           "sequencing" => [] }
  if $dsl_stack.empty?
    $dsl_roots << node
  else
    $dsl_stack.last["children"] << node
  end
  if block
    $dsl_stack.push(node)
    block.call
    $dsl_stack.pop
  end
  node
end

def __dsl_job_args(args)
  options = args.last.is_a?(Hash) ? args.pop : {}
  first, script = *args
  script ? [first, script, options] : [nil, first, options]
end

def jobnet(name, *args, &block)
  options = args.last.is_a?(Hash) ? args.pop : {}
  __dsl_add("jobnet", name, __dsl_line, args.first, nil, options, &block)
end

def job(name, *args, &block)
  description, script, options = __dsl_job_args(args)
  __dsl_add("job", name, __dsl_line, description, script, options, &block)
end

def hadoop_job_run(name, *args, &block)
  description, script, options = __dsl_job_args(args)
  __dsl_add("hadoop_job_run", name, __dsl_line, description, script, options, &block)
end

def hadoop_job(name, options = {}, &block)
  __dsl_add("hadoop_job", name, __dsl_line, nil, nil, options, &block)
end

def expansion(name, options = {}, &block)
  __dsl_add("expansion", name, __dsl_line, nil, nil, options, &block)
end

def finally(&block)
  __dsl_add("finally", "finally", __dsl_line, nil, nil, {}, &block)
end

def boot_jobs(*names)
  $dsl_stack.last["sequencing"] << ["boot_jobs", __dsl_line, names]
end

def auto_sequence
  $dsl_stack.last["sequencing"] << ["auto_sequence", __dsl_line, []]
end

def dsl_version(*_args)
end

at_exit { puts JSON.generate($dsl_roots) }
