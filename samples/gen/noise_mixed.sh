#!/bin/bash
# Mixed captures: one of the repository's real websocket samples plus a mid-stream noise capture,
# the noise shifted in time (editcap -t) to start 0.2 s after the sample so the two interleave,
# merged by mergecap (always pcapng, mergecap's default).  Run after noise.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); S=$HERE/..; N=$S/noise; T=$(mktemp -d)
first() { capinfos -a -r -T -S "$1" | awk '{print $2}'; }
mix() {  # mix OUT SAMPLE NOISE
  local d; d=$(python3 -c "print(f'{$(first "$2") - $(first "$3") + 0.2:.6f}')")
  editcap -t "$d" "$3" "$T/noise.pcap"
  mergecap -F pcapng -w "$N/$1" "$2" "$T/noise.pcap"
  echo "$1: $(capinfos -c -M -r -T "$N/$1" | awk '{print $2}') packets"
}
mix mixed-workerman-keepalive.pcapng "$S/workerman-chat.pcap" "$N/keepalive-idle-mid.pcap"
mix mixed-deflate-ssh.pcapng "$S/python-deflate.pcap" "$N/ssh-mid.pcap"
mix mixed-late-mqtt.pcapng "$S/cut-workerman-late.pcap" "$N/mqtt-mid.pcap"
mix mixed-deflate-postgres.pcapng "$S/python-deflate.pcap" "$N/postgres-mid.pcap"
rm -rf "$T"
