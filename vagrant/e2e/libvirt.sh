#!/usr/bin/env bash
# libvirt for the VM lab on machines without systemd: starts virtlogd and libvirtd by hand with pidfiles, and stops
# exactly those processes by PID. Run as root.
#   libvirt.sh start    install the packages if missing, prepare qemu.conf, start the daemons unless libvirtd answers
#   libvirt.sh stop     stop the daemons this script started (no-op for a libvirtd it did not start)
#   libvirt.sh status   which daemons run, and whether this script started them
#   OVLMGR_LIBVIRT_RUN  pidfile directory (default /run/ovlmgr-libvirt)
set -euo pipefail

RUN=${OVLMGR_LIBVIRT_RUN:-/run/ovlmgr-libvirt}
URI=qemu:///system
PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base iptables qemu-system-x86 qemu-utils)
QEMU_CONF=/etc/libvirt/qemu.conf
MARK="# ovlmgr VM lab (vagrant/e2e/libvirt.sh): guests run as root, no relabelling"
export DEBIAN_FRONTEND=noninteractive

log() { printf 'libvirt: %s\n' "$*"; }
die() {
	printf 'libvirt: ERROR: %s\n' "$*" >&2
	exit 1
}

answers() { virsh -c "$URI" version >/dev/null 2>&1; }

# pid_of NAME: the PID in NAME's pidfile when that process is alive and is NAME.
pid_of() {
	local pid
	pid=$(cat "$RUN/$1.pid" 2>/dev/null || true)
	[[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]] || return 1
	printf '%s\n' "$pid"
}

packages() {
	local p missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]}"
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
		die "could not install ${missing[*]}"
}

# configure: libvirt refuses to start guests unless the libvirt-qemu user exists, even when they run as root; without
# systemd/udev/AppArmor there is nothing to relabel.
configure() {
	getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
	getent passwd libvirt-qemu >/dev/null ||
		useradd --system -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
	grep -qF "$MARK" "$QEMU_CONF" 2>/dev/null && return 0
	if grep -qE '^[[:space:]]*(user|group|dynamic_ownership|security_driver)[[:space:]]*=' "$QEMU_CONF" 2>/dev/null; then
		log "$QEMU_CONF already sets user/group/dynamic_ownership/security_driver: left as it is"
		return 0
	fi
	printf '\n%s\nuser = "root"\ngroup = "root"\ndynamic_ownership = 0\nsecurity_driver = "none"\n' "$MARK" >>"$QEMU_CONF"
	log "$QEMU_CONF: guests as root, security_driver none"
}

start() {
	[[ $(id -u) == 0 ]] || die "must run as root"
	packages
	configure
	if answers; then
		if pid_of libvirtd >/dev/null; then
			log "libvirtd already running (pid $(pid_of libvirtd), started by this script)"
		else
			log "libvirtd already running (not started by this script: it is left alone)"
		fi
		return 0
	fi
	mkdir -p "$RUN" /var/log/libvirt/qemu /var/lib/libvirt /var/cache/libvirt
	if ! pid_of virtlogd >/dev/null; then
		virtlogd --daemon --pid-file "$RUN/virtlogd.pid" || die "virtlogd does not start"
	fi
	libvirtd --daemon --pid-file "$RUN/libvirtd.pid" || die "libvirtd does not start"
	local deadline=$((SECONDS + 30))
	until answers; do
		((SECONDS < deadline)) || die "libvirtd (pid $(pid_of libvirtd || echo '?')) does not answer on $URI after 30 s"
		sleep 0.2
	done
	log "started virtlogd (pid $(pid_of virtlogd)) and libvirtd (pid $(pid_of libvirtd)); pidfiles in $RUN"
}

# stop_one NAME: TERM, then KILL after 20 s, the process of NAME's pidfile.
stop_one() {
	local pid deadline
	if ! pid=$(pid_of "$1"); then
		rm -f "$RUN/$1.pid"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	deadline=$((SECONDS + 20))
	while [[ -e /proc/$pid ]] && ((SECONDS < deadline)); do sleep 0.2; done
	if [[ -e /proc/$pid ]]; then
		log "$1 (pid $pid) still running after 20 s: KILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$RUN/$1.pid"
	log "stopped $1 (pid $pid)"
}

# drop_chains: removes the LIBVIRT_* firewall chains libvirtd made when it started a network, once they are empty
# (libvirtd never removes them).
drop_chains() {
	local tool table chain rule
	for tool in iptables ip6tables; do
		command -v "$tool" >/dev/null || continue
		for table in filter nat mangle; do
			for chain in $("$tool" -w -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^LIBVIRT_/ { print $2 }'); do
				# Not empty: rules of someone else's libvirt; left alone.
				[[ $("$tool" -w -t "$table" -S "$chain" | grep -c '^-A') == 0 ]] || continue
				while read -r rule; do
					read -r -a args <<<"${rule/-A/-D}"
					"$tool" -w -t "$table" "${args[@]}"
				done < <("$tool" -w -t "$table" -S | grep -E "^-A [A-Z]+ -j $chain\$")
				"$tool" -w -t "$table" -X "$chain"
			done
		done
	done
}

stop() {
	local ours=0
	pid_of libvirtd >/dev/null && ours=1
	stop_one libvirtd
	stop_one virtlogd
	((ours == 0)) || drop_chains
	rmdir "$RUN" 2>/dev/null || true
}

status() {
	local d
	for d in libvirtd virtlogd; do
		if pid_of "$d" >/dev/null; then
			log "$d: pid $(pid_of "$d") (started by this script)"
		else
			log "$d: not started by this script"
		fi
	done
	if answers; then log "libvirtd answers on $URI"; else log "nothing answers on $URI"; fi
}

case ${1:-} in
start | stop | status) "$1" ;;
*)
	printf 'usage: %s start|stop|status\n' "$0" >&2
	exit 2
	;;
esac
