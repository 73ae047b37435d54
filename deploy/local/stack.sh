#!/usr/bin/env bash
# The local stack for `just demo`: nats-server (JetStream), PostgreSQL, an SMTP sink with
# a web inbox (maildev; aiosmtpd's Maildir when npm is missing), the telephony simulator
# (`arflow telephony-sim`: Twilio's REST contract, scripted clients by the number's last digit)
# and every arflow service (one `arflow serve all` process). State lives in .demo/ and is wiped
# on each start.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
demo="$root/.demo"
bin="${CARGO_TARGET_DIR:-$HOME/.cache/arflow-target}/debug/arflow"
export PATH="$root/.tools/venv/bin:$PATH"
NATS_PORT="${ARFLOW_DEMO_NATS_PORT:-14222}"
SMTP_PORT="${ARFLOW_DEMO_SMTP_PORT:-1025}"
MAIL_WEB_PORT="${ARFLOW_DEMO_MAIL_WEB_PORT:-1080}"
PG_PORT="${ARFLOW_DEMO_PG_PORT:-15432}"
TELEPHONY_PORT="${ARFLOW_DEMO_TELEPHONY_PORT:-18087}"
# The gateway's public base URL (its default `gateway.public_base_url`): the telephony
# simulator posts every callback there, signed over this exact URL.
GATEWAY_URL=http://127.0.0.1:8080
DEMO_DB=arflow_demo

wait_port() { # host port what
  for _ in $(seq 1 150); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done
  echo "$3 did not start on $1:$2 (see $demo/*.log)" >&2; return 1
}

# Stops a process and waits until it is gone (so its port and files are free again).
stop_pid() {
  [ -f "$demo/$1.pid" ] || return 0
  local pid; pid="$(cat "$demo/$1.pid")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$demo/$1.pid"
}

pg_bin() { for d in /usr/lib/postgresql/*/bin; do [ -x "$d/$1" ] && { echo "$d/$1"; return; }; done; command -v "$1"; }

stop() {
  stop_pid arflow
  stop_pid telephony
  stop_pid maildev; stop_pid smtp; stop_pid nats
  if [ -d "$demo/pg/data" ]; then
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$(pg_bin pg_ctl)" -D "$demo/pg/data" -m fast stop >/dev/null 2>&1 || true
    else "$(pg_bin pg_ctl)" -D "$demo/pg/data" -m fast stop >/dev/null 2>&1 || true; fi
  fi
}

start_postgres() {
  local url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  if pg_isready -d "$url" >/dev/null 2>&1; then
    ADMIN_URL="$url"
  else
    echo "PostgreSQL: none reachable at $url; starting a private cluster on port $PG_PORT"
    mkdir -p "$demo/pg"
    local run=()
    if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$demo/pg"; run=(runuser -u postgres --); fi
    "${run[@]}" "$(pg_bin initdb)" -D "$demo/pg/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$demo/pg/initdb.log"
    "${run[@]}" "$(pg_bin pg_ctl)" -D "$demo/pg/data" -l "$demo/pg/server.log" -o "-p $PG_PORT -k $demo/pg -c listen_addresses=127.0.0.1" -w start >/dev/null
    ADMIN_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  fi
  psql -q -d "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DEMO_DB WITH (FORCE)" -c "CREATE DATABASE $DEMO_DB"
  DB_URL="${ADMIN_URL%/*}/$DEMO_DB"
}

start_smtp() {
  if command -v npm >/dev/null 2>&1; then
    if [ ! -x "$root/.tools/node/node_modules/.bin/maildev" ]; then
      npm install --silent --no-audit --no-fund --prefix "$root/.tools/node" maildev@2 >/dev/null
    fi
    "$root/.tools/node/node_modules/.bin/maildev" --ip 127.0.0.1 --smtp "$SMTP_PORT" --web "$MAIL_WEB_PORT" --silent >"$demo/maildev.log" 2>&1 &
    echo $! >"$demo/maildev.pid"
    MAILBOX="http://127.0.0.1:$MAIL_WEB_PORT (maildev web inbox; REST: /email)"
  else
    mkdir -p "$demo/mailbox"
    python -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$demo/mailbox" >"$demo/smtp.log" 2>&1 &
    echo $! >"$demo/smtp.pid"
    MAILBOX="$demo/mailbox (Maildir)"
  fi
  wait_port 127.0.0.1 "$SMTP_PORT" "SMTP sink"
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

start_telephony() {
  "$bin" telephony-sim --port "$TELEPHONY_PORT" --account-sid "$ARFLOW__TELEPHONY__ACCOUNT_SID" \
    --sms-webhook-url "$GATEWAY_URL/webhooks/telephony/sms/inbound" >"$demo/telephony.log" 2>&1 &
  echo $! >"$demo/telephony.pid"
  wait_port 127.0.0.1 "$TELEPHONY_PORT" "telephony simulator"
}

start() {
  stop
  rm -rf "$demo"; mkdir -p "$demo"
  # The streams reserve their byte limits (about 11 GiB) against the JetStream store limit, which
  # defaults to 75% of the free disk: a demo on a fuller disk would refuse to create them.
  printf 'jetstream {\n  max_file_store: 1TB\n}\n' >"$demo/nats.conf"
  nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$demo/nats" -c "$demo/nats.conf" >"$demo/nats.log" 2>&1 &
  echo $! >"$demo/nats.pid"
  wait_port 127.0.0.1 "$NATS_PORT" nats-server
  start_postgres
  start_smtp
  cat >"$demo/env" <<ENV
export ARFLOW__NATS__URL=nats://127.0.0.1:$NATS_PORT
export ARFLOW__DATABASE__URL=$DB_URL
export ARFLOW__CLOCK__MODE=simulated
export ARFLOW__CLOCK__START=2026-03-02T00:00:00Z
export ARFLOW__SMTP__PORT=$SMTP_PORT
export ARFLOW__GATEWAY__ADMIN_TOKEN=demo-admin-token
export ARFLOW__EMAIL__REPLY_DOMAIN=in.harborpine.example
export ARFLOW__INTERNAL__TOKEN=demo-internal-$(random_hex 12)
# One secret for the unsubscribe links: the email service signs them, the gateway verifies them.
export ARFLOW__UNSUBSCRIBE__SECRET=demo-unsubscribe-$(random_hex 12)
# Calls and texts go to the local telephony simulator (auth token read from here by it too).
export ARFLOW__TELEPHONY__API_BASE=http://127.0.0.1:$TELEPHONY_PORT
export ARFLOW__TELEPHONY__ACCOUNT_SID=AC$(random_hex 16)
export ARFLOW__TELEPHONY__AUTH_TOKEN=$(random_hex 16)
export ARFLOW__TELEPHONY__FROM_NUMBER=+15005550006
export ARFLOW__TELEPHONY__CALLBACK_BASE_URL=$GATEWAY_URL
export ARFLOW_TELEPHONY_SIM=http://127.0.0.1:$TELEPHONY_PORT
# The demo's webhook receiver listens on 127.0.0.1 (production keeps private targets refused).
export ARFLOW__NOTIFICATION__ALLOW_PRIVATE_TARGETS=true
export ARFLOW_API_URL=$GATEWAY_URL
export ARFLOW_ADMIN_TOKEN=demo-admin-token
export ARFLOW_MAILBOX="$MAILBOX"
export ARFLOW_MAIL_API=http://127.0.0.1:$MAIL_WEB_PORT
ENV
  # shellcheck disable=SC1091
  source "$demo/env"
  start_telephony
  "$bin" serve all >"$demo/arflow.log" 2>&1 &
  echo $! >"$demo/arflow.pid"
  wait_port 127.0.0.1 8080 "arflow gateway"
  echo "stack up: NATS $ARFLOW__NATS__URL, PostgreSQL $DB_URL, SMTP 127.0.0.1:$SMTP_PORT, telephony $ARFLOW_TELEPHONY_SIM, gateway $ARFLOW_API_URL"
}

info() {
  # shellcheck disable=SC1091
  source "$demo/env"
  cat <<INFO

Where to look (the stack keeps running; \`just stop\` stops it):
  API          $ARFLOW_API_URL  (OpenAPI: $ARFLOW_API_URL/openapi.json; key in .demo/firm.json)
  mailbox      $ARFLOW_MAILBOX
  telephony    $ARFLOW_TELEPHONY_SIM/_sim/calls and /_sim/messages (simulator; log .demo/telephony.log)
  services     logs in .demo/arflow.log; \`just arflow status\`, \`just arflow clock show\`
INFO
}

case "${1:-}" in
  start) start ;;
  stop) stop; echo "stack stopped" ;;
  info) info ;;
  *) echo "usage: $0 start|stop|info" >&2; exit 2 ;;
esac
