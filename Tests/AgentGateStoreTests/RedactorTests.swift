import Testing

@testable import AgentGateStore

@Suite("Redactor")
struct RedactorTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let input: [String]
        let expected: [String]
        var testDescription: String { input.joined(separator: " ") }
        init(_ input: [String], _ expected: [String]) {
            self.input = input
            self.expected = expected
        }
    }

    static let argvCases: [Case] = [
        // Authorization headers: as one argument, and as -H + next argument.
        Case(["curl", "Authorization: Bearer abc.def-123"], ["curl", "Authorization: [REDACTED]"]),
        Case(["curl", "-H", "Authorization: Bearer xyz0123456789"], ["curl", "-H", "Authorization: [REDACTED]"]),
        Case(["curl", "--header", "authorization:Basic dXNlcjpwYXNz"], ["curl", "--header", "authorization: [REDACTED]"]),
        Case(["curl", "-H", "X-Api-Key: 12345"], ["curl", "-H", "X-Api-Key: [REDACTED]"]),
        Case(["curl", "-H", "Cookie: session=abc"], ["curl", "-H", "Cookie: [REDACTED]"]),
        Case(["curl", "-H", "Content-Type: application/json"], ["curl", "-H", "Content-Type: application/json"]),
        Case(["curl", "-H", "Accept: */*"], ["curl", "-H", "Accept: */*"]),
        // Flags with values.
        Case(["tool", "--token=abc123"], ["tool", "--token=[REDACTED]"]),
        Case(["tool", "--token", "abc123"], ["tool", "--token", "[REDACTED]"]),
        Case(["mysql", "--password", "hunter2", "db"], ["mysql", "--password", "[REDACTED]", "db"]),
        Case(["mysql", "--password=hunter2"], ["mysql", "--password=[REDACTED]"]),
        Case(["x", "--api-key", "k-1"], ["x", "--api-key", "[REDACTED]"]),
        Case(["x", "--client-secret=s3cr3t"], ["x", "--client-secret=[REDACTED]"]),
        Case(["docker", "login", "--password-stdin"], ["docker", "login", "--password-stdin"]),
        Case(["x", "--password-file", "/run/secrets/pw"], ["x", "--password-file", "/run/secrets/pw"]),
        Case(["x", "--token-file=/run/t"], ["x", "--token-file=/run/t"]),
        Case(["x", "--no-password", "next"], ["x", "--no-password", "next"]),
        Case(["x", "--token", "--verbose"], ["x", "--token", "--verbose"]),
        // Innocuous flags survive.
        Case(["git", "commit", "--author", "Jane <j@x.org>"], ["git", "commit", "--author", "Jane <j@x.org>"]),
        Case(["git", "log", "--author=jane"], ["git", "log", "--author=jane"]),
        Case(["ls", "-la", "/tmp"], ["ls", "-la", "/tmp"]),
        Case(["npm", "install", "chalk"], ["npm", "install", "chalk"]),
        Case(["pip", "install", "sk-learn", "scikit-learn"], ["pip", "install", "sk-learn", "scikit-learn"]),
        Case(["make", "-j2", "CC=gcc"], ["make", "-j2", "CC=gcc"]),
        Case(["python3", "-c", "if a == b: print('x')"], ["python3", "-c", "if a == b: print('x')"]),
        // Tokens by shape.
        Case(["openai", "sk-abcdefghijklmnopqrstuvwxyz012345"], ["openai", "sk-[REDACTED]"]),
        Case(["claude", "sk-ant-api03-abcdefghijklmnopqrstuv_wx-yz"], ["claude", "sk-ant-[REDACTED]"]),
        Case(["x", "sk-proj-AbCdEfGhIjKlMnOpQrStUv"], ["x", "sk-proj-[REDACTED]"]),
        Case(["gh", "ghp_0123456789abcdefghijABCDEFGHIJ012345"], ["gh", "ghp_[REDACTED]"]),
        Case(["gh", "gho_0123456789abcdefghijABCDEFGHIJ012345"], ["gh", "gho_[REDACTED]"]),
        Case(["gh", "ghs_0123456789abcdefghijABCDEFGHIJ012345"], ["gh", "ghs_[REDACTED]"]),
        Case(["gh", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"], ["gh", "github_pat_[REDACTED]"]),
        Case(["aws", "AKIAIOSFODNN7EXAMPLE"], ["aws", "AKIA[REDACTED]"]),
        Case(["aws", "ASIAIOSFODNN7EXAMPLE"], ["aws", "ASIA[REDACTED]"]),
        Case(["aws", "AKIA-not-a-key"], ["aws", "AKIA-not-a-key"]),
        Case(["slack", "xoxb-123456789012-abcdefghij"], ["slack", "xoxb-[REDACTED]"]),
        Case(["slack", "xoxp-123456789012-abcdefghij"], ["slack", "xoxp-[REDACTED]"]),
        Case(["gitlab", "glpat-abcdefghij0123456789"], ["gitlab", "glpat-[REDACTED]"]),
        Case(["x", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"],
             ["x", "eyJ[REDACTED]"]),
        // Passwords in URLs.
        Case(["git", "clone", "https://user:pass@github.com/o/r.git"], ["git", "clone", "https://user:[REDACTED]@github.com/o/r.git"]),
        Case(["psql", "postgres://app:s3cret@db:5432/x"], ["psql", "postgres://app:[REDACTED]@db:5432/x"]),
        Case(["curl", "https://example.com/a:b@c"], ["curl", "https://example.com/a:b@c"]),
        Case(["git", "clone", "git@github.com:o/r.git"], ["git", "clone", "git@github.com:o/r.git"]),
        Case(["curl", "https://x.example/?access_token=abc&page=2"], ["curl", "https://x.example/?access_token=[REDACTED]&page=2"]),
        // curl -u user:password.
        Case(["curl", "-u", "alice:wonderland", "https://x"], ["curl", "-u", "alice:[REDACTED]", "https://x"]),
        Case(["docker", "run", "-u", "1000:1000", "img"], ["docker", "run", "-u", "1000:1000", "img"]),
        // Inside a shell command line.
        Case(["sh", "-c", "GITHUB_TOKEN=abc123 make && curl -H 'Authorization: Bearer t0ken-value' https://x"],
             ["sh", "-c", "GITHUB_TOKEN=[REDACTED] make && curl -H 'Authorization: [REDACTED]' https://x"]),
        Case(["curl", "-d", "{\"user\":\"a\",\"password\":\"hunter2\"}"], ["curl", "-d", "{\"user\":\"a\",\"password\":\"[REDACTED]\"}"]),
        Case(["x", "--auth-header", "Bearer abcdefgh12345678"], ["x", "--auth-header", "[REDACTED]"]),
        Case(["echo", "use Bearer abcdefgh12345678 here"], ["echo", "use Bearer [REDACTED] here"]),
        Case(["echo", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----"],
             ["echo", "-----BEGIN OPENSSH PRIVATE KEY-----[REDACTED]-----END OPENSSH PRIVATE KEY-----"]),
        Case(["echo", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"],
             ["echo", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"]),
        // Unicode around secrets survives intact.
        Case(["echo", "日本語 token=秘密 ✓"], ["echo", "日本語 token=[REDACTED] ✓"]),
        Case([], []),
        Case([""], [""]),
        // A shell string quotes a command: its flags hide their values as argv's do.
        Case(["sh", "-c", "mysql --password hunter2 -e 'select 1'"], ["sh", "-c", "mysql --password [REDACTED] -e 'select 1'"]),
        Case(["sh", "-c", "curl -u alice:wonderland https://x && echo done"],
             ["sh", "-c", "curl -u alice:[REDACTED] https://x && echo done"]),
        Case(["bash", "-lc", "deploy --token 'two words'; ls"], ["bash", "-lc", "deploy --token '[REDACTED]'; ls"]),
        Case(["sh", "-c", "ls --password-file /run/pw -la"], ["sh", "-c", "ls --password-file /run/pw -la"]),
    ]

    @Test("argv redaction", arguments: argvCases)
    func argv(_ testCase: Case) {
        #expect(Redactor.redact(argv: testCase.input) == testCase.expected)
    }

    static let textCases: [(String, String)] = [
        ("https://user:pass@host", "https://user:[REDACTED]@host"),
        ("https://host/path", "https://host/path"),
        ("104.16.1.2:443", "104.16.1.2:443"),
        ("auth.example.com:443", "auth.example.com:443"),
        ("token.example:8080", "token.example:8080"),
        ("unix:/run/docker.sock", "unix:/run/docker.sock"),
        ("/home/u/.config/gh/hosts.yml", "/home/u/.config/gh/hosts.yml"),
        ("/work/project/src/tokenizer.ts", "/work/project/src/tokenizer.ts"),
        ("/tmp/disk-sk-1234", "/tmp/disk-sk-1234"),
        ("agent wants to push with ghp_0123456789abcdefghijABCDEFGHIJ012345", "agent wants to push with ghp_[REDACTED]"),
        ("password: hunter2", "password: [REDACTED]"),
        ("DB_PASSWORD=\"quoted value\" run", "DB_PASSWORD=\"[REDACTED]\" run"),
        ("Authorization=Bearer abcdef123", "Authorization=[REDACTED]"),
    ]

    @Test("text redaction", arguments: textCases)
    func text(_ input: String, _ expected: String) {
        #expect(Redactor.redact(text: input) == expected)
    }

    static let commandTextCases: [(String, String)] = [
        // What argv redaction takes from arguments, taken from text that quotes them.
        ("agent wants to run mysql --password hunter2 -h db", "agent wants to run mysql --password [REDACTED] -h db"),
        ("agent wants to run curl -u admin:pw https://x", "agent wants to run curl -u admin:[REDACTED] https://x"),
        ("agent wants to run docker run -u 1000:1000 img", "agent wants to run docker run -u 1000:1000 img"),
        ("agent wants to run x --token \"a b c\" --verbose", "agent wants to run x --token \"[REDACTED]\" --verbose"),
        ("agent wants to run x --api-key k1;ls", "agent wants to run x --api-key [REDACTED];ls"),
        ("agent wants to run x --token --verbose", "agent wants to run x --token --verbose"),
        ("agent wants to run x --no-password y", "agent wants to run x --no-password y"),
        ("agent wants to read ~/.config/gh/hosts.yml", "agent wants to read ~/.config/gh/hosts.yml"),
        ("agent wants to push with ghp_0123456789abcdefghijABCDEFGHIJ012345", "agent wants to push with ghp_[REDACTED]"),
        // Already redacted: unchanged.
        ("run mysql --password [REDACTED]", "run mysql --password [REDACTED]"),
    ]

    @Test("command text redaction", arguments: commandTextCases)
    func commandText(_ input: String, _ expected: String) {
        #expect(Redactor.redact(commandText: input) == expected)
        #expect(Redactor.redact(commandText: expected) == expected)
    }

    @Test("sensitive names: KEY, TOKEN, SECRET, PASSWORD, CREDENTIAL, AUTH (any case); innocuous names survive")
    func names() {
        let sensitive = [
            "API_KEY", "OPENAI_API_KEY", "apikey", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "gh_token", "NPM_AUTH_TOKEN",
            "DB_PASSWORD", "PGPASSWORD", "MYSQL_PWD_PASSWD", "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_CREDENTIAL",
            "AUTH", "HTTP_AUTH", "OAUTH_CLIENT", "AUTHTOKEN", "Authorization", "SECRETS", "client-secret",
            "SSH_KEY", "SIGNING_KEYS", "--token", "--api-key", "x.password",
        ]
        let innocuous = [
            "PATH", "HOME", "PWD", "USER", "SHELL", "LANG", "TERM", "KEYBOARD", "KEYMAP", "GIT_AUTHOR_NAME",
            "GIT_AUTHOR_EMAIL", "AUTHOR", "XAUTHORITY", "SSH_AUTH_SOCK", "TOKEN_FILE", "KEY_PATH", "EDITOR",
            "--author", "--keyboard", "MONKEYPATCH", "",
        ]
        for name in sensitive { #expect(Redactor.isSensitiveName(name), "\(name) should be sensitive") }
        for name in innocuous { #expect(!Redactor.isSensitiveName(name), "\(name) should survive") }
    }

    @Test("environment: sensitive names dropped, token-looking values redacted, the rest kept")
    func environment() {
        let environment = [
            "PATH": "/usr/bin:/bin", "HOME": "/root", "KEYBOARD": "us", "GIT_AUTHOR_NAME": "Jane",
            "OPENAI_API_KEY": "sk-abcdefghijklmnopqrstuvwxyz", "GITHUB_TOKEN": "ghp_x", "Db_Password": "p",
            "AWS_SECRET_ACCESS_KEY": "x", "GOOGLE_APPLICATION_CREDENTIALS": "/k.json", "HTTP_AUTH": "u:p",
            "NOTES": "my key is ghp_0123456789abcdefghijABCDEFGHIJ012345", "PROXY": "http://u:pw@proxy:3128",
        ]
        let redacted = Redactor.redact(environment: environment)
        #expect(redacted == [
            "PATH": "/usr/bin:/bin", "HOME": "/root", "KEYBOARD": "us", "GIT_AUTHOR_NAME": "Jane",
            "NOTES": "my key is ghp_[REDACTED]", "PROXY": "http://u:[REDACTED]@proxy:3128",
        ])
        #expect(Redactor.redact(environmentEntries: ["A=1", "MY_TOKEN=x", "B"]) == ["A=1", "B"])
    }

    @Test("nothing to redact returns the same string without copying")
    func unchanged() {
        let plain = "/usr/lib/x86_64-linux-gnu/libc.so.6"
        #expect(Redactor.redact(text: plain) == plain)
        #expect(!Redactor.containsSecret(plain))
        #expect(Redactor.containsSecret("token=1"))
    }

    @Test("the writer redacts argv, targets and intents before they reach SQLite")
    func writerRedacts() throws {
        let directory = try TemporaryDirectory()
        let store = try AuditStore(path: directory.file("audit.db"))
        defer { store.close() }
        var session = sampleSession()
        session.command = ["claude", "--api-key", "sk-ant-api03-abcdefghijklmnopqrstuv"]
        session.cwd = "/work/ghp_0123456789abcdefghijABCDEFGHIJ012345"
        try store.createSession(session)
        let writer = AuditWriter(store: store, sessionID: "session-1")
        var event = sampleEvent(1)
        event.action = .exec
        event.argv = ["curl", "-H", "Authorization: Bearer secret-token-1", "https://u:pw@x.example"]
        event.target = "https://u:pw@x.example"
        event.intent = "agent wants to fetch with token=abc"
        writer.record(event)
        writer.recordProcessStart(ProcessRecord(
            pid: 5, ppid: 1, executable: "/usr/bin/env", argv: ["env", "TOKEN=abc", "x"], uid: 0, gid: 0,
            capabilities: [], cgroup: "/", startTimeMicros: 1))
        // One value, redacted alike wherever it appears: in argv, in the intent that quotes it,
        // in the executable and cwd paths.
        var quoted = sampleEvent(2)
        quoted.action = .exec
        quoted.executable = "/tmp/ghp_0123456789abcdefghijABCDEFGHIJ012345/tool"
        quoted.argv = ["mysql", "--password", "hunter2", "-e", "select 1"]
        quoted.intent = "agent wants to run mysql --password hunter2 -e select 1"
        writer.record(quoted)
        writer.close()
        let quotedStored = try #require(try store.events(sessionID: "session-1").last).event
        #expect(quotedStored.argv == ["mysql", "--password", "[REDACTED]", "-e", "select 1"])
        #expect(quotedStored.intent == "agent wants to run mysql --password [REDACTED] -e select 1")
        #expect(quotedStored.executable == "/tmp/ghp_[REDACTED]/tool")
        let stored = try #require(try store.events(sessionID: "session-1").first).event
        #expect(stored.argv == ["curl", "-H", "Authorization: [REDACTED]", "https://u:[REDACTED]@x.example"])
        #expect(stored.target == "https://u:[REDACTED]@x.example")
        #expect(stored.intent == "agent wants to fetch with token=[REDACTED]")
        #expect(try store.processes(sessionID: "session-1").first?.process.argv == ["env", "TOKEN=[REDACTED]", "x"])
        #expect(try store.session(id: "session-1")?.command == ["claude", "--api-key", "[REDACTED]"])
        #expect(try store.session(id: "session-1")?.cwd == "/work/ghp_[REDACTED]")
        #expect(try store.verify(sessionID: "session-1").isValid)
    }
}
