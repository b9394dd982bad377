import Testing
import AgentGatePolicy

@Suite("audit: and webhooks: in the policy")
struct PolicyOutputsTests {
    private func parse(_ yaml: String) throws(PolicyLoadError) -> Policy {
        try Policy.parse(yaml: yaml, source: "/etc/agentgate/policy.yaml", variables: testVariables)
    }

    private func failure(_ yaml: String) -> PolicyLoadError? {
        do throws(PolicyLoadError) {
            _ = try parse(yaml)
            return nil
        } catch {
            return error
        }
    }

    @Test("nothing set: no journal, no webhooks")
    func absent() throws {
        #expect(try parse("default: allow\n").outputs == PolicyOutputs())
    }

    @Test("audit: {journal: true}")
    func journal() throws {
        #expect(try parse("default: allow\naudit: {journal: true}\n").outputs.journal)
        #expect(try !parse("default: allow\naudit: {journal: false}\n").outputs.journal)
        #expect(failure("default: allow\naudit: {journal: yes}\n")?.message.contains("true or false") == true)
        let unknown = failure("default: allow\naudit: {jornal: true}\n")
        #expect(unknown?.message == "unknown key \"jornal\" in audit; expected one of reads, journal")
        #expect(unknown?.line == 2)
    }

    @Test("webhooks: url, events and where the secret is")
    func webhooks() throws {
        let policy = try parse("""
            default: allow
            webhooks:
              - url: http://127.0.0.1:8080/hook
                events: [deny, kill]
                secret_file: hook.key
              - url: http://hooks.example
                secret_env: HOOK_SECRET
            """)
        #expect(policy.outputs.webhooks == [
            Webhook(endpoint: HTTPEndpoint(host: "127.0.0.1", port: 8080, path: "/hook"), events: [.deny, .kill],
                    secret: .file("/etc/agentgate/hook.key")),
            Webhook(endpoint: HTTPEndpoint(host: "hooks.example", port: 80, path: "/"), events: Set(WebhookEvent.allCases),
                    secret: .environment("HOOK_SECRET")),
        ])
    }

    @Test("webhook mistakes are errors with their position")
    func webhookErrors() {
        let cases: [(String, String)] = [
            ("webhooks:\n  - url: https://h/x\n    secret_env: K\n", "https is not supported"),
            ("webhooks:\n  - url: ftp://h/x\n    secret_env: K\n", "expected an http:// URL"),
            ("webhooks:\n  - url: http://h:99999/\n    secret_env: K\n", "is not a port"),
            ("webhooks:\n  - url: http://h/\n", "needs secret_file or secret_env"),
            ("webhooks:\n  - secret_env: K\n", "needs a url"),
            ("webhooks:\n  - url: http://h/\n    secret: hunter2\n", "never written in the policy"),
            ("webhooks:\n  - url: http://h/\n    secret_env: K\n    secret_file: f\n", "not both"),
            ("webhooks:\n  - url: http://h/\n    secret_env: K\n    events: [deny, allow]\n", "unknown webhook event \"allow\""),
            ("webhooks:\n  - url: http://h/\n    secret_env: K\n    retries: 3\n", "unknown key \"retries\" in webhook"),
            ("webhooks: http://h/\n", "expected \"webhooks\" to be a list"),
        ]
        for (yaml, fragment) in cases {
            let error = failure("default: allow\n" + yaml)
            #expect(error?.message.contains(fragment) == true, "\(yaml): \(String(describing: error))")
            #expect((error?.line ?? 0) >= 2)
        }
    }

    @Test("HTTP endpoints: ports, paths, IPv6")
    func endpoints() throws {
        #expect(try HTTPEndpoint.parse("http://collector:4318", defaultPort: 4318) == HTTPEndpoint(host: "collector", port: 4318, path: "/"))
        #expect(try HTTPEndpoint.parse("http://[::1]:4318/v1/logs") == HTTPEndpoint(host: "::1", port: 4318, path: "/v1/logs"))
        #expect(try HTTPEndpoint.parse("HTTP://h/a?b=c#frag") == HTTPEndpoint(host: "h", port: 80, path: "/a?b=c"))
        #expect(throws: HTTPEndpoint.ParseError.self) { try HTTPEndpoint.parse("http://user:pw@h/") }
        #expect(throws: HTTPEndpoint.ParseError.self) { try HTTPEndpoint.parse("http:///x") }
        #expect(throws: HTTPEndpoint.ParseError.self) { try HTTPEndpoint.parse("http://h/a b") }
    }
}
