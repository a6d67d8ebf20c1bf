#!/usr/bin/env bash
# Cross-check every sample capture against its ground truth with tshark.
# Expected: everything agrees except sll2-any c2s message #4 (a compressed
# fragmented message, which tshark 4.0 reassembles but does not inflate).
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
c() { python3 gen/tshark_check.py "$@" || rc=1; }
c workerman-chat.pcap 7272
c python-deflate.pcap 9001
c node-fragmented.pcap 9002
c ipv6.pcap 9003
c sll2-any.pcap 9004
c dumpcap-multi.pcapng 9005
c dumpcap-multi.pcapng 9005 --interface 0
c dumpcap-multi.pcapng 9005 --interface 1
c nanosecond.pcap 9006
c tls-wss.pcap 9007
c tls-wss.pcap 9007 --keylog tls-wss.keylog --truth tls-wss.decrypted.jsonl
exit $rc
