#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target (scripts/fuzz.sh) into DEST/TARGET/: the shipped
policies and their case files, the string literals of the tests that feed each parser (hostile
inputs included), the pinned fallback lines, socket addresses, and the hand-picked seeds in
fuzz/seeds/. Generated, so the repository holds no corpus of thousands of files."""
import hashlib, os, re, socket, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEST = sys.argv[1]

def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8", errors="surrogateescape") as f:
        return f.read()

def tests(*names):
    out = []
    for name in names:
        for directory in ("Tests/AgentGatePolicyTests", "Tests/AgentGateStoreTests", "Tests/AgentGateSupervisorTests"):
            path = os.path.join(ROOT, directory, name)
            if os.path.exists(path):
                out.append(read(os.path.join(directory, name)))
    return out

ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}

def unescape(body):
    def replace(m):
        text = m.group(1)
        if text.startswith("u{"):
            try:
                return chr(int(text[2:-1], 16))
            except ValueError:
                return ""
        return ESCAPES.get(text, text)
    return re.sub(r'\\(u\{[0-9a-fA-F]+\}|.)', replace, body)

def literals(source):
    """Swift string literals: multi-line ones (indentation removed), then single-line ones."""
    found = []
    for m in re.finditer(r'"""\n(.*?)\n([ \t]*)"""', source, re.S):
        indent = m.group(2)
        lines = [l[len(indent):] if l.startswith(indent) else l.lstrip() for l in m.group(1).split("\n")]
        found.append(unescape("\n".join(lines)))
    single = re.sub(r'"""\n.*?\n[ \t]*"""', "", source, flags=re.S)
    for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', single):
        if "\\(" not in m.group(1):
            found.append(unescape(m.group(1)))
    return found

def write(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    if not data or len(data) > 64 * 1024:
        return
    directory = os.path.join(DEST, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

policy_files = sorted(f for f in os.listdir(os.path.join(ROOT, "policies")) if f.endswith(".yaml"))
for name in policy_files:
    write("policy", read("policies/" + name))
for name in sorted(os.listdir(os.path.join(ROOT, "policies/tests"))):
    write("cases", read("policies/tests/" + name))
for source in tests("PolicyLoadErrorTests.swift", "PolicyFileTests.swift", "PolicyLintTests.swift", "RuleFieldTests.swift",
                    "ExecRuleTests.swift", "NetworkRuleTests.swift", "ProcessContextRuleTests.swift", "RateLimitTests.swift",
                    "V1CompatibilityTests.swift", "MCPRuleTests.swift", "PolicyEvaluationTests.swift", "PolicyTextEditTests.swift"):
    for text in literals(source):
        if ":" in text and ("\n" in text or text.startswith(("rules", "default", "include", "version"))):
            write("policy", text)
            if "cases:" in text or "expect:" in text:
                write("cases", text)

for source in tests("ShellParserTests.swift", "CommandAnalysisTests.swift", "CommandAnalysisHostileTests.swift",
                    "ExecRuleTests.swift", "IntentTests.swift", "RuleProposerTests.swift"):
    for text in literals(source):
        write("shell", text)

for source in tests("GlobTests.swift", "GlobDifferentialTests.swift", "HostPatternTests.swift", "NetworkRuleTests.swift",
                    "PathSpellingTests.swift"):
    strings = literals(source)
    for index, text in enumerate(strings):
        if "\n" not in text:
            # A pattern and the literals that follow it in the test, as targets.
            write("glob", "\n".join([text] + [s for s in strings[index + 1:index + 3] if "\n" not in s]))

for source in tests("RedactorTests.swift"):
    for text in literals(source):
        write("redact", text)

fallback_lines = []
for source in tests("StoredFormatTests.swift", "ChainTests.swift", "AuditWriterTests.swift"):
    for line in source.split("\n"):
        line = line.strip()
        if line.startswith('{"'):
            fallback_lines.append(line)
    for text in literals(source):
        if text.startswith("{") and "type" in text:
            fallback_lines.append(text)
for line in fallback_lines:
    write("fallback", line)
write("fallback", "\n".join(fallback_lines))

def unix(path, abstract=False):
    name = (b"\0" if abstract else b"") + path
    return struct.pack("<H", socket.AF_UNIX) + name + (b"" if abstract else b"\0")
addresses = [
    struct.pack("<H", socket.AF_INET) + struct.pack(">H", 443) + bytes([93, 184, 216, 34]) + bytes(8),
    struct.pack("<H", socket.AF_INET) + struct.pack(">H", 80) + bytes(4) + bytes(8),
    struct.pack("<H", socket.AF_INET6) + struct.pack(">H", 443) + bytes(4) + bytes(15) + b"\1" + bytes(4),
    struct.pack("<H", socket.AF_INET6) + struct.pack(">H", 53) + bytes(4) + bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1]) + bytes(4),
    unix(b"/run/docker.sock"), unix(b"relative.sock"), unix(b"agentgate-ctl", abstract=True), unix(b"/tmp/\xff\\x41"),
    struct.pack("<H", socket.AF_UNIX), struct.pack("<H", socket.AF_UNSPEC), struct.pack("<H", socket.AF_NETLINK) + bytes(10),
    b"/home/agent/\xc3\x28\\x\\\\", b"/proc/self/fd/3\0/etc/shadow",
]
for address in addresses:
    write("sockaddr", address)

seeds = os.path.join(ROOT, "fuzz", "seeds")
if os.path.isdir(seeds):
    for target in sorted(os.listdir(seeds)):
        for name in sorted(os.listdir(os.path.join(seeds, target))):
            with open(os.path.join(seeds, target, name), "rb") as f:
                write(target, f.read())

for target in sorted(os.listdir(DEST)):
    print(f"{target}: {len(os.listdir(os.path.join(DEST, target)))} seeds")
