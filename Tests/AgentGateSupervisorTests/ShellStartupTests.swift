import Foundation
import Glibc
import Testing

/// An interactive shell started under the built-in policy with a typical HOME: rc files,
/// readline, a history file, pyenv-style shims and nvm. It must start as it does unsupervised,
/// and what it is refused must be only what the policy refuses on purpose.
@Suite("Shell start-up under the built-in policy")
struct ShellStartupTests {
    /// A HOME like a developer's: Debian-style rc files, ~/.inputrc, a history file, a pyenv
    /// whose `init` makes its directories with `mkdir -p` and whose shims run `pyenv exec`
    /// (which reads ~/.pyenv/version and makes a temp file with mktemp, as pyenv's hooks do),
    /// an nvm that reads its default alias, config under ~/.config, and an SSH key.
    static func makeHome(_ h: Harness) throws -> String {
        let home = h.path("home")
        for directory in ["home/project", "home/.ssh", "home/.config/htop", "home/.local/share", "home/.cache",
                          "home/.pyenv/bin", "home/.pyenv/libexec", "home/.pyenv/shims", "home/.pyenv/versions/3.12.0/bin",
                          "home/.nvm/alias", "home/.nvm/versions/node/v20.0.0/bin"] {
            try h.mkdir(directory)
        }
        try h.write("home/.ssh/id_rsa", "SECRET-KEY\n", mode: 0o600)
        try h.write("home/.bash_history", "echo earlier\n", mode: 0o600)
        try h.write("home/.inputrc", "set bell-style none\n\"\\e[A\": history-search-backward\n")
        try h.write("home/.config/htop/htoprc", "fields=0 48 17\n")
        try h.write("home/.profile", "[ -n \"$BASH_VERSION\" ] && [ -f \"$HOME/.bashrc\" ] && . \"$HOME/.bashrc\"\n")
        symlink("/usr/bin/python3", h.path("home/.pyenv/versions/3.12.0/bin/python3"))
        try h.write("home/.pyenv/version", "3.12.0\n")
        try h.write("home/.pyenv/libexec/pyenv", """
            #!/usr/bin/env bash
            set -e
            export PYENV_ROOT="${PYENV_ROOT:-$HOME/.pyenv}"
            command="$1"; shift
            exec "$PYENV_ROOT/libexec/pyenv-$command" "$@"

            """, mode: 0o755)
        symlink("../libexec/pyenv", h.path("home/.pyenv/bin/pyenv"))
        // `pyenv init - --no-rehash`: rehash writes the shims, which the policy keeps for the
        // user's own shells (see shimsStayTheUsers).
        try h.write("home/.pyenv/libexec/pyenv-init", """
            #!/usr/bin/env bash
            set -e
            mkdir -p "${PYENV_ROOT}/"{shims,versions}
            echo 'export PATH="'"$PYENV_ROOT"'/shims:${PATH}"'
            echo 'export PYENV_SHELL=bash'
            echo 'pyenv() { command pyenv "$@"; }'

            """, mode: 0o755)
        try h.write("home/.pyenv/libexec/pyenv-exec", """
            #!/usr/bin/env bash
            set -e
            program="$1"; shift
            version="${PYENV_VERSION:-$(cat "$PYENV_ROOT/version")}"
            scratch="$(mktemp)"
            rm -f "$scratch"
            export PATH="$PYENV_ROOT/versions/$version/bin:$PATH"
            exec "$PYENV_ROOT/versions/$version/bin/$program" "$@"

            """, mode: 0o755)
        // What rehash leaves in shims/ (as pyenv 2.6 writes it, with this pyenv's paths).
        try h.write("home/.pyenv/libexec/pyenv-rehash", """
            #!/usr/bin/env bash
            set -e
            SHIM_PATH="${PYENV_ROOT}/shims"
            set -o noclobber
            { echo -n > "$SHIM_PATH/.pyenv-shim"; } 2>/dev/null || {
              ( t="$(TMPDIR="$SHIM_PATH" mktemp)" && rm "$t" ) 2>/dev/null || echo "pyenv: cannot rehash: $SHIM_PATH isn't writable" >&2
              exit 1
            }
            set +o noclobber
            trap 'rm -f "$SHIM_PATH/.pyenv-shim"' EXIT
            printf '#!/usr/bin/env bash\\nset -e\\nprogram="${0##*/}"\\nexport PYENV_ROOT="%s"\\nexec "%s/libexec/pyenv" exec "$program" "$@"\\n' \\
              "$PYENV_ROOT" "$PYENV_ROOT" > "$SHIM_PATH/.pyenv-shim"
            for f in "$PYENV_ROOT"/versions/*/bin/*; do
              cmp -s "$SHIM_PATH/.pyenv-shim" "$SHIM_PATH/${f##*/}" || cp "$SHIM_PATH/.pyenv-shim" "$SHIM_PATH/${f##*/}"
              chmod +x "$SHIM_PATH/${f##*/}"
            done

            """, mode: 0o755)
        let rehash = h.run([h.path("home/.pyenv/libexec/pyenv-rehash")],
                           environment: ["PATH": "/usr/bin:/bin", "HOME": home, "PYENV_ROOT": home + "/.pyenv"])
        guard rehash.status == 0, FileManager.default.isExecutableFile(atPath: h.path("home/.pyenv/shims/python3")) else {
            throw HarnessError(message: "setting up the shims failed: \(rehash)")
        }
        try h.write("home/.nvm/alias/default", "v20.0.0\n")
        try h.write("home/.nvm/nvm.sh", """
            nvm() { echo "nvm $*"; }
            NVM_DEFAULT=$(cat "$NVM_DIR/alias/default" 2>/dev/null)
            [ -n "$NVM_DEFAULT" ] && export PATH="$NVM_DIR/versions/node/$NVM_DEFAULT/bin:$PATH"

            """)
        try h.write("home/.bashrc", """
            case $- in *i*) ;; *) return;; esac
            HISTCONTROL=ignoreboth
            shopt -s histappend checkwinsize
            HISTSIZE=1000
            HISTFILESIZE=2000
            PS1='\\u@\\h:\\w\\$ '
            [ -f ~/.bash_aliases ] && . ~/.bash_aliases
            export PYENV_ROOT="$HOME/.pyenv"
            [[ -d $PYENV_ROOT/bin ]] && export PATH="$PYENV_ROOT/bin:$PATH"
            eval "$(pyenv init - --no-rehash)"
            export NVM_DIR="$HOME/.nvm"
            [ -s "$NVM_DIR/nvm.sh" ] && \\. "$NVM_DIR/nvm.sh"
            SHIM_CHECK="$(python3 -c 'print("ran")')"

            """)
        return home
    }

    /// The environment of a login: nothing that names a policy, HOME the prepared one.
    static func environment(home: String) -> [String: String] {
        ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TERM": "dumb", "LANG": "C.UTF-8", "USER": "dev"]
    }

    @Test("bash -i starts without a word on stderr, and only the history file is refused")
    func interactiveBashStartsCleanly() throws {
        let h = try Harness()
        let home = try Self.makeHome(h)
        #expect(!FileManager.default.fileExists(atPath: home + "/.config/agentgate/policy.yaml"))
        let command = ["bash", "-i", "-c", "echo \"shim $SHIM_CHECK\"; exit"]
        let supervised = try RunningProcess([Harness.supervisor, "-q", "--db", h.db, "--"] + command,
                                            directory: home + "/project", environment: Self.environment(home: home)).wait()
        let bare = try RunningProcess(command, directory: home + "/project", environment: Self.environment(home: home)).wait()
        #expect(bare.status == 0 && bare.stdout == "shim ran\n", "\(bare)")
        #expect(supervised.status == 0 && supervised.stdout == "shim ran\n", "\(supervised)")
        // Without a terminal bash says only that it has no job control, supervised or not.
        #expect(supervised.stderr == bare.stderr, "supervised:\n\(supervised.stderr)\nbare:\n\(bare.stderr)")
        #expect(!supervised.stderr.contains("denied") && !supervised.stderr.contains("pyenv"), "\(supervised.stderr)")
        // It is the built-in policy that decided, and it read the rc files, ran the shim and
        // made a temp file.
        let session = h.query("select policy_path from sessions").first?.first ?? ""
        #expect(session.contains("builtin"), "\(session)")
        let allowed = Set(h.query("select target from \(Harness.decisions) where decision = 'allow'").compactMap(\.first))
        for expected in [home + "/.bashrc", home + "/.pyenv/version", home + "/.pyenv/shims/python3"] {
            #expect(allowed.contains(expected), "\(expected) not in the audit")
        }
        #expect(allowed.contains { $0.hasPrefix("/tmp/tmp.") }, "no mktemp in the audit")
        // The one refusal is the history file, by the rule that says why; nothing was written.
        let refused = h.query("select action, target, rule_id from events where decision != 'allow'")
        #expect(!refused.isEmpty && refused.allSatisfy { $0 == ["fs_read", home + "/.bash_history", "shell-history"] }, "\(refused)")
        #expect((try? String(contentsOfFile: home + "/.bash_history", encoding: .utf8)) == "echo earlier\n")
    }

    @Test("under the built-in policy a new agent keeps its own state; git config and autostart stay the user's")
    func newAgentStateUnderBuiltInPolicy() throws {
        let h = try Harness()
        let home = try Self.makeHome(h)
        let script = """
            import os, pathlib
            for path in ["~/.config/mini-swe-agent/.env", "~/.local/state/some-agent/log.json",
                         "~/.config/git/config", "~/.config/autostart/x.desktop", "~/.config/mimeapps.list"]:
                target = pathlib.Path(os.path.expanduser(path))
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text("x")
                    print("wrote", path)
                except OSError as e:
                    print("refused", path, e.errno)
            """
        let expectedBare = """
            wrote ~/.config/mini-swe-agent/.env
            wrote ~/.local/state/some-agent/log.json
            wrote ~/.config/git/config
            wrote ~/.config/autostart/x.desktop
            wrote ~/.config/mimeapps.list

            """
        let expectedSupervised = """
            wrote ~/.config/mini-swe-agent/.env
            wrote ~/.local/state/some-agent/log.json
            refused ~/.config/git/config 13
            refused ~/.config/autostart/x.desktop 13
            refused ~/.config/mimeapps.list 13

            """
        let bareHome = try Self.makeHome(Harness("bareState"))
        let bare = try RunningProcess(["python3", "-c", script], directory: bareHome + "/project",
                                      environment: Self.environment(home: bareHome)).wait()
        #expect(bare.stdout == expectedBare, "\(bare)")
        let supervised = try RunningProcess([Harness.supervisor, "-q", "--db", h.db, "--", "python3", "-c", script],
                                            directory: home + "/project", environment: Self.environment(home: home)).wait()
        #expect(supervised.stdout == expectedSupervised, "\(supervised)")
        let rules = h.query("select rule_id from events where decision = 'deny' order by id").compactMap(\.first)
        #expect(rules == ["code-running-config", "session-autostart", "desktop-settings"], "\(rules)")
    }

    @Test("under the built-in policy a download piped into a shell doesn't run")
    func remoteScriptUnderBuiltInPolicy() throws {
        let h = try Harness()
        let home = try Self.makeHome(h)
        try h.mkdir("site")
        try h.write("site/install.sh", "echo PWNED\n")
        let port = Int.random(in: 20_000..<40_000)
        let server = try RunningProcess(["python3", "-m", "http.server", "--bind", "127.0.0.1", "\(port)"],
                                        directory: h.path("site"), environment: nil)
        // SIGKILL: the test runner's children start with most signals blocked (SIGTERM left
        // one server behind per run).
        defer {
            kill(server.pid, SIGKILL)
            _ = server.wait(timeout: 10)
        }
        let fetch = "for i in $(seq 50); do curl -fsS http://127.0.0.1:\(port)/install.sh >/dev/null 2>&1 && break; sleep 0.1; done"
        _ = h.bare(["sh", "-c", fetch])
        let command = ["bash", "-c", "curl -fsSL http://127.0.0.1:\(port)/install.sh | sh"]
        let bare = try RunningProcess(command, directory: home + "/project", environment: Self.environment(home: home)).wait()
        #expect(bare.stdout == "PWNED\n", "\(bare)")
        let supervised = try RunningProcess([Harness.supervisor, "-q", "--db", h.db, "--"] + command,
                                            directory: home + "/project", environment: Self.environment(home: home)).wait()
        #expect(!supervised.stdout.contains("PWNED"), "\(supervised)")
        #expect(supervised.status == 126, "\(supervised)")
        #expect(supervised.stderr.contains("(denied by the policy: rule remote-scripts: running a downloaded script runs code nobody reviewed)"),
                "\(supervised.stderr)")
    }

    @Test("rc files, history and shims are not the agent's to write; credentials stay unreadable")
    func shimsStayTheUsers() throws {
        let h = try Harness()
        let home = try Self.makeHome(h)
        let shim = try String(contentsOfFile: home + "/.pyenv/shims/python3", encoding: .utf8)
        let script = """
            for f in ~/.bashrc ~/.profile ~/.inputrc ~/.bash_history ~/.pyenv/shims/python3 ~/.nvm/nvm.sh; do
              (echo planted >> "$f") 2>/dev/null && echo "wrote $f"
            done
            cat ~/.ssh/id_rsa 2>/dev/null
            PYENV_ROOT=~/.pyenv ~/.pyenv/bin/pyenv rehash
            echo "rehash $?"
            """
        let supervised = try RunningProcess([Harness.supervisor, "-q", "--db", h.db, "--", "bash", "-c", script],
                                            directory: home + "/project", environment: Self.environment(home: home)).wait()
        #expect(supervised.stdout == "rehash 1\n", "\(supervised)")
        #expect(supervised.stderr.contains("isn't writable"), "\(supervised)")
        #expect((try? String(contentsOfFile: home + "/.pyenv/shims/python3", encoding: .utf8)) == shim)
        #expect(!FileManager.default.fileExists(atPath: home + "/.pyenv/shims/.pyenv-shim"))
        let rules = Dictionary(h.query("select target, rule_id from events where decision = 'deny'").map { ($0[0], $0[1]) },
                               uniquingKeysWith: { first, _ in first })
        #expect(rules[home + "/.bashrc"] == "shell-startup" && rules[home + "/.inputrc"] == "shell-startup", "\(rules)")
        #expect(rules[home + "/.bash_history"] == "shell-history", "\(rules)")
        #expect(rules[home + "/.pyenv/shims/python3"] == "version-managers", "\(rules)")
        #expect(rules[home + "/.pyenv/shims/.pyenv-shim"] == "version-managers", "\(rules)")
        #expect(rules[home + "/.nvm/nvm.sh"] == "version-managers", "\(rules)")
        #expect(rules[home + "/.ssh/id_rsa"] == "ssh-keys", "\(rules)")
    }

    @Test("mkdir of an existing directory answers EEXIST without a decision, as the kernel does")
    func mkdirOfExistingDirectory() throws {
        let h = try Harness()
        try h.mkdir("outside/existing")
        try h.mkdir("project")
        let policy = try h.policy("""
            default: allow
            rules:
              - match: {action: fs_write, target_glob: "\(h.dir)/outside/**"}
                decision: deny
            """)
        let script = """
            import errno, os, sys
            for path in sys.argv[1:]:
                try:
                    os.mkdir(path); print("created")
                except OSError as e:
                    print(errno.errorcode[e.errno])
            """
        let paths = [h.path("outside/existing"), h.path("outside/new"), h.path("project/new")]
        let result = h.supervised(["python3", "-c", script] + paths, policy: policy)
        #expect(result.stdout == "EEXIST\nEACCES\ncreated\n", "\(result)")
        #expect(!h.exists("outside/new"))
        // mkdir -p walks through it; Node-style recursive mkdirs, which stop at EACCES, too.
        let mkdirP = h.supervised(["mkdir", "-p", h.path("outside/existing")], policy: policy, extra: ["-q"])
        #expect(mkdirP.status == 0 && mkdirP.stderr.isEmpty, "\(mkdirP)")
        let denials = h.query("select target from events where decision = 'deny'").compactMap(\.first)
        #expect(denials == [h.path("outside/new")], "\(denials)")
    }
}
