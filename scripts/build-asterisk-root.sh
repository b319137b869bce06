#!/usr/bin/env bash
# Build the Asterisk 22 root from Debian sid (Asterisk 22 is not in Debian 12/13), once; later runs reuse it.
# Usage: scripts/build-asterisk-root.sh [ROOT]   (default /var/cache/hotline-gateway/asterisk-root)
set -euo pipefail
root=${1:-/var/cache/hotline-gateway/asterisk-root}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ -x "$root/usr/sbin/asterisk" ]; then
  echo "asterisk root: $root (cached)"
  exit 0
fi
command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q debootstrap; }
tmp="$root.partial"
# a partial root from an interrupted run may still have /proc or /dev mounted
for m in proc dev; do mountpoint -q "$tmp/$m" 2>/dev/null && umount -l "$tmp/$m"; done
rm -rf --one-file-system "$tmp"
mkdir -p "$(dirname "$root")"
echo "asterisk root: debootstrapping Debian sid with asterisk into $root (about a minute)"
debootstrap --variant=minbase --include=asterisk,asterisk-modules sid "$tmp" "$mirror"
rm -f "$tmp"/var/cache/apt/archives/*.deb
printf '127.0.0.1 localhost\n::1 localhost\n' > "$tmp/etc/hosts"
mv "$tmp" "$root"
"$root/usr/sbin/asterisk" -V 2>/dev/null || chroot "$root" /usr/sbin/asterisk -V
