# Sourced by the scenario service scripts that start a server in the background.
# ready_when_listening PORT PID [LOG]: print "ready" once 127.0.0.1:PORT accepts connections, then wait for PID.
# Fails when PID exits first (with LOG's last lines on stderr) or when nothing listens within 60 s.
ready_when_listening() {
  local port=$1 pid=$2 log=${3:-}
  for _ in $(seq 600); do
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo ready
      wait "$pid"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      [ -n "$log" ] && tail -20 "$log" >&2
      echo "$(basename "$0"): the server exited before it listened on $port" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "$(basename "$0"): nothing listened on $port within 60 s" >&2
  return 1
}
