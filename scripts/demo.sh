#!/usr/bin/env bash
# A short supervised session on the built-in policy: some actions are allowed, some denied,
# and the audit trail shows both.
set -uo pipefail
bin=$(cd "${1:-.build/release}" && pwd)
workspace=$(mktemp -d /tmp/agentgate-demo.XXXXXX)
export AGENTGATE_DB="$workspace/agentgate.db"
session="demo-$(date +%s)"
cd "$workspace"
echo "== agentgate-supervise (built-in policy) in $workspace"
"$bin/agentgate-supervise" --agent demo --session "$session" -- sh -c '
  echo "agent: writing notes.txt in the workspace";  echo "hello" > notes.txt && echo "  ok"
  echo "agent: reading ~/.ssh/id_rsa";              cat ~/.ssh/id_rsa 2>&1 | sed "s/^/  /"
  echo "agent: writing /etc/agentgate-demo";        (echo x > /etc/agentgate-demo) 2>&1 | sed "s/^/  /"
  echo "agent: connecting to cloud metadata";       python3 -c "
import socket
try:
    socket.create_connection((\"169.254.169.254\", 80), timeout=2); print(\"  connected\")
except OSError as e:
    print(\"  \", e)"
  echo "agent: running git --version";              git --version 2>/dev/null | sed "s/^/  /" || echo "  (git not installed)"
'
echo "== exit status: $?"
echo "== agentgate audit --session $session --decision deny"
"$bin/agentgate" audit --session "$session" --decision deny
echo "== every decision is in $AGENTGATE_DB ($("$bin/agentgate" audit --session "$session" | wc -l) events)"
echo "== agentgate audit verify (the hash chains)"
"$bin/agentgate" audit verify --session "$session"
echo "== agentgate show $session"
"$bin/agentgate" show "$session" | sed -n '1,12p'
echo "== try it yourself (each line works when copied):"
echo "  AGENTGATE_DB=$AGENTGATE_DB $bin/agentgate export $session --format html -o report.html"
echo "  $bin/agentgate-supervise -- bash     # your own session, recorded in ~/.local/share/agentgate"
echo "  $bin/agentgate sessions              # then: $bin/agentgate show ID"
