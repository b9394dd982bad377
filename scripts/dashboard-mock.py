#!/usr/bin/env python3
"""A stand-in for `agentgate serve`'s read API, for working on the dashboard page alone.

Serves Sources/AgentGateServer/Resources/dashboard.html at / and the shapes of docs/openapi.json
(health, sessions, session detail, session events, the SSE stream, approvals) read from an
audit database, with canned approvals. Loopback only; not a test of the real server.

    scripts/dashboard-mock.py --db FILE [--port 9199] [--approval | --agentgate BIN]

With --agentgate, approvals are real: listed with `BIN approvals --json` and answered with
`BIN approve|deny ID --session S` (token: mock-token).
"""
import argparse
import datetime
import json
import pathlib
import sqlite3
import subprocess
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = pathlib.Path(__file__).resolve().parent.parent / "Sources/AgentGateServer/Resources/dashboard.html"


def iso(us):
    return datetime.datetime.fromtimestamp(us / 1e6, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def event_object(row):
    ev = {"id": row["id"], "session": row["session_id"], "time": iso(row["time"]), "time_us": row["time"],
          "pid": row["pid"], "ppid": row["ppid"], "executable": row["executable"], "syscall": row["syscall"],
          "action": row["action"], "target": row["target"], "decision": row["decision"], "reason": row["reason"] or "",
          "latency_us": row["latency_us"], "notable": bool(row["notable"]), "enforced": bool(row["enforced"])}
    for key in ("rule_id", "intent", "answered_via", "answered_by"):
        if row[key] is not None:
            ev[key] = row[key]
    if row["argv"]:
        ev["argv"] = json.loads(row["argv"])
    return ev


class Handler(BaseHTTPRequestHandler):
    db = None
    approvals = []
    agentgate = None

    def log_message(self, *args):
        pass

    def connect(self):
        c = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        c.row_factory = sqlite3.Row
        return c

    def send_json(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def session_object(self, c, row):
        s = {"id": row["id"], "agent": row["agent"], "command": json.loads(row["command"]), "cwd": row["cwd"],
             "mode": row["mode"] or "enforce", "start_time": iso(row["start_time"]), "start_time_us": row["start_time"],
             "running": row["end_time"] is None}
        if row["end_time"] is not None:
            s.update(end_time=iso(row["end_time"]), end_time_us=row["end_time"], duration_us=row["end_time"] - row["start_time"])
        if row["exit_status"] is not None:
            s["exit_status"] = row["exit_status"]
        s["events"] = c.execute("SELECT count(*) FROM events WHERE session_id=?", (row["id"],)).fetchone()[0]
        s["denied"] = c.execute("SELECT count(*) FROM events WHERE session_id=? AND decision='deny'", (row["id"],)).fetchone()[0]
        return s

    def do_POST(self):
        parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 5 and parts[:3] == ["api", "v1", "approvals"]:
            if self.headers.get("Authorization", "") != "Bearer mock-token":
                return self.send_json({"error": "missing or wrong bearer token", "code": "unauthorized"}, 401)
            if self.agentgate:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                args = [self.agentgate, "approve" if parts[4] == "approve" else "deny", parts[3]]
                if body.get("session"):
                    args += ["--session", body["session"]]
                r = subprocess.run(args, capture_output=True, text=True)
                if r.returncode:
                    return self.send_json({"error": r.stderr.strip(), "code": "supervisor"}, 502)
                return self.send_json({"ok": True, "session": body.get("session", ""), "message": r.stdout.strip()})
            Handler.approvals = [a for a in Handler.approvals if a["id"] != parts[3]]
            return self.send_json({"ok": True, "session": "mock", "message": f"{parts[4]}d (mock)"})
        self.send_json({"error": "no such endpoint", "code": "not_found"}, 404)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/")
        if url.path == "/":
            body = PAGE.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.wfile.write(body)
        if url.path == "/api/v1/health":
            return self.send_json({"status": "ok", "version": "mock", "database": self.db, "database_present": pathlib.Path(self.db).exists(),
                                   "sessions_running": 0, "token_required_for_reads": False})
        if url.path == "/api/v1/approvals":
            if self.agentgate:
                r = subprocess.run([self.agentgate, "approvals", "--json"], capture_output=True, text=True)
                return self.send_json({"approvals": [json.loads(l) for l in r.stdout.splitlines() if l.strip()]})
            return self.send_json({"approvals": Handler.approvals})
        if url.path == "/api/v1/sessions" and not pathlib.Path(self.db).exists():
            return self.send_json({"sessions": []})
        if url.path == "/api/v1/sessions":
            with self.connect() as c:
                rows = c.execute("SELECT * FROM sessions ORDER BY start_time DESC").fetchall()
                return self.send_json({"sessions": [self.session_object(c, r) for r in rows]})
        if len(parts) == 4 and parts[:3] == ["api", "v1", "sessions"]:
            with self.connect() as c:
                row = c.execute("SELECT * FROM sessions WHERE id=?", (parts[3],)).fetchone()
                if row is None:
                    return self.send_json({"error": "no such session", "code": "not_found"}, 404)
                counts = [{"action": r[0], "decision": r[1], "enforced": bool(r[2]), "count": r[3]} for r in c.execute(
                    "SELECT action, decision, enforced, count(*) FROM events WHERE session_id=? GROUP BY 1,2,3", (parts[3],))]
                procs = []
                for p in c.execute("SELECT * FROM processes WHERE session_id=? ORDER BY start_time", (parts[3],)):
                    o = {"id": p["id"], "pid": p["pid"], "ppid": p["ppid"], "executable": p["executable"],
                         "argv": json.loads(p["argv"] or "[]"), "start_time_us": p["start_time"], "start_time": iso(p["start_time"])}
                    if p["exit_time"] is not None:
                        o.update(exit_time_us=p["exit_time"], exit_time=iso(p["exit_time"]))
                    if p["exit_status"] is not None:
                        o["exit_status"] = p["exit_status"]
                    procs.append(o)
                denied = [event_object(r) for r in c.execute(
                    "SELECT * FROM events WHERE session_id=? AND decision='deny' ORDER BY id DESC LIMIT 50", (parts[3],))]
                return self.send_json({"session": self.session_object(c, row), "counts": counts, "processes": procs,
                                       "denied": denied, "denied_total": len(denied)})
        if len(parts) == 5 and parts[:3] == ["api", "v1", "sessions"] and parts[4] == "events":
            limit = int(q.get("limit", 500))
            after = int(q.get("after", 0))
            sql, args = "SELECT * FROM events WHERE session_id=? AND id>?", [parts[3], after]
            if "since" in q:
                units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
                if q["since"][:-1].isdigit() and q["since"][-1] in units:
                    since = (time.time() - int(q["since"][:-1]) * units[q["since"][-1]]) * 1e6
                else:
                    since = datetime.datetime.fromisoformat(q["since"].replace("Z", "+00:00")).timestamp() * 1e6
                sql += " AND time>=?"
                args.append(int(since))
            with self.connect() as c:
                rows = c.execute(sql + " ORDER BY id LIMIT ?", args + [limit + 1]).fetchall()
            events = [event_object(r) for r in rows[:limit]]
            return self.send_json({"events": events, "next_cursor": events[-1]["id"] if len(rows) > limit else None})
        if url.path == "/api/v1/events/stream":
            last = 0
            if pathlib.Path(self.db).exists():
                with self.connect() as c:
                    last = c.execute("SELECT coalesce(max(id),0) FROM events").fetchone()[0]
            last = int(q.get("after", self.headers.get("Last-Event-ID") or last))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            try:
                while True:
                    rows = []
                    if pathlib.Path(self.db).exists():
                        with self.connect() as c:
                            rows = c.execute("SELECT * FROM events WHERE id>? ORDER BY id LIMIT 500", (last,)).fetchall()
                    for r in rows:
                        last = r["id"]
                        self.wfile.write(f"id: {last}\nevent: decision\ndata: {json.dumps(event_object(r))}\n\n".encode())
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    time.sleep(1)
            except (BrokenPipeError, ConnectionResetError):
                return
        self.send_json({"error": "no such endpoint", "code": "not_found"}, 404)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, default=9199)
    parser.add_argument("--approval", action="store_true", help="list one canned pending ask (token: mock-token)")
    parser.add_argument("--agentgate", help="real approvals through this agentgate binary")
    args = parser.parse_args()
    Handler.db = args.db
    Handler.agentgate = args.agentgate
    if args.approval:
        Handler.approvals = [{"id": "m0ck1", "session": "mock-session", "age_seconds": 4, "seconds_left": 116,
                              "action": "fs_write", "target": "/tmp/<img src=x onerror=alert(1)>", "intent": "agent wants to write <b>x</b>",
                              "pid": 4242, "executable": "/usr/bin/dash", "agent": "mock", "rule": "ask-approval (ask)"}]
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"agentgate serve: listening on http://127.0.0.1:{server.server_address[1]} (mock, database {args.db})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
