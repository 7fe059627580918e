#!/usr/bin/env bash
# Installs orderbook-ingestor as a systemd service. Idempotent: run it again to upgrade the binary;
# existing configuration and secrets are never overwritten.
#   sudo ./scripts/install.sh                      # build, install, create the user, enable the unit
#   sudo ./scripts/install.sh --binary PATH        # install an already built single file
#   ./scripts/install.sh --root DIR --no-systemctl # stage into DIR (packaging, tests)
# Then put ORDERBOOK_DATABASE=... in /etc/orderbook-ingestor/environment and: systemctl start orderbook-ingestor
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=""; binary=""; use_systemctl=1; migrate=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$2; shift ;;
    --binary) binary=$2; shift ;;
    --no-systemctl) use_systemctl=0 ;;
    --no-migrate) migrate=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then echo "install.sh: run as root (or use --root DIR to stage)" >&2; exit 1; fi
if [ -z "$binary" ]; then
  # shellcheck source=lib/build.sh
  . "$repo/scripts/lib/build.sh"
  obi_publish "$repo"; binary=$OBI_BIN
fi
[ -x "$binary" ] || { echo "install.sh: $binary is not an executable" >&2; exit 1; }

user=orderbook-ingestor
etc="$root/etc/orderbook-ingestor"
unit="$root/etc/systemd/system/orderbook-ingestor.service"
if [ -z "$root" ] && ! id "$user" >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/orderbook-ingestor --no-create-home --shell /usr/sbin/nologin "$user"
  echo "created system user $user"
fi

install -D -m 0755 "$binary" "$root/usr/local/bin/orderbook-ingestor"
install -D -m 0644 "$repo/README.md" "$root/usr/local/share/doc/orderbook-ingestor/README.md"
install -D -m 0644 "$repo/systemd/orderbook-ingestor.service" "$unit"
install -d -m 0755 "$etc"
# The shipped defaults, always current, for reference; the live file is only created once.
install -m 0644 "$repo/appsettings.json" "$etc/appsettings.json.dist"
[ -e "$etc/appsettings.json" ] || install -m 0644 "$repo/appsettings.json" "$etc/appsettings.json"
if [ ! -e "$etc/environment" ]; then
  umask 027
  cat >"$etc/environment" <<'EOF2'
# Secrets for orderbook-ingestor, read by systemd (EnvironmentFile=). Readable by root and the service only.
# ORDERBOOK_DATABASE=postgresql://writer:password@db.example:5432/marketdata?sslmode=verify-full&sslrootcert=/etc/orderbook-ingestor/ca.pem
EOF2
  chmod 0640 "$etc/environment"
  [ -z "$root" ] && chgrp "$user" "$etc/environment"
fi

if [ "$use_systemctl" = 1 ] && [ -z "$root" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable orderbook-ingestor.service
  echo "unit installed and enabled"
else
  echo "systemctl skipped (staging root, --no-systemctl, or systemd not running)"
fi

if [ "$migrate" = 1 ] && [ -z "$root" ]; then
  db=$(grep -E '^ORDERBOOK_DATABASE=' "$etc/environment" | tail -n 1 | cut -d= -f2- || true)
  if [ -n "$db" ]; then
    ORDERBOOK_DATABASE=$db runuser -u "$user" -- /usr/local/bin/orderbook-ingestor migrate
  else
    echo "no ORDERBOOK_DATABASE in $etc/environment yet: set it, then run: orderbook-ingestor migrate (or just start the service)"
  fi
fi
echo "installed: $root/usr/local/bin/orderbook-ingestor, $unit, $etc/"
