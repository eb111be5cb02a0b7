#!/usr/bin/env bash
# Send one signed lifecycle command to nnt.commands with kcat (docs/security.md,
# "Commands from any Kafka client"). Needs curl, jq, openssl and kcat.
#
#   NNT_URL=http://127.0.0.1:8000 NNT_TOKEN=nnt_... BROKER=127.0.0.1:9092 \
#     bash kcat-command.sh pause <simulation id>
#
# TYPE is pause, resume, stop or delete. Your command key comes from the API; set KEY,
# PRINCIPAL and KEY_ID yourself to skip that call. Prints the command id.
set -euo pipefail
TYPE="$1"
SIM="$2"

if [ -z "${KEY:-}" ]; then
  KEYS=$(curl -sf -H "Authorization: Bearer $NNT_TOKEN" "$NNT_URL/api/command-key")
  KEY=$(jq -r .key <<<"$KEYS")
  PRINCIPAL=$(jq -r .principal <<<"$KEYS")
  KEY_ID=$(jq -r .key_id <<<"$KEYS")
fi

CID=$(cat /proc/sys/kernel/random/uuid)
NOW=$(date -u +%s)
AT=$(date -u -d "@$NOW" +%Y-%m-%dT%H:%M:%SZ)
# What the signature covers: type|command_id|simulation_id|principal|key_id|unix seconds|
SIG=$(printf '%s|%s|%s|%s|%s|%s|' "$TYPE" "$CID" "$SIM" "$PRINCIPAL" "$KEY_ID" "$NOW" \
  | openssl dgst -sha256 -hmac "$KEY" -r | cut -d' ' -f1)

printf '%s\t{"type":"%s","command_id":"%s","simulation_id":"%s","issued_at":"%s","principal":"%s","key_id":%s,"signature":"%s"}\n' \
  "$SIM" "$TYPE" "$CID" "$SIM" "$AT" "$PRINCIPAL" "$KEY_ID" "$SIG" \
  | kcat -b "$BROKER" -t nnt.commands -P -K $'\t'
echo "$CID"
