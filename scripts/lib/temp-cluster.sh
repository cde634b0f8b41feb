# Sourced by scripts: start_temp_cluster BIN sets TEMP_CLUSTER_URL to a throwaway PostgreSQL
# run by `BIN temp-cluster` in the background; it is stopped and removed when the calling
# shell exits (the EXIT trap closes its stdin; its own watchdog covers a killed shell).
start_temp_cluster() {
  local bin=$1
  _tc_state=$(mktemp -d)
  mkfifo "$_tc_state/stdin"
  "$bin" temp-cluster <"$_tc_state/stdin" >"$_tc_state/url" 2>"$_tc_state/log" &
  _tc_pid=$!
  exec 3>"$_tc_state/stdin" # the cluster lives until this descriptor closes
  trap stop_temp_cluster EXIT
  for _ in $(seq 1 600); do
    [ -s "$_tc_state/url" ] && break
    if ! kill -0 "$_tc_pid" 2>/dev/null; then
      cat "$_tc_state/log" >&2
      return 1
    fi
    sleep 0.1
  done
  TEMP_CLUSTER_URL=$(head -n 1 "$_tc_state/url")
  if [ -z "$TEMP_CLUSTER_URL" ]; then
    echo "temp-cluster printed no URL" >&2
    cat "$_tc_state/log" >&2
    return 1
  fi
}

stop_temp_cluster() {
  exec 3>&-
  wait "$_tc_pid" 2>/dev/null || true
  rm -rf "$_tc_state"
}
