# frozen_string_literal: true

# The settings of the ovlmgr Vagrant lab: one block of defaults, each overridable by an environment variable, validated,
# and the machine plan (names, roles, addresses, OVS system-ids) derived from them. The Vagrantfile only reads this; tests
# run `ruby settings.rb` (prints the plan as JSON) with different environments.

require "ipaddr"
require "json"

module OvlmgrLab
  # Raised for a setting that is not allowed; the message names the variable, the value and what is allowed.
  class SettingsError < StandardError; end

  # Every setting: environment variable, default, and what it is.
  DEFAULTS = {
    workers: ["OVLMGR_WORKERS", "2", "number of worker VMs besides the central one (0-50)"],
    box: ["OVLMGR_BOX", "debian/bookworm64", "Vagrant box (Debian 12); local: ovlmgr-local, built by make vagrant-box"],
    cpus: ["OVLMGR_CPUS", "1", "vCPUs per VM (1-32)"],
    memory: ["OVLMGR_MEMORY", "1024", "MiB of memory per VM (512-65536)"],
    net_prefix: ["OVLMGR_NET_PREFIX", "198.18.50", "first three octets of the private (underlay) /24, inside 198.18.0.0/15"],
    external_prefix: ["OVLMGR_EXTERNAL_PREFIX", "198.18.100",
                      "first three octets of the external network /24: the host side (.1) stands for the outside, " \
                      "worker1 is plugged in as gateway node (docs/external.md)"],
    mtu: ["OVLMGR_MTU", "1500", "underlay MTU of the private network (1338-9216; containers get MTU-58)"],
    libvirt_driver: ["OVLMGR_LIBVIRT_DRIVER", "kvm", "libvirt domain type: kvm, or qemu (software emulation, TCG)"],
    mgmt_net: ["OVLMGR_MGMT_NET", "198.19.254.0/24", "libvirt management network (the NIC Vagrant uses for SSH)"],
    mgmt_mode: ["OVLMGR_MGMT_MODE", "nat", "libvirt management network mode: nat, or none (isolated, no outside access)"],
    demo_subnet: ["OVLMGR_DEMO_SUBNET", "198.19.10.0/24", "subnet of the demo container network"],
    wait: ["OVLMGR_WAIT", "600", "seconds provisioning waits for the central node or a chassis (10-3600)"],
    libvirt_pool: ["OVLMGR_LIBVIRT_POOL", "default", "libvirt storage pool for the box image and the VM disks"],
    serial_dir: ["OVLMGR_SERIAL_DIR", "", "libvirt: absolute directory for each VM's serial console log NAME.log (empty: none)"],
  }.freeze

  LOCAL_BOX = "ovlmgr-local" # OVLMGR_BOX=local: the box vagrant/box/build.sh builds and adds
  LAB_RANGE = IPAddr.new("198.18.0.0/15")
  CENTRAL_HOST = 10 # central is PREFIX.10, worker i is PREFIX.(10+i)
  GENEVE_OVERHEAD = 58
  MAX_WORKERS = 50
  NAME_RE = /\A[A-Za-z0-9][A-Za-z0-9_.-]*\z/.freeze

  # Settings holds validated values; machines is the plan.
  Settings = Struct.new(:workers, :box, :cpus, :memory, :net_prefix, :external_prefix, :mtu, :libvirt_driver, :mgmt_net, :mgmt_mode,
                        :demo_subnet, :wait, :libvirt_pool, :serial_dir, keyword_init: true) do
    def central_ip
      "#{net_prefix}.#{CENTRAL_HOST}"
    end

    def container_mtu
      mtu - GENEVE_OVERHEAD
    end

    # Name of the libvirt network of the underlay; it carries the prefix so a lab with another prefix gets its own.
    def underlay_network
      "ovlmgr-#{net_prefix.tr('.', '-')}"
    end

    # Name of the libvirt network of the external network (the host's side of it is the outside world).
    def external_network
      "ovlmgr-ext-#{external_prefix.tr('.', '-')}"
    end

    # One entry per VM, central first (the order Vagrant brings them up in).
    def machines
      names = ["central"] + (1..workers).map { |i| "worker#{i}" }
      names.each_with_index.map do |name, i|
        {
          "name" => name,
          "hostname" => name,
          "role" => i.zero? ? "central" : "worker",
          "ip" => "#{net_prefix}.#{CENTRAL_HOST + i}",
          # The OVS system-id (= OVN chassis name): unique per VM by construction and stable across re-provisioning
          # and re-creation, unlike the id baked into a cloned box.
          "system_id" => name,
          "primary" => i.zero?,
          "last" => i == workers,
          # worker1 is plugged into the external network (a NIC without an address, found by its MAC, put in br-ex).
          "gateway" => name == "worker1",
          "external_mac" => name == "worker1" ? format("52:54:00:c6:64:%02x", CENTRAL_HOST + i) : "",
        }
      end
    end

    # Provisioning steps of one machine, in order (each is a step of provision.sh and a named provisioner, so one can be
    # re-run with `vagrant provision NODE --provision-with STEP`). The last worker ends with a summary of the whole lab.
    def steps(machine)
      steps = %w[mtu install]
      steps += machine["role"] == "central" ? %w[central join demo] : %w[join cni]
      steps << "summary" if machine["last"] && machine["role"] == "worker"
      steps
    end

    # The environment handed to every provisioning step of one machine.
    def provision_env(machine)
      {
        "OVLMGR_ROLE" => machine["role"],
        "OVLMGR_NODE" => machine["hostname"],
        "OVLMGR_ENCAP_IP" => machine["ip"],
        "OVLMGR_SYSTEM_ID" => machine["system_id"],
        "OVLMGR_CENTRAL_IP" => central_ip,
        "OVLMGR_NET_PREFIX" => net_prefix,
        "OVLMGR_MTU" => mtu.to_s,
        "OVLMGR_DEMO_SUBNET" => demo_subnet,
        "OVLMGR_WAIT" => wait.to_s,
        "OVLMGR_LAST" => machine["last"] ? "1" : "0",
        "OVLMGR_CHASSIS" => machines.map { |m| "#{m['system_id']}=#{m['ip']}" }.join(" "),
        "OVLMGR_EXTERNAL_MAC" => machine["external_mac"],
      }
    end

    def to_h
      super.merge("central_ip" => central_ip, "container_mtu" => container_mtu, "underlay_network" => underlay_network,
                  "external_network" => external_network)
    end
  end

  module_function

  # Reads, checks and returns the settings from env (a Hash like ENV).
  def load(env = ENV)
    raw = DEFAULTS.to_h do |key, (var, default, _)|
      value = env[var]
      [key, value.nil? || value.strip.empty? ? default : value.strip]
    end
    s = Settings.new(
      workers: int(raw, :workers, 0, MAX_WORKERS),
      box: box(raw[:box]),
      cpus: int(raw, :cpus, 1, 32),
      memory: int(raw, :memory, 512, 65_536),
      net_prefix: net_prefix(raw[:net_prefix]),
      external_prefix: net_prefix(raw[:external_prefix], :external_prefix),
      mtu: int(raw, :mtu, 1280 + GENEVE_OVERHEAD, 9216),
      libvirt_driver: choice(raw, :libvirt_driver, %w[kvm qemu]),
      mgmt_net: cidr(raw, :mgmt_net),
      mgmt_mode: choice(raw, :mgmt_mode, %w[nat none]),
      demo_subnet: cidr(raw, :demo_subnet),
      wait: int(raw, :wait, 10, 3600),
      libvirt_pool: name(raw, :libvirt_pool),
      serial_dir: dir(raw, :serial_dir),
    )
    check_overlaps(s)
    s
  end

  # Why libvirt's kvm driver cannot run guests on this host, or nil: no writable /dev/kvm, or a 3-second QEMU guest with
  # the host CPU (what the kvm driver uses) that aborts at once, as under nested or special hypervisors ("failed to set
  # MSR 0x10a"). nil as well when QEMU is not installed here (nothing to try).
  def kvm_problem
    return "/dev/kvm is missing or not writable" unless File.writable?("/dev/kvm")

    qemu = ENV["PATH"].to_s.split(File::PATH_SEPARATOR).map { |d| File.join(d, "qemu-system-x86_64") }
                      .find { |f| File.executable?(f) }
    return nil if qemu.nil?

    r, w = IO.pipe
    pid = Process.spawn(qemu, "-accel", "kvm", "-cpu", "host", "-m", "64", "-display", "none", "-nodefaults",
                        "-no-reboot", "-monitor", "none", "-serial", "none", out: File::NULL, err: w)
    w.close
    status = nil
    30.times do
      _, status = Process.wait2(pid, Process::WNOHANG)
      break if status

      sleep 0.1
    end
    if status.nil? # still running: KVM works
      Process.kill("KILL", pid)
      Process.wait(pid)
      return nil
    end
    first = r.read.lines.first.to_s.strip.sub(/\Aqemu-system-x86_64: (error: )?/, "")
    "a KVM guest does not start here (#{first.empty? ? status : first})"
  ensure
    r&.close
  end

  def fail_setting(key, value, allowed)
    raise SettingsError, "#{DEFAULTS[key][0]}=#{value.inspect}: #{allowed}"
  end

  def int(raw, key, min, max)
    value = raw[key]
    n = Integer(value, 10) if value.match?(/\A[0-9]+\z/)
    fail_setting(key, value, "must be a whole number from #{min} to #{max}") if n.nil? || n < min || n > max
    n
  end

  def choice(raw, key, allowed)
    value = raw[key]
    fail_setting(key, value, "must be one of #{allowed.join(', ')}") unless allowed.include?(value)
    value
  end

  def box(value)
    fail_setting(:box, value, "must be a box name like debian/bookworm64 (no spaces)") if value.match?(/\s/)
    value == "local" ? LOCAL_BOX : value
  end

  def name(raw, key)
    value = raw[key]
    fail_setting(key, value, "must be a name of letters, digits, _ . - (starting with a letter or digit)") unless
      value.match?(NAME_RE)
    value
  end

  def dir(raw, key)
    value = raw[key]
    fail_setting(key, value, "must be an absolute directory path without spaces, or empty") unless
      value.empty? || value.match?(%r{\A/[^\s]*\z})
    value
  end

  def net_prefix(value, key = :net_prefix)
    octets = value.split(".", -1)
    ok = octets.size == 3 && octets.all? { |o| o.match?(/\A(0|[1-9][0-9]{0,2})\z/) && o.to_i <= 255 }
    ok &&= LAB_RANGE.include?(IPAddr.new("#{value}.0"))
    fail_setting(key, value, "must be three octets of a /24 inside 198.18.0.0/15, e.g. 198.18.50") unless ok
    value
  end

  def cidr(raw, key)
    value = raw[key]
    addr, len = value.split("/", 2)
    ok = len&.match?(/\A[0-9]{1,2}\z/) && (8..30).cover?(len.to_i)
    net = begin
      IPAddr.new(value) if ok && IPAddr.new(addr).ipv4?
    rescue IPAddr::Error
      nil
    end
    fail_setting(key, value, "must be an IPv4 CIDR from /8 to /30, e.g. 198.19.10.0/24") if net.nil?
    fail_setting(key, value, "must be a network address (#{net}/#{len})") unless net.to_s == addr
    value
  end

  def check_overlaps(s)
    underlay = IPAddr.new("#{s.net_prefix}.0/24")
    nets = { net_prefix: underlay, external_prefix: IPAddr.new("#{s.external_prefix}.0/24"), mgmt_net: IPAddr.new(s.mgmt_net),
             demo_subnet: IPAddr.new(s.demo_subnet) }
    nets.keys.combination(2).each do |a, b|
      next unless nets[a].include?(nets[b].to_range.first) || nets[b].include?(nets[a].to_range.first)

      raise SettingsError, "#{DEFAULTS[a][0]}=#{s[a]} overlaps #{DEFAULTS[b][0]}=#{s[b]}: the underlay, management, " \
                           "external and demo networks must not overlap"
    end
  end
end

if $PROGRAM_NAME == __FILE__
  begin
    s = OvlmgrLab.load
    puts JSON.pretty_generate("settings" => s.to_h, "machines" => s.machines,
                              "env" => s.machines.to_h { |m| [m["name"], s.provision_env(m)] },
                              "steps" => s.machines.to_h { |m| [m["name"], s.steps(m)] })
  rescue OvlmgrLab::SettingsError => e
    warn "ovlmgr vagrant settings: #{e.message}"
    exit 1
  end
end
