#!/usr/bin/env bash
# End-to-end test of the ovlmgr VM lab on real VMs (make vagrant-e2e): starts libvirt if needed (no systemd), builds or
# reuses the local box, `vagrant up` central + 2 workers, then checks on the VMs that
#   the workers' chassis are in `ovlmgr node list`; a network is created; one container (netns) per worker is attached
#   through ovlmgr-cni; they ping and move 1 MiB over TCP across the VMs; the datapath is OVS's kernel one with a kernel
#   Geneve port that carried the traffic.
# Whatever happens: `vagrant destroy -f`, the lab's libvirt networks and storage pool removed, and the libvirt daemons it
# started stopped by PID. Prints each phase's time; a failure names the phase and shows the failing VM's serial log.
# Run as root from anywhere, after `make build`.
#   OVLMGR_LIBVIRT_DRIVER  kvm or qemu (default: kvm when a KVM guest can start here, else qemu)
#   OVLMGR_E2E_DIR         state directory (default /var/lib/ovlmgr-e2e): Vagrant state, pool, serial logs
#   OVLMGR_E2E_KEEP=1      leave the VMs and libvirt running at the end (to look around); clean up later with
#                          vagrant/e2e/e2e.sh down
# After a failure the logs (vagrant up output, serial consoles) stay in OVLMGR_E2E_DIR; after a pass nothing stays.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VAGRANT_DIR=$(dirname "$HERE")
REPO=$(dirname "$VAGRANT_DIR")
STATE=${OVLMGR_E2E_DIR:-/var/lib/ovlmgr-e2e}
POOL=ovlmgr-e2e
NET=e2e
SUBNET=198.19.20.0/24
WORKERS=(worker1 worker2)
MIB=1048576
TAIL=40

export OVLMGR_BOX=local OVLMGR_WORKERS=${#WORKERS[@]} OVLMGR_MGMT_MODE=none OVLMGR_LIBVIRT_POOL=$POOL
export OVLMGR_SERIAL_DIR=$STATE/serial VAGRANT_DOTFILE_PATH=$STATE/vagrant VAGRANT_DEFAULT_PROVIDER=libvirt
export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_COLOR=1 LC_ALL=C

PHASE=setup VM="" START=$SECONDS STARTED_LIBVIRT=0 TIMES=()
PREFIX="" UNDERLAY="" # from settings.rb: the underlay prefix and its libvirt network
EXT="" EXTNET=""      # from settings.rb: the external network's prefix (host side .1 = the outside) and libvirt network

log() { printf 'vagrant-e2e: %s\n' "$*"; }
fail() {
	printf 'vagrant-e2e: %s\n' "$*" >&2
	return 1
}

# phase NAME FUNC: runs FUNC as phase NAME and records its time.
phase() {
	local t0=$SECONDS
	PHASE=$1 VM=""
	log "--- $1"
	"$2"
	TIMES+=("$1=$((SECONDS - t0))")
	log "--- $1: $((SECONDS - t0)) s"
}

# on VM CMD...: runs CMD as root on VM over SSH (vagrant ssh-config); VM becomes the one a failure is blamed on (callers
# that capture the output, in a subshell, set VM themselves).
on() {
	local vm=$1
	shift
	VM=$vm
	ssh -F "$STATE/ssh-config" -o LogLevel=ERROR -o ConnectTimeout=30 "$vm" -- sudo "$(printf '%q ' "$@")"
}

vagrant_lab() { (cd "$VAGRANT_DIR" && vagrant "$@"); }

# --- phases ---------------------------------------------------------------------------------------------------------

ph_libvirt() {
	if ! virsh -c qemu:///system version >/dev/null 2>&1; then STARTED_LIBVIRT=1; fi
	"$HERE/libvirt.sh" start
	if [[ -z ${OVLMGR_LIBVIRT_DRIVER:-} ]]; then
		# The Vagrantfile's own check (settings.rb): no usable /dev/kvm, or a KVM guest that aborts at once.
		local why
		why=$(ruby -r "$VAGRANT_DIR/settings.rb" -e 'print OvlmgrLab.kvm_problem.to_s')
		OVLMGR_LIBVIRT_DRIVER=kvm
		if [[ -n $why ]]; then
			OVLMGR_LIBVIRT_DRIVER=qemu
			log "$why: software emulation (OVLMGR_LIBVIRT_DRIVER=qemu)"
		fi
	fi
	export OVLMGR_LIBVIRT_DRIVER
	local d
	for d in central "${WORKERS[@]}"; do
		if virsh -q domstate "vagrant_$d" >/dev/null 2>&1 && [[ ! -d $STATE/vagrant/machines/$d ]]; then
			fail "libvirt domain vagrant_$d exists and is not this test's (a lab from vagrant/ is up?): vagrant destroy it first"
		fi
	done
	mkdir -p "$STATE/pool" "$OVLMGR_SERIAL_DIR"
	if ! virsh -q pool-info "$POOL" >/dev/null 2>&1; then
		virsh -q pool-define-as "$POOL" dir --target "$STATE/pool" >/dev/null
		virsh -q pool-start "$POOL" >/dev/null
	fi
	log "libvirt driver $OVLMGR_LIBVIRT_DRIVER, storage pool $POOL in $STATE/pool"
}

ph_box() {
	"$VAGRANT_DIR/box/build.sh"
	[[ -x $REPO/bin/ovlmgr && -x $REPO/bin/ovlmgr-cni ]] || fail "no bin/ovlmgr or bin/ovlmgr-cni: run make build first"
}

ph_up() {
	local rc=0
	# (without the box upload's progress meter)
	vagrant_lab up --provider libvirt 2>&1 | sed -u -E 's/(\x1b\[K)?Progress: [0-9]+%//g; s/\x1b\[K//g' |
		tee "$STATE/up.log" || rc=$?
	((rc == 0)) || {
		# The machine whose provisioning or boot failed: the last one Vagrant named in an error line.
		VM=$(grep -oE '^(==> )?(central|worker[0-9]+):' "$STATE/up.log" | tail -n 1 | grep -oE '(central|worker[0-9]+)' || true)
		fail "vagrant up failed (exit $rc); output in $STATE/up.log"
	}
	vagrant_lab ssh-config >"$STATE/ssh-config"
}

ph_chassis() {
	local out w i=1
	VM=central
	out=$(on central ovlmgr node list)
	printf '%s\n' "$out"
	for w in "${WORKERS[@]}"; do
		grep -qwF "$w" <<<"$out" || fail "chassis $w is not in ovlmgr node list"
		grep -qF "$PREFIX.$((10 + i))" <<<"$out" || fail "encap $PREFIX.$((10 + i)) of $w is not in ovlmgr node list"
		i=$((i + 1))
	done
}

ph_network() {
	on central ovlmgr net create "$NET" --subnet "$SUBNET"
	on central ovlmgr net show "$NET"
}

# The containers: c1 on worker1, c2 on worker2, each a netns wired by the real ovlmgr-cni (ovlmgr-demo calls it
# exactly as a runtime does).
C1="" C2=""
ph_attach() {
	on worker1 ovlmgr-demo add c1 "$NET"
	on worker2 ovlmgr-demo add c2 "$NET"
	VM=worker1
	C1=$(on worker1 ovlmgr-demo ip c1)
	VM=worker2
	C2=$(on worker2 ovlmgr-demo ip c2)
	log "c1 (worker1) $C1, c2 (worker2) $C2"
	[[ $C1 != "$C2" && $C1 == 198.19.20.* && $C2 == 198.19.20.* ]] || fail "addresses $C1 and $C2: want two in $SUBNET"
}

ph_ping() {
	on worker1 ovlmgr-demo ping c1 "$C2"
	on worker2 ovlmgr-demo ping c2 "$C1"
}

# 1 MiB of random bytes from c1 (worker1) to c2 (worker2) over one TCP connection (socat, which closes on EOF);
# both ends' SHA-256 must match.
ph_tcp() {
	local sent got size receiver
	on worker2 rm -f /tmp/e2e.recv
	# The receiver runs in the background for the length of one connection.
	on worker2 ip netns exec c2 timeout 120 socat -u TCP-LISTEN:5001,reuseaddr OPEN:/tmp/e2e.recv,creat,trunc &
	receiver=$!
	wait_on worker2 "c2 listening on TCP 5001" ip netns exec c2 ss -Hltn 'sport = :5001' -- 5001
	VM=worker1
	sent=$(on worker1 sh -c "head -c $MIB /dev/urandom >/tmp/e2e.send && sha256sum </tmp/e2e.send")
	on worker1 ip netns exec c1 timeout 120 socat -u OPEN:/tmp/e2e.send "TCP:$C2:5001"
	VM=worker2
	wait "$receiver" || fail "the receiver in c2 (socat) failed"
	size=$(on worker2 stat -c %s /tmp/e2e.recv)
	got=$(on worker2 sh -c "sha256sum </tmp/e2e.recv")
	[[ $size == "$MIB" && $got == "$sent" ]] ||
		fail "c2 received $size bytes with sha256 ${got%% *}; c1 sent $MIB bytes with sha256 ${sent%% *}"
	log "TCP c1 (worker1) -> c2 (worker2) $C2:5001: $size bytes, sha256 ${got:0:16}... on both ends"
}

# Egress: the network goes on router edge with a gateway on worker1 (the VM on the external network); c2 on worker2, not
# a gateway node, connects over TCP to the host's side of the external network ($EXT.1, standing for the outside
# world), which must see the router's external address $EXT.10 (SNAT on the gateway), not c2's own. (The router is not
# named e2e like the network: both ports of the attachment would then be called e2e-e2e.)
ph_egress() {
	local seen listener
	on central ovlmgr router create edge
	on central ovlmgr router attach edge "$NET"
	on central ovlmgr router gateway set edge --external-net "$EXT.0/24" --ip "$EXT.10" --next-hop "$EXT.1" --nodes worker1
	rm -f "$STATE/egress.seen"
	# One connection: the host answers with the client address it sees.
	timeout 120 python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 5002)); s.listen(1)
c, a = s.accept(); c.sendall(a[0].encode()); c.close()
open(sys.argv[2], "w").write(a[0])' "$EXT.1" "$STATE/egress.seen" &
	listener=$!
	wait_on central "the gateway port bound on worker1" ovlmgr router gateway show edge -o json -- '"active": "worker1"'
	local deadline=$((SECONDS + 60))
	VM=worker2
	until seen=$(on worker2 ip netns exec c2 timeout 5 socat -u "TCP:$EXT.1:5002,connect-timeout=2" -) && [[ -n $seen ]]; do
		((SECONDS < deadline)) || fail "c2 (worker2) cannot reach the outside host $EXT.1:5002 through gateway worker1 within 60 s"
		sleep 1
	done
	wait "$listener" || true
	[[ $seen == "$EXT.10" ]] || fail "the outside host saw $seen, want the router's external address $EXT.10 (SNAT)"
	on central ovlmgr router show edge
	log "egress: c2 (worker2) -> outside $EXT.1:5002 seen as $seen (SNAT on gateway worker1)"
}

# wait_on VM WHAT CMD... -- WANT: runs CMD on VM until its output contains WANT (empty: until it succeeds), 30 s.
wait_on() {
	local vm=$1 what=$2 deadline=$((SECONDS + 30)) out
	shift 2
	local cmd=() want
	while [[ $1 != -- ]]; do
		cmd+=("$1")
		shift
	done
	want=$2
	VM=$vm
	until out=$(on "$vm" "${cmd[@]}" 2>&1) && [[ $out == *"$want"* ]]; do
		((SECONDS < deadline)) || fail "timed out after 30 s waiting for $what on $vm: $out"
		sleep 0.5
	done
}

# The kernel datapath: br-int of type system, the kernel's system@ovs-system datapath, its Geneve port a kernel geneve
# device (genev_sys_6081) that sent and received the containers' packets.
ph_datapath() {
	local w out dp tx rx
	for w in "${WORKERS[@]}"; do
		VM=$w
		dp=$(on "$w" ovs-vsctl get Bridge br-int datapath_type)
		[[ $dp == system ]] || fail "br-int on $w has datapath_type $dp, want system (kernel)"
		out=$(on "$w" ovs-dpctl show)
		grep -q '^system@ovs-system:' <<<"$out" || fail "no kernel datapath system@ovs-system on $w: $out"
		grep -q 'genev_sys_6081 (geneve' <<<"$out" || fail "no kernel Geneve port genev_sys_6081 in the datapath on $w: $out"
		tx=$(on "$w" cat /sys/class/net/genev_sys_6081/statistics/tx_packets)
		rx=$(on "$w" cat /sys/class/net/genev_sys_6081/statistics/rx_packets)
		((tx > 0 && rx > 0)) || fail "kernel Geneve device genev_sys_6081 on $w: tx $tx rx $rx packets, want both > 0"
		log "$w: br-int datapath_type $dp, kernel datapath system@ovs-system, genev_sys_6081 tx $tx rx $rx packets"
	done
}

# --- teardown -------------------------------------------------------------------------------------------------------

serial_tail() {
	local f vms=()
	if [[ -n $VM ]]; then vms=("$VM"); else vms=(central "${WORKERS[@]}"); fi
	for f in "${vms[@]}"; do
		[[ -s $OVLMGR_SERIAL_DIR/$f.log ]] || continue
		printf -- '--- last %s lines of the serial console of %s (%s)\n' "$TAIL" "$f" "$OVLMGR_SERIAL_DIR/$f.log" >&2
		tail -n "$TAIL" "$OVLMGR_SERIAL_DIR/$f.log" | tr -d '\r' >&2
	done
}

down() {
	local n v
	if [[ -d $STATE/vagrant ]] && virsh -c qemu:///system version >/dev/null 2>&1; then
		vagrant_lab destroy -f >/dev/null 2>&1 || log "vagrant destroy -f failed"
	fi
	if virsh -c qemu:///system version >/dev/null 2>&1; then
		for v in central "${WORKERS[@]}"; do
			if virsh -q domstate "vagrant_$v" >/dev/null 2>&1; then
				virsh -q destroy "vagrant_$v" >/dev/null 2>&1 || true
				virsh -q undefine "vagrant_$v" --remove-all-storage >/dev/null 2>&1 || true
			fi
		done
		for n in ovlmgr-mgmt ${UNDERLAY:+"$UNDERLAY"} ${EXTNET:+"$EXTNET"}; do
			if virsh -q net-info "$n" >/dev/null 2>&1; then
				virsh -q net-destroy "$n" >/dev/null 2>&1 || true
				virsh -q net-undefine "$n" >/dev/null 2>&1 || true
			fi
		done
		if virsh -q pool-info "$POOL" >/dev/null 2>&1; then
			for v in $(virsh -q vol-list "$POOL" 2>/dev/null | awk '{ print $1 }'); do
				virsh -q vol-delete "$v" --pool "$POOL" >/dev/null 2>&1 || true
			done
			virsh -q pool-destroy "$POOL" >/dev/null 2>&1 || true
			virsh -q pool-undefine "$POOL" >/dev/null 2>&1 || true
		fi
	fi
	if ((STARTED_LIBVIRT)); then "$HERE/libvirt.sh" stop; fi
}

finish() {
	local rc=$? t
	set +e
	trap - EXIT INT TERM
	if ((rc != 0)); then
		printf 'vagrant-e2e: FAILED in phase %s%s after %s s (exit %s)\n' "$PHASE" "${VM:+ on $VM}" "$((SECONDS - START))" "$rc" >&2
		serial_tail
	fi
	if [[ ${OVLMGR_E2E_KEEP:-0} == 1 ]]; then
		log "OVLMGR_E2E_KEEP=1: VMs and libvirt left running; clean up with: vagrant/e2e/e2e.sh down"
	else
		t=$SECONDS
		PHASE=destroy
		down
		TIMES+=("destroy=$((SECONDS - t))")
		if ((rc == 0)); then rm -rf "$STATE"; else log "logs kept in $STATE"; fi
	fi
	log "times (s): ${TIMES[*]} total=$((SECONDS - START))"
	((rc == 0)) && log "PASS: central + ${#WORKERS[@]} workers, ovlmgr-cni across VMs over kernel Geneve, egress through gateway worker1"
	exit "$rc"
}

main() {
	[[ $(id -u) == 0 ]] || fail "must run as root (libvirt, loop devices for the box)"
	read -r PREFIX UNDERLAY EXT EXTNET < <(ruby -r "$VAGRANT_DIR/settings.rb" -e 's = OvlmgrLab.load
		puts "#{s.net_prefix} #{s.underlay_network} #{s.external_prefix} #{s.external_network}"')
	[[ -n $EXTNET ]] || fail "the lab's settings are not valid (above)"
	if [[ ${1:-} == down ]]; then
		STARTED_LIBVIRT=1
		down
		rm -rf "$STATE"
		return
	fi
	[[ -z ${1:-} ]] || fail "usage: $0 [down]"
	trap finish EXIT
	trap 'exit 130' INT TERM
	phase libvirt ph_libvirt
	phase box ph_box
	phase up ph_up
	phase chassis ph_chassis
	phase network ph_network
	phase attach ph_attach
	phase ping ph_ping
	phase tcp ph_tcp
	phase datapath ph_datapath
	phase egress ph_egress
}

main "$@"
