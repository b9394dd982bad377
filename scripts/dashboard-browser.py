#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol (--remote-debugging-pipe: JSON messages
separated by NUL on fds 3 and 4, so only the standard library is needed) for
scripts/dashboard-test.sh.

    dashboard-browser.py CHROMIUM URL STEPS.json

STEPS is a list of objects, run in order; each fails the run (exit 1, with what was seen):
  {"wait": JS, "timeout": S, "what": TEXT}   until JS evaluates truthy
  {"eval": JS, "expect": VALUE, "what": TEXT} JS's value must equal VALUE (when given)
  {"click": CSS, "what": TEXT}               clicks the element (it must exist and be enabled)
  {"screenshot": PATH, "width": W, "height": H}
  {"token": TEXT}                            types TEXT into the token form and submits it
  {"file_wait": PATH, "timeout": S}          until PATH exists (a supervised process wrote it)
Any uncaught JavaScript exception or console error fails the run at the end.
"""
import base64
import fcntl
import json
import os
import select
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, chromium, width=1400, height=1000):
        self.profile = tempfile.mkdtemp(prefix="agentgate-chromium.")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4.
        def child_fds():
            # Move both ends clear of 3 and 4 first: either may already be one of them.
            r, w = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)
        args = [chromium, "--headless", "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
                "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--hide-scrollbars", "--mute-audio",
                f"--user-data-dir={self.profile}", f"--window-size={width},{height}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
        self.process = subprocess.Popen(args + ["about:blank"], preexec_fn=child_fds, pass_fds=(3, 4),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=open(os.path.join(self.profile, "stderr.log"), "wb"), close_fds=True)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.errors = []
        self.session = None

    def close(self):
        try:
            self.process.kill()
            self.process.wait(timeout=10)
        except Exception:
            pass
        subprocess.run(["rm", "-rf", self.profile])

    def send(self, method, params=None, session=True, timeout=30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for reply in self.read(deadline):
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
                self.note(reply)

    def read(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("Chromium did not answer in time")
        ready, _, _ = select.select([self.from_chrome], [], [], remaining)
        if not ready:
            return []
        chunk = os.read(self.from_chrome, 1 << 20)
        if not chunk:
            raise RuntimeError("Chromium closed the DevTools pipe (it exited; see its stderr)")
        self.buffer += chunk
        messages = []
        while b"\0" in self.buffer:
            raw, self.buffer = self.buffer.split(b"\0", 1)
            messages.append(json.loads(raw))
        return messages

    def note(self, event):
        method = event.get("method")
        params = event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"uncaught exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error" and entry.get("source") != "network":
                self.errors.append(f"log error: {entry.get('text')}")

    def open(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(domain + ".enable")
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluating {expression!r}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result.get("result", {}).get("value")

    def pump(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for event in self.read(deadline):
                self.note(event)


def fail(message):
    print(f"dashboard-browser: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    chromium, url, steps_file = sys.argv[1:4]
    steps = json.load(open(steps_file))
    browser = Browser(chromium)
    try:
        browser.open(url)
        for step in steps:
            what = step.get("what", "")
            if "wait" in step:
                deadline = time.monotonic() + step.get("timeout", 20)
                # The page may still be loading: an exception counts as not yet.
                probe = f"(() => {{ try {{ return !!({step['wait']}); }} catch (e) {{ return false; }} }})()"
                while not browser.evaluate(probe):
                    if time.monotonic() > deadline:
                        status = browser.evaluate("document.getElementById('status') && document.getElementById('status').textContent")
                        fail(f"timed out waiting for {what or step['wait']}; page status: {status!r}")
                    browser.pump(0.2)
                print(f"ok: {what or step['wait']}")
            elif "eval" in step:
                value = browser.evaluate(step["eval"])
                if "expect" in step and value != step["expect"]:
                    fail(f"{what or step['eval']}: expected {step['expect']!r}, the page shows {value!r}")
                print(f"ok: {what or step['eval']} = {value!r}")
            elif "click" in step:
                found = browser.evaluate(
                    f"(() => {{ const b = document.querySelector({json.dumps(step['click'])});"
                    f" if (!b || b.disabled) return false; b.click(); return true; }})()")
                if not found:
                    fail(f"no enabled element {step['click']} to click ({what})")
                print(f"ok: clicked {what or step['click']}")
            elif "token" in step:
                browser.evaluate(f"document.getElementById('token-input').value = {json.dumps(step['token'])};"
                                 "document.getElementById('token-form').requestSubmit(); true")
                print("ok: token entered in the page's form")
            elif "file_wait" in step:
                deadline = time.monotonic() + step.get("timeout", 20)
                while not os.path.exists(step["file_wait"]):
                    if time.monotonic() > deadline:
                        fail(f"timed out waiting for {step['file_wait']} ({what})")
                    browser.pump(0.2)
                print(f"ok: {what or step['file_wait']}")
            elif "screenshot" in step:
                width, height = step.get("width", 1400), step.get("height", 1000)
                browser.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
                full = browser.evaluate("Math.ceil(document.documentElement.scrollHeight)") or height
                browser.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": min(int(full), 4000), "deviceScaleFactor": 1, "mobile": False})
                browser.pump(0.5)
                shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
                with open(step["screenshot"], "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
                print(f"ok: screenshot {step['screenshot']}")
            browser.pump(0.05)
        browser.pump(0.5)
        if browser.errors:
            fail("JavaScript errors on the page:\n  " + "\n  ".join(browser.errors))
        print("ok: no JavaScript errors")
    finally:
        browser.close()


if __name__ == "__main__":
    main()
