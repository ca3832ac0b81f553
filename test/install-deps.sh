#!/usr/bin/env bash
# Installs what building and testing clerk_sync needs, from Debian's packages (as root; with sudo
# otherwise). Installs nothing that is already there.
set -euo pipefail

packages=(
    make g++                       # the build
    postgresql-15                  # the server, pgcrypto (test signing) and pgbench
    postgresql-server-dev-15       # server headers and PGXS
    libcurl4-openssl-dev           # libcurl, OpenSSL flavour (the Clerk API client)
    libssl-dev openssl             # HMAC and base64; openssl(1) signs in test/secrets.sh, makes test/tls.sh's CA
    nlohmann-json3-dev             # JSON
)
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Debian's postgresql-common would create and start a "main" cluster on port 5432; we use only
# throwaway clusters, so skip that.
$sudo mkdir -p /etc/postgresql-common/createcluster.d
echo 'create_main_cluster = false' | $sudo tee /etc/postgresql-common/createcluster.d/clerk_sync.conf >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
