/// The user's home directory, for recognising and abbreviating paths under it.
struct HomeDirectory {
    /// Clean, without a trailing slash; nil when unknown or "/".
    let path: String?

    init(_ home: String?) {
        guard let home, home.hasPrefix("/") else {
            path = nil
            return
        }
        let cleaned = PathLexical.clean(home)
        path = cleaned == "/" ? nil : cleaned
    }

    /// `path` relative to home ("" for home itself), or nil outside it.
    func relative(_ path: String) -> Substring? {
        guard let home = self.path, path.hasPrefix(home) else { return nil }
        let rest = path.dropFirst(home.count)
        if rest.isEmpty { return rest }
        guard rest.hasPrefix("/") else { return nil }
        return rest.dropFirst()
    }

    /// "~/x" for a path under home, the path unchanged otherwise.
    func abbreviate(_ path: String) -> String {
        guard let rest = relative(path) else { return IntentText.display(path) }
        return IntentText.display(rest.isEmpty ? "~" : "~/" + rest)
    }
}

/// Files whose reading exposes secrets.
enum CredentialPaths {
    /// Directories under home whose whole content is secret.
    private static let homeDirectories = [".ssh", ".aws", ".gnupg", ".config/gcloud", ".azure", ".password-store"]
    /// Single files under home.
    private static let homeFiles: Set<String> = [
        ".kube/config", ".docker/config.json", ".netrc", ".git-credentials", ".npmrc", ".pypirc",
        ".config/gh/hosts.yml",
    ]
    /// Private key file names recognised anywhere (not the `.pub` halves).
    private static let keyNames: Set<String> = [
        "id_rsa", "id_ed25519", "id_ecdsa", "id_dsa", "id_ecdsa_sk", "id_ed25519_sk",
    ]
    /// Committed templates of `.env` files, which hold no secrets.
    private static let environmentTemplates: Set<String> = [
        ".env.example", ".env.sample", ".env.template", ".env.dist", ".env.defaults",
    ]
    /// Where public CA certificates live; their `.pem` files are not private keys.
    private static let certificateDirectories = [
        "/etc/ssl/certs/", "/etc/pki/ca-trust/", "/etc/pki/tls/certs/", "/etc/ca-certificates/",
        "/usr/share/ca-certificates/", "/usr/local/share/ca-certificates/", "/usr/lib/ssl/certs/",
    ]

    static func contains(_ path: String, home: HomeDirectory) -> Bool {
        let name = ExecDetails.basename(path)
        if name == ".env" || (name.hasPrefix(".env.") && !environmentTemplates.contains(name)) { return true }
        if ["/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-"].contains(path) { return true }
        if keyNames.contains(name) { return true }
        if name.hasSuffix(".pem") || name.hasSuffix(".key") {
            let isCertificateBundle = certificateDirectories.contains { path.hasPrefix($0) }
                || name.contains("cacert") || name.contains("ca-bundle") || name.contains("ca-certificates")
                || path == "/etc/ssl/cert.pem"
            if !isCertificateBundle { return true }
        }
        guard let relative = home.relative(path), !relative.isEmpty else { return false }
        for directory in homeDirectories where relative == directory || relative.hasPrefix(directory + "/") {
            return true
        }
        if homeFiles.contains(String(relative)) { return true }
        if relative.hasPrefix(".cargo/credentials"), !relative.dropFirst(".cargo/".count).contains("/") { return true }
        return false
    }
}
