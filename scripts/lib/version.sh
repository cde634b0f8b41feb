# Sourced by scripts (POSIX sh): pgpool_version prints the package version of the pgpool crate
# (Cargo.toml, read through cargo), pgpool_abi its major version: the ABI version, which build.rs
# puts in the SONAME (libpgpool.so.<abi>). Run from the repository root.
pgpool_version() {
  _pv_id=$(cargo pkgid --quiet -p pgpool) || return 1
  # path+file:///dir#pgpool@0.1.0, or path+file:///pgpool#0.1.0 when the directory is named pgpool
  printf '%s\n' "${_pv_id##*[#@]}"
}

pgpool_abi() {
  _pa_version=$(pgpool_version) || return 1
  printf '%s\n' "${_pa_version%%.*}"
}
