#!/usr/bin/env bash
# Starts RabbitMQ (Debian 12's rabbitmq-server 3.10.8) with its Web STOMP plugin on
# 127.0.0.1:15674 (path /ws), everything in a scratch folder and bound to loopback, for
# record.sh stomp. Stop it with: samples/gen/app/rabbitmq.sh stop
set -euo pipefail
DIR=/tmp/wsdump-rabbitmq
export RABBITMQ_NODENAME=rabbit@localhost
export RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/enabled_plugins
export RABBITMQ_CONFIG_FILE=$DIR/rabbitmq
export RABBITMQ_MNESIA_BASE=$DIR/mnesia
export RABBITMQ_LOG_BASE=$DIR/log
export RABBITMQ_FEATURE_FLAGS_FILE=$DIR/feature_flags
export RABBITMQ_DIST_PORT=25672
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export HOME=$DIR
if [[ ${1:-} == stop ]]; then rabbitmqctl stop; exit 0; fi
mkdir -p "$DIR"
echo '[rabbitmq_web_stomp].' >"$DIR/enabled_plugins"
cat >"$DIR/rabbitmq.conf" <<'CONF'
listeners.tcp.default = 127.0.0.1:5672
stomp.listeners.tcp.1 = 127.0.0.1:61613
web_stomp.tcp.ip = 127.0.0.1
web_stomp.tcp.port = 15674
web_stomp.ws_frame = binary
loopback_users.guest = true
CONF
chown -R rabbitmq:rabbitmq "$DIR"
rabbitmq-server >"$DIR/server.out" 2>&1 &
for _ in $(seq 120); do
  if ss -ltn | grep -q '127.0.0.1:15674 '; then exit 0; fi
  sleep 0.5
done
echo "RabbitMQ did not start: see $DIR/server.out" >&2
exit 1
