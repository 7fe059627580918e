#!/usr/bin/env bash
# Removes orderbook-ingestor. Configuration, secrets, recorded state and logs stay unless --purge.
#   sudo ./scripts/uninstall.sh [--purge]
#   ./scripts/uninstall.sh --root DIR --no-systemctl [--purge]
set -euo pipefail
root=""; use_systemctl=1; purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$2; shift ;;
    --no-systemctl) use_systemctl=0 ;;
    --purge) purge=1 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then echo "uninstall.sh: run as root (or use --root DIR)" >&2; exit 1; fi
if [ "$use_systemctl" = 1 ] && [ -z "$root" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now orderbook-ingestor.service 2>/dev/null || true
fi
rm -f "$root/etc/systemd/system/orderbook-ingestor.service" "$root/usr/local/bin/orderbook-ingestor"
rm -rf "$root/usr/local/share/doc/orderbook-ingestor"
if [ "$use_systemctl" = 1 ] && [ -z "$root" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
if [ "$purge" = 1 ]; then
  rm -rf "$root/etc/orderbook-ingestor" "$root/var/lib/orderbook-ingestor" "$root/var/log/orderbook-ingestor"
  if [ -z "$root" ] && id orderbook-ingestor >/dev/null 2>&1; then userdel orderbook-ingestor; fi
  echo "removed, configuration and data purged"
else
  echo "removed; kept $root/etc/orderbook-ingestor (use --purge to remove configuration, state and logs)"
fi
