#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks to build, test, demo and benchmark pgpool:
# the PostgreSQL server (initdb, pg_ctl, pgbench, and pg_basebackup for the standby tests),
# libpq's development files (the libpq comparison tests), C and C++ compilers (gcc, and clang
# for the C++ wrapper's test), pkg-config (the install test), Go (for the Go module), valgrind,
# Chromium (the CLI's status-page test loads the page headless) and PgBouncer (tests/pgbouncer.rs runs throwaway ones; the Debian
# package's own service on port 6432 is never used). As root it
# runs apt-get; otherwise it prints the exact command.
# Idempotent: does nothing when everything is present.
set -euo pipefail

have_pg_server() {
  command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

have_libpq_dev() {
  command -v pg_config >/dev/null 2>&1 || return 1
  [ -f "$(pg_config --includedir)/libpq-fe.h" ]
}

missing=()
have_pg_server || missing+=(postgresql postgresql-contrib)
have_libpq_dev || missing+=(libpq-dev)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v go >/dev/null 2>&1 || missing+=(golang-go)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
# The install test builds C programs with pkg-config; the C++ wrapper's test also builds with clang.
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v clang++ >/dev/null 2>&1 || missing+=(clang)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
# The network-cut tests put a server in a network namespace behind a veth link.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# `pgpool metrics` serves a status page; its test renders it in headless Chromium.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# tests/pgbouncer.rs puts pgpool behind throwaway PgBouncers (Debian installs it in /usr/sbin).
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: missing ${missing[*]}; install them with:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi
