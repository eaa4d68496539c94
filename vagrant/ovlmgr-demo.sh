#!/usr/bin/env bash
# ovlmgr-demo: "containers" (network namespaces) on an ovlmgr network of the Vagrant lab, wired by the real ovlmgr-cni
# plugin exactly as a container runtime calls it (CNI 1.1.0 on stdin, CNI_* environment). Installed as
# /usr/local/bin/ovlmgr-demo by the lab's provisioning; run as root.
#   ovlmgr-demo add NAME [NET]      create netns NAME, CNI ADD on NET (default demo); prints the CNI result
#   ovlmgr-demo del NAME [NET]      CNI DEL, then delete netns NAME
#   ovlmgr-demo ip NAME             IPv4 address of container NAME (on any node: looked up in NB)
#   ovlmgr-demo ping NAME TARGET    ping TARGET (an address, or another container's name) from NAME
#   ovlmgr-demo exec NAME CMD...    run CMD inside NAME
set -euo pipefail

LAB_ENV=/etc/ovlmgr/lab.env
CNI_BIN=/opt/cni/bin
IFNAME=eth0

die() {
	printf 'ovlmgr-demo: %s\n' "$*" >&2
	exit 1
}
usage() {
	sed -n '5,9s/^#   //p' "$0" >&2
	exit 2
}

if [[ -r $LAB_ENV ]]; then
	# shellcheck source=/dev/null
	. "$LAB_ENV"
fi
NB=${OVLMGR_NB:-unix:/var/run/ovn/ovnnb_db.sock}

check_name() {
	[[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]] ||
		die "container name '$1' is not allowed: letters, digits, _ . - (starting with a letter or digit), at most 63"
}

# cni VERB NAME NET: calls the plugin like a runtime; the container ID is the name.
cni() {
	printf '{"cniVersion":"1.1.0","name":"%s","type":"ovlmgr-cni","network":"%s"}\n' "$3" "$3" |
		CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=/var/run/netns/$2 CNI_IFNAME=$IFNAME CNI_PATH=$CNI_BIN \
			"$CNI_BIN/ovlmgr-cni"
}

has_netns() { [[ -e /var/run/netns/$1 ]]; }

# address NAME: the container's IPv4 address, from its netns when it is here, else from its NB port.
address() {
	local a
	if has_netns "$1"; then
		a=$(ip -n "$1" -4 -o addr show dev "$IFNAME" 2>/dev/null | awk '{ split($4, p, "/"); print p[1]; exit }')
	else
		a=$(ovn-nbctl --db="$NB" --timeout=10 --bare --columns=dynamic_addresses,addresses \
			find Logical_Switch_Port "external_ids:\"ovlmgr.io/container\"=\"$1\"" |
			grep -oE '([0-9]{1,3}\.){3}[0-9]{1,3}' | head -n 1 || true)
	fi
	[[ -n $a ]] || die "no address for container '$1' (not on this node, and no port for it in NB $NB)"
	printf '%s\n' "$a"
}

cmd=${1:-}
[[ -n $cmd ]] || usage
shift
[[ $(id -u) == 0 ]] || die "run as root (sudo ovlmgr-demo ...)"
case $cmd in
add)
	[[ $# -ge 1 && $# -le 2 ]] || usage
	check_name "$1"
	if has_netns "$1" && ip -n "$1" link show dev "$IFNAME" >/dev/null 2>&1; then
		printf '%s is already attached: %s\n' "$1" "$(address "$1")"
		exit 0
	fi
	has_netns "$1" || ip netns add "$1"
	if ! cni ADD "$1" "${2:-demo}"; then
		ip netns del "$1" || true
		die "CNI ADD of $1 on ${2:-demo} failed (above)"
	fi
	printf '\n%s: %s\n' "$1" "$(address "$1")"
	;;
del)
	[[ $# -ge 1 && $# -le 2 ]] || usage
	check_name "$1"
	cni DEL "$1" "${2:-demo}" || die "CNI DEL of $1 failed (above)"
	if has_netns "$1"; then ip netns del "$1"; fi
	;;
ip)
	[[ $# -eq 1 ]] || usage
	address "$1"
	;;
ping)
	[[ $# -eq 2 ]] || usage
	has_netns "$1" || die "no container '$1' on this node"
	target=$2
	[[ $target =~ ^[0-9.]+$ ]] || target=$(address "$2")
	# The first packet to a new tunnel peer may be dropped while ARP resolves: a few tries.
	ip netns exec "$1" ping -c 3 -W 2 "$target"
	;;
exec)
	[[ $# -ge 2 ]] || usage
	has_netns "$1" || die "no container '$1' on this node"
	name=$1
	shift
	exec ip netns exec "$name" "$@"
	;;
*)
	usage
	;;
esac
