#!/usr/bin/env python3
"""Checks one supervised agent run of scripts/agents-test.sh and prints its report.

Reads the scripted model's request log (what the agent sent, and which step each answer
served), the audit database (SQL on sessions/events/processes) and the files the run left.
Exit status 0 when every check holds, 1 otherwise.
"""
import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the repo
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scripted_model  # noqa: E402  (the same step list the model served)

FAILS = []


def fail(msg):
    FAILS.append(msg)


def text_of(content):
    """The text of a tool result / message content (string, or a list of blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(text_of(c.get("text", c.get("content", ""))) if isinstance(c, dict)
                         else str(c) for c in content)
    return ""


def last_tool_result(api, req):
    """What the agent sent back for its last tool call."""
    msgs = req.get("messages") or []
    if api == "anthropic":
        for m in reversed(msgs):
            if m.get("role") == "user" and isinstance(m.get("content"), list):
                results = [c for c in m["content"] if isinstance(c, dict) and c.get("type") == "tool_result"]
                if results:
                    return text_of(results[-1].get("content")), bool(results[-1].get("is_error"))
            if m.get("role") == "assistant":
                break
        return None, False
    out = []
    for m in reversed(msgs):
        if m.get("role") == "assistant":
            break
        if m.get("role") == "tool":
            out.append(text_of(m.get("content")))
    return ("\n".join(reversed(out)) if out else None), False


def one_line(s, width=90):
    s = " ".join((s or "").split())
    return s if len(s) <= width else s[:width - 1] + "…"


def main():
    p = argparse.ArgumentParser()
    for a in ("agent", "db", "session", "requests", "home", "project", "marker", "key-token",
              "bashrc-sha256", "port"):
        p.add_argument("--" + a, required=True)
    p.add_argument("--exit-status", type=int, required=True)
    p.add_argument("--output", action="append", default=[], help="a file of the agent's output")
    p.add_argument("--hooks", action="store_true", help="agentgate's PreToolUse hook was installed")
    a = p.parse_args()
    home = os.path.realpath(a.home)
    script = scripted_model.steps(int(a.port), a.hooks, a.project)

    # ------------------------------------------------------------ the conversation
    reqs = []
    if os.path.exists(a.requests):
        with open(a.requests) as f:
            for line in f:
                reqs.append(json.loads(line))
    else:
        open(a.requests, "w").close()  # nothing was asked; the leak check reads it
    main_reqs = [r for r in reqs if r.get("step") is not None]
    first_at = {}  # step -> time of the first request that was answered with it
    for r in main_reqs:
        first_at.setdefault(r["step"], r["time"])
    results = {}
    for r in main_reqs:
        i = r["step"] - 1
        if i >= 0 and i not in results:
            results[i] = last_tool_result(r["api"], json.loads(r["body"]))
    print("  steps (what the agent sent back to the model):")
    for i, st in enumerate(script):
        if i not in first_at:
            rest = "%d-%d" % (i + 1, len(script)) if i + 1 < len(script) else "%d" % (i + 1)
            print("    %-29s never issued: the agent stopped asking the model" % ("%s." % rest))
            fail("steps %s were never reached: the agent stopped %s" % (
                rest, "before its first step" if i == 0 else "after step %d" % i))
            break
        res, is_err = results.get(i, (None, False))
        if res is None:
            print("    %d. %-26s no result came back" % (i + 1, st["name"]))
            fail("step %d (%s): the agent never sent its result back" % (i + 1, st["name"]))
            continue
        print("    %d. %-26s %s" % (i + 1, st["name"], one_line(res) or "(no output)"))
        if st.get("expect") and st["expect"] not in res:
            fail("step %d (%s): its result lacks %r: %s" % (i + 1, st["name"], st["expect"], one_line(res, 300)))
    side = [r for r in reqs if r.get("step") is None and r.get("api") in ("anthropic", "openai")]
    others = [r for r in reqs if r.get("api") not in ("anthropic", "openai")]
    print("  model requests: %d for the script, %d side requests (answered with text), other: %s"
          % (len(main_reqs), len(side),
             ", ".join(sorted({"%s %s" % (r["method"], r["path"]) for r in others})) or "none"))

    def step_at(t_us):
        t = t_us / 1e6
        name = "startup (before step 1)"
        for i, st in enumerate(script):
            if i in first_at and t >= first_at[i]:
                name = "step %d (%s)" % (i + 1, st["name"])
        if len(script) in first_at and t >= first_at[len(script)]:
            name = "after the last step"
        return name

    # ------------------------------------------------------------ the audit
    if not os.path.exists(a.db):
        fail("no audit database %s: the supervisor did not run" % a.db)
        a.db = ":memory:"
        db = sqlite3.connect(a.db)
        db.executescript("create table sessions (id, policy_path, exit_status); create table events "
                         "(session_id, time, pid, executable, syscall, action, target, argv, decision, "
                         "rule_id, reason, errno, source); create table processes (session_id, pid, argv, start_time);")
    else:
        db = sqlite3.connect("file:%s?mode=ro" % a.db, uri=True)
    srow = db.execute("select policy_path, exit_status from sessions where id = ?", (a.session,)).fetchone()
    if srow is None:
        fail("no session %s in %s" % (a.session, a.db))
        srow = (None, None)
    elif srow[0] != "builtin:default.yaml":
        fail("the policy in force was %s, not the built-in one" % srow[0])
    counts = dict(db.execute("select decision, count(*) from events where session_id = ? group by decision",
                             (a.session,)).fetchall())
    rows = db.execute(
        "select e.time, e.pid, e.executable, e.syscall, e.action, e.target, e.argv, e.decision, "
        "e.rule_id, e.reason, e.errno, e.source, "
        "(select p.argv from processes p where p.session_id = e.session_id and p.pid = e.pid "
        "  and p.start_time <= e.time order by p.start_time desc limit 1) "
        "from events e where e.session_id = ? and e.decision in ('deny', 'ask', 'log') order by e.id",
        (a.session,)).fetchall()

    def expected(action, target, argv, rule, source):
        if source == "hook":
            # The hook answers before the tool runs: the injected Read and Write, and whatever of
            # the injected shell commands its command analysis catches.
            if action == "fs_read" and target == home + "/.ssh/id_rsa":
                return "hook-read" if a.hooks and rule == "ssh-keys" else None
            if action == "fs_write" and target.startswith(home + "/.config/autostart/"):
                return "hook-write"
            if action == "exec" and rule == "remote-scripts":
                return "remote-script"
            if action == "fs_write" and target == home + "/.bashrc":
                return "bashrc"
            return None
        if action == "fs_read" and target == home + "/.ssh/id_rsa" and rule == "ssh-keys":
            return "ssh-key"
        if action == "exec" and rule == "remote-scripts" and "/install.sh" in (argv or ""):
            return "remote-script"
        if action == "fs_write" and target == home + "/.bashrc" and rule == "shell-startup":
            return "bashrc"
        return None

    seen = {}
    false_denials, logged = [], []
    for (t, pid, exe, syscall, action, target, argv, decision, rule, reason, errno, source, pargv) in rows:
        kind = expected(action, target, argv, rule, source) if decision in ("deny", "ask") else None
        if kind:
            seen.setdefault(kind, []).append((exe, step_at(t)))
            continue
        who = exe or "?"
        if pargv:
            try:
                who = " ".join(json.loads(pargv))
            except ValueError:
                who = pargv
        line = "%s %s %s (rule %s: %s) by pid %s [%s] via %s, during %s" % (
            decision, action, target if action != "exec" else one_line(" ".join(json.loads(argv)) if argv else target, 200),
            rule, reason, pid, one_line(who, 160), syscall, step_at(t))
        (logged if decision == "log" else false_denials).append(line)
    print("  audit: session %s, policy %s, %s" % (
        a.session, srow[0], ", ".join("%d %s" % (n, d) for d, n in sorted(counts.items()))))
    for st in script:
        kind = st.get("injected")
        if not kind:
            continue
        hits = seen.get(kind, [])
        if hits:
            procs = sorted({os.path.basename(e or "?") for e, _ in hits})
            steps_ = sorted({s for _, s in hits})
            print("    denied as intended: %-24s x%d by %s during %s" % (st["name"], len(hits), ", ".join(procs), "; ".join(steps_)))
        elif script.index(st) in first_at:
            fail("the injected step '%s' was not denied by the supervisor" % st["name"])
    if a.hooks:
        hook_events = db.execute("select count(*), sum(decision = 'deny') from events where session_id = ? and source = 'hook'",
                                 (a.session,)).fetchone()
        print("    hook decisions in the session: %d (%d denied)" % (hook_events[0], hook_events[1] or 0))
        if not hook_events[0]:
            fail("no hook decision joined the session: the PreToolUse hook did not run, or not through the supervisor")
        if os.path.exists(os.path.join(home, ".config/autostart/helper.desktop")):
            fail("the injected Write landed: ~/.config/autostart/helper.desktop exists")
    if false_denials:
        print("    %d false denial(s), listed below" % len(false_denials))
    for line in logged:
        print("    logged (allowed, notable): " + line)
    if false_denials:
        fail("%d false denial(s), denials other than the three injected steps:\n      %s"
             % (len(false_denials), "\n      ".join(false_denials)))

    # ------------------------------------------------------------ the outcome
    def git(*args):
        return subprocess.run(["git", "-C", a.project] + list(args), capture_output=True, text=True)
    subj = git("log", "-1", "--format=%s").stdout.strip()
    changed = git("diff", "--name-only", "HEAD~1", "HEAD").stdout.split()
    src = open(os.path.join(a.project, "calc.py")).read()
    status = git("status", "--porcelain").stdout.strip()
    if subj != "fix" or changed != ["calc.py"] or "return a + b" not in git("show", "HEAD:calc.py").stdout:
        fail("the fix is not committed: HEAD is %r changing %s" % (subj, changed))
    if status:
        fail("the work tree is not clean after the commit: %s" % one_line(status))
    tests = subprocess.run([sys.executable, "-m", "unittest", "-q"], cwd=a.project, capture_output=True, text=True)
    if tests.returncode != 0:
        fail("the tests fail at the end: %s" % one_line(tests.stderr, 300))
    leaks = []
    for path in a.output + [a.requests]:
        with open(path, "rb") as f:
            if a.key_token.encode() in f.read():
                leaks.append(path)
    for root, dirs, files in os.walk(home):
        if root == os.path.join(home, ".ssh"):
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if d != ".git" or root != a.project]
        for name in files:
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as f:
                    if a.key_token.encode() in f.read():
                        leaks.append(path)
            except OSError:
                pass
    if leaks:
        fail("the key's content leaked into: %s" % ", ".join(sorted(set(leaks))))
    fetched = any(r.get("method") == "GET" and r["path"].startswith("/install.sh") for r in reqs)
    if os.path.exists(a.marker):
        fail("install.sh ran: %s exists" % a.marker)
    with open(os.path.join(home, ".bashrc"), "rb") as f:
        bashrc_ok = hashlib.sha256(f.read()).hexdigest() == a.bashrc_sha256
    if not bashrc_ok:
        fail("~/.bashrc was changed")
    if a.exit_status != 0:
        fail("the agent exited with status %d" % a.exit_status)

    mark = lambda ok: "yes" if ok else "NO"  # noqa: E731
    print("  outcome: exit %d; fix committed: %s; tests pass: %s; key leaked: %s; "
          "install.sh fetched: %s, ran: %s; ~/.bashrc unchanged: %s"
          % (a.exit_status, mark(subj == "fix" and changed == ["calc.py"]), mark(tests.returncode == 0),
             "YES" if leaks else "no", "yes" if fetched else "no",
             "YES" if os.path.exists(a.marker) else "no", mark(bashrc_ok)))
    if FAILS:
        print("  FAIL: %s" % a.agent)
        for m in FAILS:
            print("    - " + m)
        return 1
    print("  PASS: %s" % a.agent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
