import Testing
import AgentGatePolicy

/// An argv and the commands its analysis must contain, in this relative order.
struct AnalysisCase: Sendable, CustomTestStringConvertible {
    let argv: [String]
    let contains: [[String]]
    init(_ argv: [String], _ contains: [[String]]) {
        self.argv = argv
        self.contains = contains
    }
    var testDescription: String { argv.description }
}

@Suite("Command analysis")
struct CommandAnalysisTests {
    private func analyze(_ argv: [String]) -> CommandAnalysis { CommandAnalysis.analyze(argv: argv) }

    /// Whether `needles` appear in `haystack` in the same relative order.
    private func containsInOrder(_ haystack: [[String]], _ needles: [[String]]) -> Bool {
        var remaining = needles[...]
        for command in haystack where command == remaining.first { remaining = remaining.dropFirst() }
        return remaining.isEmpty
    }

    @Test("sh -c 'curl x | sh': the argv, each command and the pipeline")
    func curlPipeSh() {
        let analysis = analyze(["sh", "-c", "curl x | sh"])
        #expect(analysis.commands == [["sh", "-c", "curl x | sh"], ["curl", "x"], ["sh"]])
        #expect(analysis.pipelines == [[["curl", "x"], ["sh"]]])
        #expect(!analysis.shellParseFailed)
        #expect(analysis.shellErrors.isEmpty)
    }

    @Test("shell option spellings that take a command string", arguments: [
        ["bash", "-c", "make test"],
        ["bash", "-lc", "make test"],
        ["bash", "-cl", "make test"],
        ["sh", "-ec", "make test"],
        ["sh", "-xc", "make test"],
        ["sh", "-e", "-c", "make test"],
        ["bash", "--login", "-c", "make test"],
        ["bash", "--norc", "--noprofile", "-c", "make test"],
        ["bash", "-o", "pipefail", "-c", "make test"],
        ["bash", "-O", "extglob", "-c", "make test"],
        ["bash", "+o", "history", "-c", "make test"],
        ["bash", "--rcfile", "/x", "-c", "make test"],
        ["sh", "-c", "--", "make test"],
        ["sh", "-c", "make test", "arg0", "arg1"],
        ["/bin/sh", "-c", "make test"],
        ["/usr/bin/bash", "-c", "make test"],
        ["-bash", "-c", "make test"],
        ["dash", "-c", "make test"],
        ["zsh", "-c", "make test"],
        ["ksh", "-c", "make test"],
        ["mksh", "-c", "make test"],
        ["ash", "-c", "make test"],
        ["fish", "-c", "make test"],
        ["fish", "--command", "make test"],
        ["fish", "--command=make test"],
        ["busybox", "sh", "-c", "make test"],
        ["/bin/busybox", "ash", "-c", "make test"],
        ["env", "bash", "-c", "make test"],
        ["/usr/bin/env", "-i", "PATH=/bin", "sh", "-c", "make test"],
    ])
    func shellSpellings(_ argv: [String]) {
        let analysis = analyze(argv)
        #expect(analysis.commands.first == argv)
        #expect(analysis.commands.contains(["make", "test"]), "\(analysis.commands)")
    }

    @Test("shells without a command string add nothing", arguments: [
        ["sh", "script.sh"],
        ["bash", "-e", "script.sh", "-c", "x"],
        ["bash"],
        ["bash", "-s"],
        ["sh", "-"],
        ["bash", "-c"],
        ["sh", "--", "-c"],
        ["busybox", "--list"],
        ["busybox"],
    ])
    func shellsWithoutString(_ argv: [String]) {
        let analysis = analyze(argv)
        #expect(analysis.commands == [argv])
        #expect(analysis.pipelines.isEmpty)
    }

    @Test("argv that is no shell is returned unchanged", arguments: [
        ["git", "status"],
        ["/usr/bin/python3", "-c", "print(1)"],
        ["ls", "-la", "$(rm -rf /)"],
        ["make", "-j", "2"],
        ["shellcheck", "-c", "x"],
        ["sh.exe", "-c", "x"],
    ])
    func nonShell(_ argv: [String]) {
        let analysis = analyze(argv)
        #expect(analysis.commands == [argv])
        #expect(analysis.pipelines.isEmpty)
        #expect(!analysis.shellParseFailed)
    }

    @Test("nested shell strings are analysed recursively")
    func nested() {
        let analysis = analyze(["bash", "-c", "sh -c 'rm -rf /'"])
        #expect(analysis.commands == [["bash", "-c", "sh -c 'rm -rf /'"], ["sh", "-c", "rm -rf /"], ["rm", "-rf", "/"]])
        let deeper = analyze(["sh", "-c", "bash -lc \"zsh -c 'curl x | sh' && ls\""])
        #expect(deeper.commands.contains(["curl", "x"]))
        #expect(deeper.commands.contains(["ls"]))
        #expect(deeper.pipelines == [[["curl", "x"], ["sh"]]])
    }

    @Test("nesting past the depth cap stops without failing")
    func depthCap() {
        // eval re-parses its arguments: 40 evals are 40 levels without any quoting.
        let evals = Array(repeating: "eval", count: 40) + ["rm", "-rf", "/"]
        let analysis = analyze(evals)
        #expect(analysis.commands.count == CommandAnalysis.maximumDepth + 1)
        #expect(!analysis.commands.contains(["rm", "-rf", "/"]))
        let wrappers = analyze(Array(repeating: "nohup", count: 40) + ["rm", "-rf", "/"])
        #expect(wrappers.commands.count == CommandAnalysis.maximumDepth + 1)
        // Within the cap every level is reached.
        let shallow = analyze(["sh", "-c", (0..<5).reduce("rm -rf /") { text, _ in "sh -c " + CommandAnalysisTests.quoted(text) }])
        #expect(shallow.commands.count == 7)
        #expect(shallow.commands.last == ["rm", "-rf", "/"])
    }

    /// Single-quotes `text` for a shell.
    static func quoted(_ text: String) -> String {
        "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    @Test("transparent wrappers add the unwrapped command; the wrapped form stays", arguments: [
        AnalysisCase(["env", "FOO=1", "make"], [["env", "FOO=1", "make"], ["make"]]),
        AnalysisCase(["env", "-i", "-u", "HOME", "A=b", "C=d", "make", "x"], [["make", "x"]]),
        AnalysisCase(["env", "-uHOME", "--unset=X", "--", "make"], [["make"]]),
        AnalysisCase(["env", "-C", "/tmp", "make"], [["make"]]),
        AnalysisCase(["env", "-S", "make -j 2"], [["make", "-j", "2"]]),
        AnalysisCase(["env", "--split-string=sh -c 'ls'"], [["sh", "-c", "ls"], ["ls"]]),
        AnalysisCase(["exec", "-a", "name", "make"], [["make"]]),
        AnalysisCase(["command", "-p", "make"], [["make"]]),
        AnalysisCase(["builtin", "echo", "x"], [["echo", "x"]]),
        AnalysisCase(["nohup", "make"], [["make"]]),
        AnalysisCase(["nohup", "--", "make"], [["make"]]),
        AnalysisCase(["time", "-p", "make"], [["make"]]),
        AnalysisCase(["time", "-f", "%e", "make"], [["make"]]),
        AnalysisCase(["nice", "make"], [["make"]]),
        AnalysisCase(["nice", "-n", "10", "make"], [["make"]]),
        AnalysisCase(["nice", "-n10", "make"], [["make"]]),
        AnalysisCase(["nice", "-10", "make"], [["make"]]),
        AnalysisCase(["timeout", "5", "make"], [["make"]]),
        AnalysisCase(["timeout", "-s", "KILL", "-k", "1", "5s", "make"], [["make"]]),
        AnalysisCase(["timeout", "--signal=TERM", "--preserve-status", "1m", "make"], [["make"]]),
        AnalysisCase(["stdbuf", "-oL", "-e", "0", "make"], [["make"]]),
        AnalysisCase(["xargs", "rm"], [["rm"]]),
        AnalysisCase(["xargs", "-0", "-n", "1", "-P4", "rm", "-f"], [["rm", "-f"]]),
        AnalysisCase(["xargs", "-I", "{}", "sh", "-c", "rm {}"], [["sh", "-c", "rm {}"], ["rm", "{}"]]),
        AnalysisCase(["setsid", "make"], [["make"]]),
        AnalysisCase(["busybox", "ls", "-c", "x"], [["ls", "-c", "x"]]),
        AnalysisCase(["ionice", "-c", "3", "make"], [["make"]]),
        AnalysisCase(["env", "nohup", "timeout", "5", "nice", "make"], [
            ["env", "nohup", "timeout", "5", "nice", "make"], ["nohup", "timeout", "5", "nice", "make"],
            ["timeout", "5", "nice", "make"], ["nice", "make"], ["make"],
        ]),
        AnalysisCase(["find", ".", "-name", "*.o", "-exec", "rm", "-f", "{}", ";", "-execdir", "sh", "-c", "ls", "+"], [
            ["rm", "-f", "{}"], ["sh", "-c", "ls"], ["ls"],
        ]),
    ])
    func wrappers(_ testCase: AnalysisCase) {
        let analysis = analyze(testCase.argv)
        #expect(analysis.commands.first == testCase.argv)
        #expect(containsInOrder(analysis.commands, testCase.contains), "\(analysis.commands)")
    }

    @Test("wrappers that run nothing add nothing", arguments: [
        ["env"],
        ["env", "A=1"],
        ["env", "-i"],
        ["command", "-v", "make"],
        ["command", "-V", "make"],
        ["nohup"],
        ["timeout", "5"],
        ["xargs"],
        ["nice", "-n", "5"],
        ["find", ".", "-name", "x"],
    ])
    func emptyWrappers(_ argv: [String]) {
        #expect(analyze(argv).commands == [argv])
    }

    @Test("wrappers inside shell strings are unwrapped too, and leading assignments removed")
    func wrappersInStrings() {
        let analysis = analyze(["sh", "-c", "FOO=1 BAR=2 env -i nohup rm -rf /tmp/x"])
        #expect(analysis.commands == [
            ["sh", "-c", "FOO=1 BAR=2 env -i nohup rm -rf /tmp/x"], ["env", "-i", "nohup", "rm", "-rf", "/tmp/x"],
            ["nohup", "rm", "-rf", "/tmp/x"], ["rm", "-rf", "/tmp/x"],
        ])
        let assignmentOnly = analyze(["sh", "-c", "A=$(id) ; ls"])
        #expect(assignmentOnly.commands == [["sh", "-c", "A=$(id) ; ls"], ["id"], ["ls"]])
    }

    @Test("duplicates are removed, first occurrence kept")
    func duplicates() {
        let analysis = analyze(["sh", "-c", "ls; ls; make && ls"])
        #expect(analysis.commands == [["sh", "-c", "ls; ls; make && ls"], ["ls"], ["make"]])
        let pipelines = analyze(["sh", "-c", "a | b; a | b; sh -c 'a | b'"])
        #expect(pipelines.pipelines == [[["a"], ["b"]]])
    }

    @Test("pipelines: only multi-stage ones, each stage as its words")
    func pipelines() {
        let analysis = analyze(["bash", "-c", "a; b | c -x | d && e"])
        #expect(analysis.pipelines == [[["b"], ["c", "-x"], ["d"]]])
        #expect(analyze(["bash", "-c", "a; b"]).pipelines.isEmpty)
    }

    @Test("other shell-string carriers: eval, su -c, sudo, here-documents, echo | sh")
    func otherCarriers() {
        #expect(analyze(["sh", "-c", "eval \"rm -rf /tmp/a\""]).commands.contains(["rm", "-rf", "/tmp/a"]))
        #expect(analyze(["eval", "rm", "-rf", "/tmp/b"]).commands.contains(["rm", "-rf", "/tmp/b"]))
        #expect(analyze(["su", "-c", "rm -rf /tmp/c", "root"]).commands.contains(["rm", "-rf", "/tmp/c"]))
        #expect(analyze(["su", "root", "--command=rm -rf /tmp/d"]).commands.contains(["rm", "-rf", "/tmp/d"]))
        let sudo = analyze(["sudo", "-u", "bob", "bash", "-c", "rm -rf /tmp/e"])
        #expect(sudo.commands == [["sudo", "-u", "bob", "bash", "-c", "rm -rf /tmp/e"], ["rm", "-rf", "/tmp/e"]])
        #expect(analyze(["doas", "env", "sh", "-c", "rm -rf /tmp/f"]).commands.contains(["rm", "-rf", "/tmp/f"]))
        let hereDocument = analyze(["bash", "-c", "bash <<'EOF'\nrm -rf /tmp/g\nEOF"])
        #expect(hereDocument.commands.contains(["rm", "-rf", "/tmp/g"]))
        #expect(analyze(["bash", "-c", "sh -s <<< 'rm -rf /tmp/h'"]).commands.contains(["rm", "-rf", "/tmp/h"]))
        #expect(analyze(["bash", "-c", "cat <<EOF | sudo sh\nrm -rf /tmp/i\nEOF"]).commands.contains(["rm", "-rf", "/tmp/i"]))
        #expect(analyze(["sh", "-c", "echo 'rm -rf /tmp/j' | bash"]).commands.contains(["rm", "-rf", "/tmp/j"]))
        #expect(analyze(["sh", "-c", "printf 'rm -rf /tmp/k\\n' | sh"]).commands.contains(["rm", "-rf", "/tmp/k"]))
        #expect(analyze(["sh", "-c", "trap 'rm -rf /tmp/o' EXIT; true"]).commands.contains(["rm", "-rf", "/tmp/o"]))
        #expect(analyze(["bash", "-c", "alias x='rm -rf /tmp/p' y='ls'"]).commands.contains(["rm", "-rf", "/tmp/p"]))
        #expect(analyze(["watch", "-n", "1", "rm -rf /tmp/q"]).commands.contains(["rm", "-rf", "/tmp/q"]))
        #expect(analyze(["sh", "-c", "{rm,-rf,/tmp/r}"]).commands.contains(["rm", "-rf", "/tmp/r"]))
        #expect(analyze(["busybox", "rm", "-rf", "/tmp/s"]).commands.contains(["rm", "-rf", "/tmp/s"]))
        #expect(!analyze(["sh", "-c", "trap - EXIT; trap '' INT"]).commands.contains([""]))
        #expect(analyze(["sh", "-c", "echo {a,b}"]).commands == [["sh", "-c", "echo {a,b}"], ["echo", "{a,b}"]])
        // Here-documents fed to a non-shell, or to a shell running a file, are data.
        #expect(!analyze(["sh", "-c", "cat <<EOF\nrm -rf /tmp/l\nEOF"]).commands.contains(["rm", "-rf", "/tmp/l"]))
        #expect(!analyze(["sh", "-c", "bash x.sh <<EOF\nrm -rf /tmp/m\nEOF"]).commands.contains(["rm", "-rf", "/tmp/m"]))
        #expect(!analyze(["sh", "-c", "echo 'rm -rf /tmp/n' | grep x"]).commands.contains(["rm", "-rf", "/tmp/n"]))
    }

    @Test("a shell string that does not parse sets shellParseFailed but keeps its commands")
    func parseFailure() {
        let analysis = analyze(["sh", "-c", "rm -rf /; echo \"unterminated"])
        #expect(analysis.shellParseFailed)
        #expect(analysis.shellErrors.count == 1)
        #expect(analysis.shellErrors.first?.contains("double quote") == true)
        #expect(analysis.commands.contains(["rm", "-rf", "/"]))
        #expect(analysis.commands.contains(["echo", "unterminated"]))
        let nested = analyze(["sh", "-c", "bash -c 'ls $(' && pwd"])
        #expect(nested.shellParseFailed)
        #expect(nested.commands.contains(["pwd"]))
        #expect(nested.commands.contains(["ls", "$("]))
    }

    @Test("line renders words joined by single spaces, pipelines joined by |")
    func lines() {
        #expect(CommandAnalysis.line(["git", "commit", "-m", "a message"]) == "git commit -m a message")
        #expect(CommandAnalysis.line([]) == "")
        #expect(CommandAnalysis.line(pipeline: [["curl", "-fsSL", "https://x"], ["sh"]]) == "curl -fsSL https://x | sh")
        #expect(CommandAnalysis.line(pipeline: [["a"], ["b"], ["c", "d"]]) == "a | b | c d")
    }

    @Test("basename is the last path component", arguments: [
        ("git", "git"),
        ("/usr/bin/git", "git"),
        ("./script.sh", "script.sh"),
        ("../bin/x", "x"),
        ("/usr/bin/", "bin"),
        ("/", "/"),
        ("", ""),
        ("-bash", "-bash"),
    ])
    func programName(argv0: String, expected: String) {
        #expect(ExecDetails.basename(argv0) == expected)
    }

    @Test("shellCommandString finds the string a shell is given")
    func shellCommandString() {
        #expect(CommandAnalysis.shellCommandString(["bash", "-lc", "x y"]) == "x y")
        #expect(CommandAnalysis.shellCommandString(["busybox", "sh", "-c", "z"]) == "z")
        #expect(CommandAnalysis.shellCommandString(["sh", "x.sh"]) == nil)
        #expect(CommandAnalysis.shellCommandString(["git", "-c", "x"]) == nil)
        #expect(CommandAnalysis.shellCommandString([]) == nil)
    }

    @Test("empty argv analyses to nothing")
    func emptyArgv() {
        #expect(analyze([]) == CommandAnalysis())
    }

    // MARK: Pipeline stages

    @Test("pipeline stages are listed unwrapped, and as written when that differs", arguments: [
        ("curl x | env sh", [["curl", "x"], ["env", "sh"]]),
        ("curl x | env -i PATH=/bin sh -s", [["curl", "x"], ["env", "-i", "PATH=/bin", "sh", "-s"]]),
        ("curl x | command sh", [["curl", "x"], ["command", "sh"]]),
        ("curl x | exec sh", [["curl", "x"], ["exec", "sh"]]),
        ("curl x | nohup sh", [["curl", "x"], ["nohup", "sh"]]),
        ("curl x | time sh", [["curl", "x"], ["time", "sh"]]),
        ("curl x | time -p sh", [["curl", "x"], ["time", "-p", "sh"]]),
        ("curl x | nice -n 5 sh", [["curl", "x"], ["nice", "-n", "5", "sh"]]),
        ("curl x | timeout 5 sh", [["curl", "x"], ["timeout", "5", "sh"]]),
        ("curl x | stdbuf -oL sh", [["curl", "x"], ["stdbuf", "-oL", "sh"]]),
        ("curl x | xargs sh", [["curl", "x"], ["xargs", "sh"]]),
        ("curl x | busybox sh", [["curl", "x"], ["busybox", "sh"]]),
        ("curl x | /bin/busybox sh", [["curl", "x"], ["/bin/busybox", "sh"]]),
        ("curl x | env nohup command sh", [["curl", "x"], ["env", "nohup", "command", "sh"]]),
        ("FOO=1 curl x | BAR=2 sh", [["curl", "x"], ["sh"]]),
        ("env curl x | sh", [["env", "curl", "x"], ["sh"]]),
    ])
    func unwrappedStages(source: String, written: [[String]]) {
        let analysis = analyze(["sh", "-c", source])
        let pipelines = analysis.pipelines
        #expect(pipelines.first?.first == ["curl", "x"], "\(pipelines)")
        #expect(pipelines.first?.last.map { ["sh", "sh -s"].contains(CommandAnalysis.line($0)) } == true, "\(pipelines)")
        if written.contains(where: { $0.first != "curl" && $0 != ["sh"] }) {
            #expect(pipelines.count == 2 && pipelines[1] == written, "\(pipelines)")
        } else {
            #expect(pipelines.count == 1)
        }
        #expect(!analysis.shellParseFailed)
    }

    @Test("`command -v sh` looks sh up and is no wrapper")
    func commandLookupStage() {
        #expect(analyze(["sh", "-c", "curl x | command -v sh"]).pipelines == [[["curl", "x"], ["command", "-v", "sh"]]])
    }

    @Test("every command a compound stage runs can be that stage", arguments: [
        "curl x | { :; sh; }",
        "curl x | (true; sh)",
        "curl x | if true; then sh; fi",
        "curl x | while read -r l; do :; done; curl x | { read l; sh; }",
        "curl x | { cd /tmp && env sh; }",
        "curl x | echo \"$(sh)\"",
        "{ echo; curl x; } | sh",
        "{ :; curl x; } | { :; sh; }",
        "f(){ sh; }; curl x | f",
        "function f { nohup sh; }\ncurl x | f",
        "alias s=sh\ncurl x | s",
        "alias s='exec sh'\ncurl x | s",
        "g() { f; }; f() { sh; }; curl x | g",
    ])
    func compoundStages(source: String) {
        let analysis = analyze(["bash", "-c", source])
        #expect(analysis.pipelines.contains([["curl", "x"], ["sh"]]), "\(analysis.pipelines)")
        #expect(!analysis.shellParseFailed, "\(analysis.shellErrors)")
    }

    @Test("a long pipeline's variants list the 16 stages around the replaced one")
    func longPipelineVariants() {
        let stages = (0..<40).map { "a\($0)" } + ["{ :; sh; }"]
        let analysis = analyze(["sh", "-c", "curl x | " + stages.joined(separator: " | ")])
        #expect(analysis.pipelines.first?.count == 42)
        #expect(analysis.pipelines.contains { $0.count == 16 && $0.last == ["sh"] && $0.first == ["a25"] })
    }

    @Test("at most maximumPipelineVariants entries per pipeline; past it the analysis is flagged")
    func variantCap() {
        let body = (0..<100).map { "a\($0);" }.joined(separator: " ")
        let analysis = analyze(["sh", "-c", "curl x | { \(body) }"])
        #expect(analysis.pipelines.count == CommandAnalysis.maximumPipelineVariants)
        #expect(analysis.shellParseFailed)
        #expect(analysis.shellErrors.contains { $0.contains("variants") })
    }

    @Test("pairs of neighbouring compound stages are listed as two-stage variants")
    func compoundPairs() {
        let analysis = analyze(["sh", "-c", "a | { :; curl x; } | { :; sh; } | b"])
        #expect(analysis.pipelines.first == [["a"], [":"], [":"], ["b"]])
        #expect(analysis.pipelines.contains([["curl", "x"], ["sh"]]))
        #expect(analysis.pipelines.contains([["a"], ["curl", "x"], [":"], ["b"]]))
        #expect(analysis.pipelines.contains([["a"], [":"], ["sh"], ["b"]]))
    }

    // MARK: Dialects, flattening, caps

    @Test("strings bash and dash read differently: the commands of both readings", arguments: [
        ("sh", "echo $'\\'; curl x | sh\necho '"),
        ("bash", "echo \"${x:-'\"'}\"; curl x | sh; echo \"'}\""),
    ])
    func dialects(shell: String, source: String) {
        let analysis = analyze([shell, "-c", source])
        #expect(analysis.commands.contains(["curl", "x"]), "\(analysis.commands)")
        #expect(analysis.pipelines.contains([["curl", "x"], ["sh"]]))
    }

    @Test("commands nested past the parser's cap are analysed, and the nesting flagged")
    func flattenedNesting() {
        let source = String(repeating: "( ", count: 40) + "curl x | env sh" + String(repeating: " )", count: 40)
        let analysis = analyze(["sh", "-c", source])
        #expect(analysis.commands.contains(["curl", "x"]))
        #expect(analysis.pipelines.contains([["curl", "x"], ["sh"]]))
        #expect(analysis.shellParseFailed)
        #expect(analysis.shellErrors.contains { $0.contains("nesting") })
    }

    @Test("a shell string past maximumScriptLength is cut at a line break and flagged")
    func truncation() {
        let line = "echo one two three four five six seven eight nine ten\n"
        let padding = String(repeating: line, count: CommandAnalysis.maximumScriptLength / line.utf8.count + 10)
        let analysis = analyze(["sh", "-c", "ls /first\n" + padding + "rm -rf /late"])
        #expect(analysis.commands.contains(["ls", "/first"]))
        #expect(!analysis.commands.contains(["rm", "-rf", "/late"]))
        #expect(analysis.shellParseFailed)
        #expect(analysis.shellErrors.contains { $0.contains("truncated") })
        #expect(!analysis.commands.contains { $0.first == "echo" && $0.count != 11 }, "no half line")
    }

    @Test("commands and pipelines are capped, and the cap flagged")
    func outputCaps() {
        let commands = analyze(["sh", "-c", (0..<10_000).map { "c\($0)" }.joined(separator: ";")])
        #expect(commands.commands.count == CommandAnalysis.maximumCommands)
        #expect(commands.shellParseFailed)
        let pipelines = analyze(["sh", "-c", (0..<1_100).map { "a\($0) | b" }.joined(separator: ";")])
        #expect(pipelines.pipelines.count == CommandAnalysis.maximumPipelines)
        #expect(pipelines.shellParseFailed)
    }

    @Test("basename works on bytes and keeps multi-byte names whole", arguments: [
        ("/opt/日本/ツール", "ツール"), ("é", "é"), ("a//", "a"), ("//", "/"), ("/a/b//", "b"),
    ])
    func programNameBytes(argv0: String, expected: String) {
        #expect(ExecDetails.basename(argv0) == expected)
    }

    @Test("a 1 MB shell string is analysed quickly")
    func largeString() {
        let line = "cd /tmp && FOO=1 make -j2 2>&1 | tee log; git status --short\n"
        let script = String(repeating: line, count: 1_000_000 / line.utf8.count + 1)
        var analysis = analyze(["true"])
        let best = bestTime(of: 3) { analysis = analyze(["bash", "-c", script]) }
        #expect(best < .seconds(2), "took \(best)") // bounds blow-up, not speed: the machine may be busy
        #expect(analysis.commands.count == 5)
        #expect(analysis.pipelines == [[["make", "-j2"], ["tee", "log"]]])
    }
}
