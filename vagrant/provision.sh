#!/usr/bin/env bash
# Provisioning of the ovlmgr Vagrant lab, one step per call: provision.sh STEP. The Vagrantfile runs the steps of each
# machine in order (settings.rb#steps) as root with the OVLMGR_* environment of settings.rb#provision_env.
#   mtu      underlay MTU on the private NIC (every boot)     install  OVS/OVN packages, ovlmgr binaries, demo helper
#   central  NB/SB databases on TCP, ovn-northd (central)     join     checks, then `ovlmgr node join`, ovn-controller
#   cni      CNI config for the demo network (workers)        demo     demo network + CNI config + what to try (central)
#   summary  waits for every chassis, prints the lab (last worker)
#   ipsec    IPsec for encrypted tunnels with this chassis' certificate (not run by `vagrant up`: after the certificate
#            is uploaded, `vagrant provision --provision-with ipsec`; then `ovlmgr encrypt on` on central)
# Every step is safe to re-run (`vagrant provision`).
set -euo pipefail

STEP=${1:-}
SRC=/ovlmgr                              # the repository, rsynced from the host (bin/ built there)
NAT_IP=10.0.2.15                         # VirtualBox gives this NAT address to every VM
NB_PORT=6641
SB_PORT=6642
DEMO_NET=demo
ROOT=${OVLMGR_ROOT:-}                    # prefix of every file provisioning writes (tests only)
CNI_CONF_DIR=$ROOT/etc/cni/net.d
CNI_BIN_DIR=$ROOT/opt/cni/bin
BIN_DIR=$ROOT/usr/local/bin
MTU_UNIT=$ROOT/etc/systemd/system/ovlmgr-underlay-mtu.service
CNI_UNIT=$ROOT/etc/systemd/system/ovlmgr-cni.service  # the node's CNI server (step cni)
SYSTEM_ID_CONF=$ROOT/etc/openvswitch/system-id.conf
LAB_ENV=$ROOT/etc/ovlmgr/lab.env
IPSEC_DIR=$ROOT/etc/ovlmgr/ipsec         # the chassis certificate, its key and the node CA (step ipsec)
STRONGSWAN_CONF=$ROOT/etc/strongswan.d/ovlmgr-ipsec.conf
IPSEC_CACERTS=$ROOT/etc/ipsec.d/cacerts
export DEBIAN_FRONTEND=noninteractive

log() { printf 'ovlmgr [%s/%s] %s\n' "${OVLMGR_NODE:-?}" "$STEP" "$*"; }
die() {
	printf 'ovlmgr [%s/%s] ERROR: %s\n' "${OVLMGR_NODE:-?}" "$STEP" "$*" >&2
	exit 1
}

# need VAR...: each variable must be set and non-empty (the Vagrantfile passes them).
need() {
	local v
	for v in "$@"; do
		[[ -n ${!v:-} ]] || die "$v is not set: run this script through the Vagrantfile (vagrant provision)"
	done
}

# wait_for DESCRIPTION CMD...: runs CMD until it succeeds, for at most OVLMGR_WAIT seconds.
wait_for() {
	local desc=$1 deadline=$((SECONDS + ${OVLMGR_WAIT:-600}))
	shift
	"$@" >/dev/null 2>&1 && return 0
	log "waiting for $desc (up to ${OVLMGR_WAIT:-600}s)"
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 2
	done
}

# nic_of IP: the interface holding IPv4 address IP.
nic_of() {
	ip -o -4 addr show | awk -v ip="$1" '{ split($4, a, "/"); if (a[1] == ip) { print $2; exit } }'
}

# nic_of_mac MAC: the interface with this MAC address.
nic_of_mac() {
	ip -o link show | awk -v mac="${1,,}" '{ for (i = 1; i < NF; i++) if ($i == "link/ether" && $(i + 1) == mac) { sub(/:$/, "", $2); sub(/@.*/, "", $2); print $2; exit } }'
}

# default_nic: the interface of the IPv4 default route (the NAT / management NIC), if any.
default_nic() {
	ip -4 route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }'
}

# nic_mtu NIC: its MTU.
nic_mtu() {
	ip -o link show dev "$1" | awk '{ for (i = 1; i < NF; i++) if ($i == "mtu") { print $(i + 1); exit } }'
}

# underlay_nic: checks that the encap IP sits on the private NIC and prints that NIC.
underlay_nic() {
	need OVLMGR_ENCAP_IP OVLMGR_NET_PREFIX
	local nic def
	[[ $OVLMGR_ENCAP_IP != "$NAT_IP" ]] ||
		die "encap IP $OVLMGR_ENCAP_IP is the NAT address every VirtualBox VM shares; Geneve needs the private network address"
	[[ $OVLMGR_ENCAP_IP == "$OVLMGR_NET_PREFIX".* ]] ||
		die "encap IP $OVLMGR_ENCAP_IP is not in the private network $OVLMGR_NET_PREFIX.0/24"
	nic=$(nic_of "$OVLMGR_ENCAP_IP")
	[[ -n $nic ]] || die "encap IP $OVLMGR_ENCAP_IP is on no interface of this VM: the private network NIC is missing or" \
		"unconfigured (ip -4 addr; vagrant reload fixes a NIC the box did not configure)"
	def=$(default_nic)
	[[ $nic != "$def" ]] || die "encap IP $OVLMGR_ENCAP_IP is on $nic, the NAT/default-route NIC; it must be on the private NIC"
	printf '%s\n' "$nic"
}

install_file() { # SRC DST: installs an executable when it differs
	if ! cmp -s "$1" "$2"; then
		install -D -m 0755 "$1" "$2"
		log "installed $2"
	fi
}

# write_file PATH: writes stdin to PATH when the content differs; returns 1 when nothing changed.
write_file() {
	local tmp
	tmp=$(mktemp)
	cat >"$tmp"
	if cmp -s "$tmp" "$1"; then
		rm -f "$tmp"
		return 1
	fi
	install -D -m 0644 "$tmp" "$1"
	rm -f "$tmp"
}

sb() { printf 'tcp:%s:%s' "$OVLMGR_CENTRAL_IP" "$SB_PORT"; }
nb() { printf 'tcp:%s:%s' "$OVLMGR_CENTRAL_IP" "$NB_PORT"; }
sbctl() { ovn-sbctl --db="$(sb)" --timeout=10 "$@"; }

# chassis_ok NAME IP HOSTNAME: the SB has chassis NAME, on HOSTNAME, with a Geneve encap at IP.
chassis_ok() {
	[[ $(sbctl --bare --columns=hostname find Chassis name="$1") == "$3" ]] &&
		[[ $(sbctl --bare --columns=ip find Encap chassis_name="$1") == "$2" ]]
}

step_mtu() {
	need OVLMGR_MTU
	local nic cur
	nic=$(underlay_nic)
	cur=$(nic_mtu "$nic")
	if [[ $cur != "$OVLMGR_MTU" ]]; then
		ip link set dev "$nic" mtu "$OVLMGR_MTU" ||
			die "cannot set MTU $OVLMGR_MTU on $nic (was $cur): the provider's private network must allow it"
		log "MTU of $nic: $cur -> $OVLMGR_MTU"
	fi
	# Also on boots that Vagrant does not drive (a reboot inside the VM).
	if write_file "$MTU_UNIT" <<EOF; then
[Unit]
Description=ovlmgr lab: underlay MTU $OVLMGR_MTU on $nic
After=network.target
Before=ovn-controller.service

[Service]
Type=oneshot
ExecStart=/sbin/ip link set dev $nic mtu $OVLMGR_MTU
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
EOF
		systemctl daemon-reload
		systemctl enable ovlmgr-underlay-mtu.service
	fi
	log "underlay $nic $OVLMGR_ENCAP_IP mtu $OVLMGR_MTU (containers: $((OVLMGR_MTU - 58)))"
}

install_binaries() {
	local from="" gobin tmp
	[[ -d $SRC ]] || die "$SRC is missing: the rsync synced folder did not sync (rsync on the host and in the box?); try vagrant rsync"
	if [[ -x $SRC/bin/ovlmgr && -x $SRC/bin/ovlmgr-cni ]]; then
		from=$SRC/bin
	else
		gobin=$(PATH=$PATH:/usr/local/go/bin:/usr/lib/go/bin command -v go || true)
		[[ -n $gobin ]] || die "no ovlmgr binaries in $SRC/bin and no Go in the VM: run 'make build' on the host" \
			"(another OS: CGO_ENABLED=0 GOOS=linux GOARCH=amd64 make build), then 'vagrant rsync && vagrant provision'"
		tmp=$(mktemp -d)
		log "building ovlmgr in the VM with $gobin"
		(cd "$SRC" && "$gobin" build -o "$tmp/ovlmgr" ./cli && "$gobin" build -o "$tmp/ovlmgr-cni" ./cni-plugin) ||
			die "building ovlmgr in the VM failed (above); build on the host instead: make build"
		from=$tmp
	fi
	install_file "$from/ovlmgr" "$BIN_DIR/ovlmgr"
	install_file "$from/ovlmgr-cni" "$CNI_BIN_DIR/ovlmgr-cni"
	install_file "$SRC/vagrant/ovlmgr-demo.sh" "$BIN_DIR/ovlmgr-demo"
	[[ -z ${tmp:-} ]] || rm -rf "$tmp"
	"$BIN_DIR/ovlmgr" --help >/dev/null 2>&1 ||
		die "$BIN_DIR/ovlmgr does not run in the VM (built for another system or a newer glibc?):" \
			"build a static Linux binary on the host: CGO_ENABLED=0 GOOS=linux GOARCH=amd64 make build"
}

step_install() {
	need OVLMGR_ROLE
	local pkgs=(openvswitch-switch ovn-host) missing=() p
	[[ $OVLMGR_ROLE != central ]] || pkgs+=(ovn-central)
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
			die "could not install ${missing[*]}: the VM needs Debian's packages, from a mirror (OVLMGR_MGMT_MODE=nat)" \
				"or preinstalled in the box (README: boxes for machines without network)"
	fi
	# The VM lab runs OVS's kernel datapath: the stock Debian kernel has both modules.
	modprobe openvswitch || die "kernel $(uname -r) has no openvswitch module: use a box with Debian's linux-image-amd64"
	modprobe geneve || die "kernel $(uname -r) has no geneve module: use a box with Debian's linux-image-amd64"
	systemctl enable --now openvswitch-switch >/dev/null 2>&1 || die "openvswitch-switch does not start: journalctl -u ovs-vswitchd"
	install_binaries
	log "OVS $(ovs-vswitchd --version | awk 'NR == 1 { print $NF }'), OVN $(ovn-controller --version | awk 'NR == 1 { print $NF }'), ovlmgr installed"
}

# set_connection CTL WANT: makes WANT the only remote of the database CTL (ovn-nbctl/ovn-sbctl) manages.
set_connection() {
	if [[ $("$1" --timeout=10 get-connection) != "$2" ]]; then
		"$1" --timeout=10 set-connection "$2"
		log "$1 set-connection $2"
	fi
}

step_central() {
	need OVLMGR_CENTRAL_IP
	systemctl enable --now ovn-central >/dev/null 2>&1 || die "ovn-central does not start: journalctl -u ovn-northd -u ovn-ovsdb-server-nb"
	wait_for "the NB database" ovn-nbctl --timeout=5 show || die "NB ovsdb-server not answering: /var/log/ovn/ovsdb-server-nb.log"
	wait_for "the SB database" ovn-sbctl --timeout=5 show || die "SB ovsdb-server not answering: /var/log/ovn/ovsdb-server-sb.log"
	# Listen on the private network only, never on the NAT/management NIC.
	set_connection ovn-nbctl "ptcp:$NB_PORT:$OVLMGR_CENTRAL_IP"
	set_connection ovn-sbctl "ptcp:$SB_PORT:$OVLMGR_CENTRAL_IP"
	wait_for "NB on $(nb)" ovn-nbctl --db="$(nb)" --timeout=5 show || die "NB does not answer on $(nb)"
	wait_for "SB on $(sb)" ovn-sbctl --db="$(sb)" --timeout=5 show || die "SB does not answer on $(sb)"
	log "NB $(nb), SB $(sb), ovn-northd running"
}

step_join() {
	need OVLMGR_NODE OVLMGR_SYSTEM_ID OVLMGR_ENCAP_IP OVLMGR_CENTRAL_IP
	local nic have old other
	# Every check comes before anything is written.
	nic=$(underlay_nic)
	have=$(nic_mtu "$nic")
	[[ $have == "${OVLMGR_MTU:-$have}" ]] || die "MTU of $nic is $have, not OVLMGR_MTU=$OVLMGR_MTU: run vagrant provision --provision-with mtu"
	[[ $OVLMGR_SYSTEM_ID =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] ||
		die "system-id '$OVLMGR_SYSTEM_ID' is not allowed: letters, digits, _ . - (starting with a letter or digit)"

	wait_for "the central node's SB database at $(sb)" sbctl show ||
		die "the SB database at $(sb) does not answer: is the central node up and provisioned? (vagrant up central)"

	other=$(sbctl --bare --columns=hostname find Chassis name="$OVLMGR_SYSTEM_ID")
	[[ -z $other || $other == "$OVLMGR_NODE" ]] ||
		die "system-id $OVLMGR_SYSTEM_ID is already the chassis of host '$other': every VM needs its own system-id" \
			"(a cloned box? see README troubleshooting); remove the stale one with: ovn-sbctl chassis-del $OVLMGR_SYSTEM_ID"
	other=$(sbctl --bare --columns=chassis_name find Encap ip="$OVLMGR_ENCAP_IP")
	[[ -z $other || $other == "$OVLMGR_SYSTEM_ID" ]] ||
		die "encap IP $OVLMGR_ENCAP_IP is already used by chassis '$other': two VMs with one private address?" \
			"(remove a stale one with: ovn-sbctl chassis-del $other)"

	# A box built with OVS started carries one system-id in system-id.conf, and every clone has the same: OVS's service
	# re-applies that file on each start, so our id goes there too.
	old=$(cat "$SYSTEM_ID_CONF" 2>/dev/null || true)
	if [[ $old != "$OVLMGR_SYSTEM_ID" ]]; then
		[[ -z $old ]] || log "replacing the OVS system-id $old from the box image (every clone has it) with $OVLMGR_SYSTEM_ID"
		printf '%s\n' "$OVLMGR_SYSTEM_ID" | write_file "$SYSTEM_ID_CONF" || true
	fi
	# Before the first join ovn-controller (started by the package) must not register a half-configured chassis.
	if [[ -z $(ovs-vsctl --timeout=10 --if-exists get Open_vSwitch . external_ids:ovn-remote) ]]; then
		systemctl stop ovn-controller
	fi
	# A gateway node (OVLMGR_EXTERNAL_MAC set) gets the external network: that NIC, without an address, in br-ex.
	local ext=()
	if [[ -n ${OVLMGR_EXTERNAL_MAC:-} ]]; then
		local xnic
		xnic=$(nic_of_mac "$OVLMGR_EXTERNAL_MAC")
		[[ -n $xnic ]] || die "no interface with MAC $OVLMGR_EXTERNAL_MAC (the external network NIC): ip -br link"
		ip link set "$xnic" up
		ext=(--external-iface "$xnic")
		log "external network on $xnic ($OVLMGR_EXTERNAL_MAC): br-ex, ovn-bridge-mappings external:br-ex"
	fi
	ovlmgr node join --sb "$(sb)" --nb "$(nb)" --encap-ip "$OVLMGR_ENCAP_IP" --system-id "$OVLMGR_SYSTEM_ID" \
		--hostname "$OVLMGR_NODE" --datapath system "${ext[@]}" || die "ovlmgr node join failed (above)"
	# For ovlmgr-demo and users on this node: where NB is.
	printf 'OVLMGR_NB=%s\nOVLMGR_SB=%s\n' "$(nb)" "$(sb)" | write_file "$LAB_ENV" || true
	systemctl enable ovn-host >/dev/null 2>&1
	systemctl start ovn-host ovn-controller || die "ovn-controller does not start: /var/log/ovn/ovn-controller.log"

	wait_for "chassis $OVLMGR_SYSTEM_ID in SB" chassis_ok "$OVLMGR_SYSTEM_ID" "$OVLMGR_ENCAP_IP" "$OVLMGR_NODE" ||
		die "chassis $OVLMGR_SYSTEM_ID ($OVLMGR_NODE, encap $OVLMGR_ENCAP_IP) is not in SB $(sb):" \
			"$(sbctl --format=csv --no-headings --columns=name,hostname list Chassis | tr '\n' ' ')-- see /var/log/ovn/ovn-controller.log"
	log "joined: chassis $OVLMGR_SYSTEM_ID, encap geneve $OVLMGR_ENCAP_IP on $nic, SB $(sb), kernel datapath"
}

step_cni() {
	need OVLMGR_CENTRAL_IP
	export OVLMGR_NB
	OVLMGR_NB=$(nb)
	wait_for "network $DEMO_NET in NB $(nb)" ovlmgr net show "$DEMO_NET" ||
		die "network $DEMO_NET is not in NB $(nb): provision the central node first (vagrant provision central)"
	mkdir -p "$CNI_CONF_DIR" "$CNI_BIN_DIR"
	ovlmgr cni config "$DEMO_NET" --out "$CNI_CONF_DIR" || die "ovlmgr cni config $DEMO_NET failed (above)"
	compgen -G "$CNI_CONF_DIR/*$DEMO_NET*" >/dev/null || die "ovlmgr cni config wrote no file for $DEMO_NET in $CNI_CONF_DIR"
	log "CNI: $(compgen -G "$CNI_CONF_DIR/*$DEMO_NET*" | tr '\n' ' ')and $CNI_BIN_DIR/ovlmgr-cni"
	# The node's CNI server: the plugin a runtime starts hands ADD and DEL to it over
	# /var/run/openvswitch/ovlmgr-cni.sock (docs/cni.md); without it the plugin does them itself.
	if write_file "$CNI_UNIT" <<EOF; then
[Unit]
Description=ovlmgr node CNI server (ovlmgr-cni serve)
After=openvswitch-switch.service ovn-controller.service
Wants=openvswitch-switch.service

[Service]
ExecStart=/opt/cni/bin/ovlmgr-cni serve --pidfile /run/ovlmgr-cni.pid
PIDFile=/run/ovlmgr-cni.pid
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
EOF
		systemctl daemon-reload
	fi
	systemctl enable ovlmgr-cni.service >/dev/null 2>&1 || true
	# A restart also picks up a new binary; verbs in flight finish first, and the plugin does a verb itself while no
	# server listens.
	systemctl restart ovlmgr-cni.service || die "ovlmgr-cni serve does not start: journalctl -u ovlmgr-cni"
	log "CNI server: ovlmgr-cni serve (systemd unit ovlmgr-cni; journalctl -u ovlmgr-cni)"
}

# chassis_names: the system-ids of every VM (OVLMGR_CHASSIS is "ID=IP ID=IP ...").
chassis_names() {
	local entries=() e
	read -r -a entries <<<"$OVLMGR_CHASSIS"
	for e in "${entries[@]}"; do printf '%s\n' "${e%%=*}"; done
}

# print_try: the commands to try, run from vagrant/ on the host.
print_try() {
	local names=() a b
	mapfile -t names < <(chassis_names)
	a=${names[1]:-${names[0]}}
	b=${names[2]:-$a}
	cat <<EOF
================================================================================
ovlmgr lab: ${#names[@]} OVN chassis (${names[*]}), NB $(nb), SB $(sb)
demo network "$DEMO_NET" $OVLMGR_DEMO_SUBNET, container MTU $((OVLMGR_MTU - 58)) (underlay $OVLMGR_MTU - 58 for Geneve)
Try, from vagrant/ on the host:
  vagrant ssh central -c 'sudo ovlmgr net list'
  vagrant ssh central -c 'sudo ovlmgr node list'    # chassis, Geneve encaps, connected
  vagrant ssh central -c 'sudo ovn-sbctl show'
  vagrant ssh $a -c 'sudo ovlmgr-demo add c1'   # a container (netns) on $DEMO_NET, wired by ovlmgr-cni
  vagrant ssh $b -c 'sudo ovlmgr-demo add c2'
  vagrant ssh $a -c 'sudo ovlmgr-demo ping c1 c2'   # c1 -> c2's address, over Geneve
  vagrant ssh $a -c 'sudo ovlmgr-demo del c1'; vagrant ssh $b -c 'sudo ovlmgr-demo del c2'
================================================================================
EOF
}

step_demo() {
	need OVLMGR_DEMO_SUBNET OVLMGR_CHASSIS OVLMGR_MTU OVLMGR_CENTRAL_IP
	export OVLMGR_NB
	OVLMGR_NB=$(nb)
	if ! ovlmgr net show "$DEMO_NET" >/dev/null 2>&1; then
		ovlmgr net create "$DEMO_NET" --subnet "$OVLMGR_DEMO_SUBNET" || die "ovlmgr net create $DEMO_NET failed (above)"
	fi
	step_cni
	ovlmgr net list || true
	print_try
}

step_summary() {
	need OVLMGR_CHASSIS OVLMGR_CENTRAL_IP
	local entries=() entry name ip missing=()
	read -r -a entries <<<"$OVLMGR_CHASSIS"
	for entry in "${entries[@]}"; do
		name=${entry%%=*}
		ip=${entry#*=}
		# system-id = hostname in this lab (settings.rb)
		wait_for "chassis $name" chassis_ok "$name" "$ip" "$name" || missing+=("$name")
	done
	OVLMGR_SB=$(sb) ovlmgr node list || sbctl show || true
	((${#missing[@]} == 0)) || die "chassis not registered: ${missing[*]} (vagrant up ${missing[*]}; then vagrant provision)"
	print_try
}

# step_ipsec: this chassis' certificate for OVS IPsec. IPSEC_DIR must hold SYSTEM_ID.pem (from the node CA of
# `ovlmgr pki`, CN and a DNS name = the chassis name: strongSwan matches the peer's identity against the certificate's
# subjectAltName), SYSTEM_ID-key.pem and node-ca.pem (the CA every chassis certificate chains to). The paths go into
# Open_vSwitch other_config (certificate, private_key, ca_cert), where ovs-monitor-ipsec reads them; then
# openvswitch-ipsec (ovs-monitor-ipsec, which runs strongSwan) starts. Encryption itself is `ovlmgr encrypt on`.
step_ipsec() {
	need OVLMGR_SYSTEM_ID
	local id=$OVLMGR_SYSTEM_ID cert key ca cn f
	cert=$IPSEC_DIR/$id.pem key=$IPSEC_DIR/$id-key.pem ca=$IPSEC_DIR/node-ca.pem
	for f in "$cert" "$key" "$ca"; do
		[[ -s $f ]] || die "$f is missing: issue the chassis certificate on the PKI's machine" \
			"(ovlmgr pki issue --role node --name $id --out DIR), then upload DIR/$id.pem, DIR/$id-key.pem" \
			"and the PKI's node-ca.pem to $IPSEC_DIR (vagrant upload)"
	done
	cn=$(openssl x509 -noout -subject -nameopt RFC2253 -in "$cert" | sed -n 's/^subject=CN=\([^,]*\).*/\1/p')
	[[ $cn == "$id" ]] || die "$cert has common name '$cn', not the chassis name $id: ovs-monitor-ipsec names this node by it"
	openssl x509 -noout -ext subjectAltName -in "$cert" 2>/dev/null | grep -qF "DNS:$id" ||
		die "$cert has no DNS name $id: strongSwan matches the peer's identity (its chassis name) against the" \
			"subjectAltName; issue it again (ovlmgr pki issue --role node adds it)"
	openssl verify -CAfile "$ca" "$cert" >/dev/null || die "$cert is not signed by $ca (the node CA)"
	dpkg-query -W -f='${Status}' openvswitch-ipsec 2>/dev/null | grep -q "install ok installed" ||
		die "openvswitch-ipsec is not installed: use the local box (make vagrant-box, OVLMGR_BOX=local) or apt-get install openvswitch-ipsec strongswan libstrongswan-standard-plugins"
	chmod 0600 "$key"
	# ovs-monitor-ipsec writes '%any IP : RSA KEY' into ipsec.secrets, and strongSwan loads no ECDSA key (the node
	# certificates of ovlmgr pki) under RSA: strongSwan reads our secrets file instead, which loads the key as ECDSA and
	# includes ovs-monitor-ipsec's (its pre-shared keys, if any).
	printf ': ECDSA %s\ninclude /etc/ipsec.secrets\n' "$key" | write_file "$IPSEC_DIR/ipsec.secrets" || true
	printf 'charon {\n  plugins {\n    stroke {\n      secrets_file = %s\n    }\n  }\n}\n' "$IPSEC_DIR/ipsec.secrets" |
		write_file "$STRONGSWAN_CONF" || true
	# The node CA also where strongSwan loads its trusted CAs at start: the 'ca' section ovs-monitor-ipsec writes (no
	# auto=add) leaves it unloaded, and then no peer certificate is trusted (no trusted ECDSA public key, AUTH_FAILED).
	install -D -m 0644 "$ca" "$IPSEC_CACERTS/ovlmgr-node-ca.pem"
	ovs-vsctl --timeout=10 set Open_vSwitch . other_config:certificate="$cert" other_config:private_key="$key" \
		other_config:ca_cert="$ca"
	systemctl enable openvswitch-ipsec >/dev/null 2>&1 || true
	systemctl restart openvswitch-ipsec || die "openvswitch-ipsec does not start: journalctl -u openvswitch-ipsec; /var/log/openvswitch/ovs-monitor-ipsec.log"
	wait_for "ovs-monitor-ipsec" ovs-appctl -t ovs-monitor-ipsec tunnels/show ||
		die "ovs-monitor-ipsec does not answer: /var/log/openvswitch/ovs-monitor-ipsec.log"
	log "IPsec ready: certificate $cert (CN $id, node CA $ca), ovs-monitor-ipsec with strongSwan; encrypt with: ovlmgr encrypt on"
}

case $STEP in
mtu | install | central | join | cni | demo | summary | ipsec)
	[[ $(id -u) == 0 ]] || die "must run as root (Vagrant's shell provisioner does)"
	"step_$STEP"
	;;
*)
	die "unknown step '$STEP': mtu, install, central, join, cni, demo, summary or ipsec"
	;;
esac
