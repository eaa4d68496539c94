#!/usr/bin/env bash
# Builds the local Vagrant box of the ovlmgr VM lab (libvirt provider, Debian 12) from Debian packages alone, with OVS,
# OVN (central and host) and the test tools preinstalled, so provisioning needs no network; then adds it to Vagrant as
# ovlmgr-local (what OVLMGR_BOX=local means). Reuses the box when it exists and its inputs (this directory's files,
# mirror, suite) did not change. Run as root:  vagrant/box/build.sh   (make vagrant-box)
#
#   OVLMGR_BOX_CACHE   where the box, its input hash and the .deb cache live (default /var/cache/ovlmgr/vagrant-box)
#   OVLMGR_BOX_MIRROR  Debian mirror (default: the one this machine's apt uses)
#   OVLMGR_BOX_FORCE=1 rebuild even when the inputs did not change
#
# Disk: raw 4 GiB -> one bootable partition -> loop device (partx, no udev needed) -> ext4 without 64bit (extlinux) ->
# debootstrap minbase -> systemd-networkd DHCP on eth0, user vagrant with Vagrant's insecure key -> extlinux -> qcow2.
# Loop devices, mounts and temporary files are removed whatever happens (trap).
set -euo pipefail

BOX_NAME=ovlmgr-local
SUITE=bookworm
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${OVLMGR_BOX_CACHE:-/var/cache/ovlmgr/vagrant-box}
BOX_FILE=$CACHE/$BOX_NAME.box
DISK_GIB=4
# The box: boot + SSH + Vagrant's needs, OVS/OVN for every role, IPsec for encrypted tunnels (ovs-monitor-ipsec and
# strongSwan; the standard plugins bring openssl's ECDSA, which the node certificates of `ovlmgr pki` use), the test
# tools.
PACKAGES=(
	systemd-sysv udev dbus linux-image-amd64 initramfs-tools kmod openssh-server sudo iproute2 iputils-ping netbase procps
	rsync ca-certificates less
	openvswitch-switch ovn-central ovn-host
	openvswitch-ipsec strongswan libstrongswan-standard-plugins openssl
	iperf3 socat tcpdump busybox-static ethtool
)
HOST_TOOLS=(debootstrap:debootstrap qemu-img:qemu-utils extlinux:extlinux sfdisk:fdisk partx:util-linux
	mkfs.ext4:e2fsprogs bsdtar:libarchive-tools)
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

log() { printf 'vagrant-box: %s\n' "$*"; }
die() {
	printf 'vagrant-box: ERROR: %s\n' "$*" >&2
	exit 1
}

# host_tools: installs the host packages this build needs when a tool is missing.
host_tools() {
	local t missing=()
	for t in "${HOST_TOOLS[@]}"; do
		command -v "${t%%:*}" >/dev/null 2>&1 || [[ -x /usr/sbin/${t%%:*} ]] || missing+=("${t#*:}")
	done
	[[ -e /usr/lib/syslinux/mbr/mbr.bin ]] || missing+=(syslinux-common)
	((${#missing[@]} == 0)) && return 0
	log "installing host packages: ${missing[*]}"
	{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
		die "could not install ${missing[*]}"
}

# mirror: OVLMGR_BOX_MIRROR, else the first URI this machine's apt uses for the suite.
mirror() {
	if [[ -n ${OVLMGR_BOX_MIRROR:-} ]]; then
		printf '%s\n' "$OVLMGR_BOX_MIRROR"
		return
	fi
	local m
	m=$(awk -v suite="$SUITE" '
		/^[[:space:]]*$/ { if (uri != "" && hit) { print uri; exit } uri = ""; hit = 0; next }
		/^URIs:/ { uri = $2 }
		/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
		END { if (uri != "" && hit) print uri }' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
	if [[ -z $m && -r /etc/apt/sources.list ]]; then
		m=$(awk -v suite="$SUITE" '$1 == "deb" { for (i = 2; i < NF; i++) if ($(i + 1) == suite && $i !~ /^\[/) { print $i; exit } }' \
			/etc/apt/sources.list)
	fi
	[[ -n $m ]] || die "no Debian mirror for $SUITE in /etc/apt/sources.list(.d): set OVLMGR_BOX_MIRROR"
	printf '%s\n' "$m"
}

vagrant_pub() {
	local k
	k=$(find /usr/share/rubygems-integration /usr/lib/ruby /opt/vagrant -path '*/keys/vagrant.pub' 2>/dev/null | head -n 1)
	[[ -n $k ]] || die "Vagrant's insecure public key (keys/vagrant.pub) not found: apt-get install vagrant"
	printf '%s\n' "$k"
}

# inputs_hash MIRROR PUBKEY: what decides the box's content.
inputs_hash() {
	{
		printf 'suite=%s mirror=%s disk=%s\n' "$SUITE" "$1" "$DISK_GIB"
		cat "$2"
		find "$HERE" -maxdepth 1 -type f -print0 | sort -z | xargs -0 cat
	} | sha256sum | awk '{ print $1 }'
}

vagrant_home() { printf '%s\n' "${VAGRANT_HOME:-$HOME/.vagrant.d}"; }

# --- the build (root, with cleanup) ---------------------------------------------------------------------------------

WORK="" LOOP="" ROOT=""
cleanup() {
	local rc=$?
	set +e
	if [[ -n $ROOT ]]; then
		# Everything under the root (ours, and what a failed debootstrap left), then the root itself.
		if mountpoint -q "$ROOT"; then umount -R "$ROOT" || umount -l "$ROOT"; fi
	fi
	if [[ -n $LOOP ]]; then
		partx -d "$LOOP" 2>/dev/null
		losetup -d "$LOOP"
	fi
	[[ -z $WORK ]] || rm -rf "$WORK"
	((rc == 0)) || log "build failed (exit $rc); loop device, mounts and $WORK removed"
	exit "$rc"
}

in_root() { chroot "$ROOT" "$@"; }

configure_root() {
	local pub=$1 uuid=$2 kver
	printf 'ovlmgr-box\n' >"$ROOT/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tovlmgr-box\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
	printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$uuid" >"$ROOT/etc/fstab"

	# Network: systemd-networkd, DHCP on the first NIC (management network); Vagrant configures the private NIC.
	mkdir -p "$ROOT/etc/systemd/network"
	printf '[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n' >"$ROOT/etc/systemd/network/10-eth0.network"
	in_root systemctl enable systemd-networkd.service >/dev/null 2>&1
	# Nothing waits for a NIC Vagrant has not configured yet.
	in_root systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1
	: >"$ROOT/etc/resolv.conf"

	# Services: OVS runs everywhere; OVN central and host are started by provisioning on the nodes that need them.
	in_root systemctl disable ovn-central.service ovn-northd.service ovn-ovsdb-server-nb.service \
		ovn-ovsdb-server-sb.service ovn-host.service ovn-controller.service >/dev/null 2>&1 || true
	# IPsec: started by provisioning (provision.sh ipsec) once the node has its certificate.
	in_root systemctl disable openvswitch-ipsec.service strongswan-starter.service ipsec.service >/dev/null 2>&1 || true
	# Each VM makes its own OVS database and system-id on first boot (provisioning sets the lab's system-id).
	rm -f "$ROOT"/etc/openvswitch/conf.db "$ROOT"/etc/openvswitch/system-id.conf "$ROOT"/var/lib/openvswitch/conf.db \
		"$ROOT"/var/lib/ovn/*.db "$ROOT"/etc/ovn/*.db
	printf 'openvswitch\ngeneve\n' >"$ROOT/etc/modules-load.d/ovlmgr.conf"

	# User vagrant: Vagrant's insecure key, password-less sudo.
	in_root useradd -m -s /bin/bash vagrant
	printf 'vagrant:vagrant\n' | in_root chpasswd
	install -d -m 0700 "$ROOT/home/vagrant/.ssh"
	install -m 0600 "$pub" "$ROOT/home/vagrant/.ssh/authorized_keys"
	in_root chown -R vagrant:vagrant /home/vagrant/.ssh
	printf 'vagrant ALL=(ALL) NOPASSWD:ALL\nDefaults:vagrant !requiretty\n' >"$ROOT/etc/sudoers.d/vagrant"
	chmod 0440 "$ROOT/etc/sudoers.d/vagrant"
	printf 'UseDNS no\n' >"$ROOT/etc/ssh/sshd_config.d/ovlmgr.conf"
	# The journal on the serial console too: a post-mortem of a VM that fails is its serial log.
	mkdir -p "$ROOT/etc/systemd/journald.conf.d"
	printf '[Journal]\nForwardToConsole=yes\nTTYPath=/dev/ttyS0\nMaxLevelConsole=info\n' \
		>"$ROOT/etc/systemd/journald.conf.d/ovlmgr-console.conf"

	# Every clone gets its own machine-id; no apt sources (guests have no outside network).
	: >"$ROOT/etc/machine-id"
	rm -f "$ROOT/var/lib/dbus/machine-id"
	: >"$ROOT/etc/apt/sources.list"
	rm -f "$ROOT"/etc/apt/sources.list.d/*

	# Boot: virtio and ext4 in the initramfs, extlinux on the partition, syslinux's MBR.
	printf 'virtio_pci\nvirtio_blk\nvirtio_net\nvirtio_scsi\next4\n' >>"$ROOT/etc/initramfs-tools/modules"
	kver=$(find "$ROOT/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n 1)
	[[ -n $kver ]] || die "no kernel in $ROOT/boot (linux-image-amd64 not installed?)"
	in_root update-initramfs -u -k "$kver" >/dev/null
	mkdir -p "$ROOT/boot/extlinux"
	cat >"$ROOT/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
	LINUX /boot/vmlinuz-$kver
	INITRD /boot/initrd.img-$kver
	APPEND root=UUID=$uuid ro net.ifnames=0 biosdevname=0 console=tty0 console=ttyS0,115200 loglevel=4
EOF
	extlinux --install "$ROOT/boot/extlinux" >/dev/null 2>&1 || die "extlinux --install failed"
	dd if=/usr/lib/syslinux/mbr/mbr.bin of="$LOOP" bs=440 count=1 conv=notrunc status=none

	in_root apt-get clean
	rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/log/*.log "$ROOT"/tmp/* "$ROOT"/root/.bash_history
}

build() {
	local mirror=$1 pub=$2 hash=$3 start=$SECONDS part uuid out
	WORK=$(mktemp -d /var/tmp/ovlmgr-box.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	ROOT=$WORK/root
	mkdir -p "$ROOT" "$CACHE/debs"

	truncate -s "${DISK_GIB}G" "$WORK/disk.raw"
	printf 'type=83, bootable\n' | sfdisk -q "$WORK/disk.raw" >/dev/null
	LOOP=$(losetup -f --show -P "$WORK/disk.raw")
	part=${LOOP}p1
	# Without udev, -P alone may not create the partition device.
	[[ -b $part ]] || partx -a "$LOOP" 2>/dev/null || true
	[[ -b $part ]] || die "no partition device $part after losetup -P and partx -a"
	mkfs.ext4 -q -F -O ^64bit -L ovlmgr-root "$part" # extlinux cannot boot ext4 with the 64bit feature
	uuid=$(blkid -s UUID -o value "$part")
	mount "$part" "$ROOT"

	log "debootstrap $SUITE from $mirror (${#PACKAGES[@]} extra packages)"
	if ! debootstrap --variant=minbase --include="$(IFS=,; printf '%s' "${PACKAGES[*]}")" --cache-dir="$CACHE/debs" \
		"$SUITE" "$ROOT" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
		tail -n 30 "$WORK/debootstrap.log" >&2
		tail -n 30 "$ROOT/debootstrap/debootstrap.log" >&2 2>/dev/null || true
		die "debootstrap failed (above)"
	fi
	log "debootstrap done ($((SECONDS - start)) s)"
	mount -t proc proc "$ROOT/proc"
	mount -t sysfs sys "$ROOT/sys"
	mount --bind /dev "$ROOT/dev"
	mount --bind /dev/pts "$ROOT/dev/pts"
	configure_root "$pub" "$uuid"
	for m in dev/pts dev proc sys; do umount "$ROOT/$m"; done
	fstrim "$ROOT" >/dev/null 2>&1 || true # freed blocks become holes: a smaller image
	umount "$ROOT"
	partx -d "$LOOP" 2>/dev/null || true
	losetup -d "$LOOP"
	LOOP=""

	mkdir -p "$WORK/box"
	qemu-img convert -O qcow2 -c "$WORK/disk.raw" "$WORK/box/box.img"
	rm -f "$WORK/disk.raw"
	printf '{"provider":"libvirt","format":"qcow2","virtual_size":%s}\n' "$DISK_GIB" >"$WORK/box/metadata.json"
	printf '%s\n' "$hash" >"$WORK/box/ovlmgr-inputs"
	cat >"$WORK/box/Vagrantfile" <<'EOF'
# ovlmgr-local: Debian 12 with OVS and OVN, built by ovlmgr's vagrant/box/build.sh.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.disk_bus = "virtio"
  end
end
EOF
	out=$BOX_FILE.tmp
	tar -C "$WORK/box" -cf "$out" metadata.json Vagrantfile ovlmgr-inputs box.img
	mv -f "$out" "$BOX_FILE"
	printf '%s\n' "$hash" >"$BOX_FILE.inputs"
	log "built $BOX_FILE in $((SECONDS - start)) s"
}

# add_box HASH: adds the box to Vagrant unless the same inputs are there already.
add_box() {
	local dir
	dir=$(vagrant_home)/boxes/$BOX_NAME/0/libvirt
	if [[ $(cat "$dir/ovlmgr-inputs" 2>/dev/null) == "$1" ]]; then
		log "vagrant box $BOX_NAME is up to date ($dir)"
		return
	fi
	VAGRANT_CHECKPOINT_DISABLE=1 vagrant box add --force --name "$BOX_NAME" "$BOX_FILE" >/dev/null ||
		die "vagrant box add --name $BOX_NAME $BOX_FILE failed"
	log "vagrant box $BOX_NAME added ($dir)"
}

main() {
	[[ $(id -u) == 0 ]] || die "must run as root (loop devices, mounts, debootstrap)"
	command -v vagrant >/dev/null || die "vagrant is not installed: apt-get install vagrant vagrant-libvirt"
	host_tools
	local mirror pub hash
	mirror=$(mirror)
	pub=$(vagrant_pub)
	hash=$(inputs_hash "$mirror" "$pub")
	mkdir -p "$CACHE"
	# One build at a time on this machine (the cache and Vagrant's box are shared).
	exec 9>"$CACHE/.lock"
	flock 9
	if [[ ${OVLMGR_BOX_FORCE:-0} != 1 && -s $BOX_FILE && $(cat "$BOX_FILE.inputs" 2>/dev/null) == "$hash" ]]; then
		log "reusing $BOX_FILE (inputs unchanged)"
	else
		(build "$mirror" "$pub" "$hash")
	fi
	add_box "$hash"
	log "box $BOX_NAME: $BOX_FILE ($(du -m "$BOX_FILE" | awk '{ print $1 }') MiB), inputs sha256 ${hash:0:12}"
}

main "$@"
