# Evaluates the Vagrantfile's provider blocks for one provider, as Vagrant would, with recording
# stand-ins for Vagrant's config objects; prints what the block set, as JSON. For providers whose
# Vagrant plugin is not packaged in Debian (vmware_desktop, parallels), `vagrant validate` cannot
# run their blocks, so tests/test_vagrant.py uses this instead.
#
#   ruby tests/vagrant/providers.rb VAGRANTFILE PROVIDER
require "json"

# Records every setting made on it (vm.box = ..., cpus = ..., vmx["memsize"] = ...).
class Recorder
  attr_reader :settings

  def initialize(settings = {}, prefix = "")
    @settings = settings
    @prefix = prefix
  end

  def method_missing(name, *args, &block)
    key = name.to_s
    if key == "[]="
      @settings["#{@prefix}[#{args[0]}]"] = args[1]
    elsif key.end_with?("=")
      @settings["#{@prefix}#{key.chomp('=')}"] = args.first
    elsif key == "provider"
      PROVIDERS[args.first] = block
    elsif %w[synced_folder network provision].include?(key)
      (@settings["#{@prefix}#{key}"] ||= []) << args
    else
      return Recorder.new(@settings, "#{@prefix}#{key}.")
    end
    nil
  end

  def respond_to_missing?(*)
    true
  end
end

PROVIDERS = {}

module Vagrant
  VERSION = "2.4.1"
  def self.configure(_version)
    yield Recorder.new
  end
end

vagrantfile, provider = ARGV
load vagrantfile
block = PROVIDERS.fetch(provider) { abort "no provider block for #{provider}" }
settings = {}
block.call(Recorder.new(settings, "provider."), Recorder.new(settings, "override."))
puts JSON.generate(settings)
