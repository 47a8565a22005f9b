#!/bin/sh
# A CA and a certificate for the NATS server of docker-compose (host name `nats`), into deploy/nats/tls/; the roles
# trust the CA (NATS_TLS_CA). For local use: in Kubernetes the certificate is the Secret `nats-tls` (README
# "Deployment"). Keeps existing files, so running it again changes nothing.
set -eu
dir="$(dirname "$0")/tls"
mkdir -p "$dir"
cd "$dir"
[ -f ca.crt ] && exit 0
curve="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
# shellcheck disable=SC2086 # the curve options are several words on purpose
openssl req -x509 $curve -days 825 -subj "/CN=aicunet-nats-ca" -keyout ca.key -out ca.crt
# shellcheck disable=SC2086
openssl req $curve -subj "/CN=nats" -keyout server.key -out server.csr
printf 'subjectAltName = DNS:nats, DNS:localhost, IP:127.0.0.1\n' > san.cnf
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -extfile san.cnf -out server.crt
rm -f server.csr san.cnf ca.srl
# The nats image runs the server as its own user: the key must be readable to it.
chmod 644 server.key
