#!/usr/bin/env bash
# Installs the RDS global CA bundle, against which the app verifies Aurora's certificate
# (DATABASE_SSLMODE=verify-full, DATABASE_SSLROOTCERT: deploy/ze_infra/compute.py).
# Run by the prebuild hook on every instance and by the release task. The download must
# match the sha256 pinned here, or the deployment stops: what the app trusts changes only
# by a commit. AWS adds CAs to the bundle now and then; to move the pin, fetch the new
# bundle, check its certificates (openssl crl2pkcs7 -nocrl -certfile global-bundle.pem |
# openssl pkcs7 -print_certs -noout), and put its sha256 here.
set -euo pipefail

URL=https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
SHA256=e5bb2084ccf45087bda1c9bffdea0eb15ee67f0b91646106e466714f9de3c7e3
DEST=/opt/ze-rds/global-bundle.pem

if [ -f "$DEST" ] && echo "$SHA256  $DEST" | sha256sum --check --status; then
  exit 0
fi
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
curl --fail --silent --show-error --location --proto '=https' --max-time 60 -o "$tmp" "$URL"
if ! echo "$SHA256  $tmp" | sha256sum --check --status; then
  echo "rds_ca: $URL has sha256 $(sha256sum "$tmp" | cut -c1-64), not the pinned $SHA256" >&2
  exit 1
fi
install -D -m 0644 "$tmp" "$DEST"
