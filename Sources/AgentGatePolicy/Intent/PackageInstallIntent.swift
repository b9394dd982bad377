enum PackageInstall {
    /// How one installer's arguments name packages.
    struct Installer {
        var noun: String
        var pluralNoun: String
        /// The text when no package is named ("install npm dependencies").
        var dependencies: String?
        /// Options taking a value (the next word, or attached after "=" or, for "-x", directly).
        var valued: Set<String> = []
        /// Valued options whose value is a requirements source ("-r req.txt").
        var sources: Set<String> = []
        /// Valued options whose value is itself a package ("-e ./pkg").
        var packages: Set<String> = []
    }

    static let npm = Installer(
        noun: "npm package", pluralNoun: "npm packages", dependencies: "install npm dependencies",
        valued: ["--prefix", "-C", "--registry", "--workspace", "-w", "--omit", "--include", "--tag", "--cache",
                 "--userconfig", "--install-strategy", "--loglevel", "--before"])
    /// pnpm, yarn and bun install npm packages too, but their `-w` is a flag.
    static let otherJavaScript = Installer(
        noun: "npm package", pluralNoun: "npm packages", dependencies: "install npm dependencies",
        valued: ["--prefix", "-C", "--registry", "--filter", "-F", "--dir", "--cwd", "--modules-folder",
                 "--network-timeout", "--cache-folder", "--cache-dir", "--config", "-c"])
    static let python = Installer(
        noun: "Python package", pluralNoun: "Python packages", dependencies: nil,
        valued: ["-r", "--requirement", "--requirements", "-c", "--constraint", "-e", "--editable", "-i",
                 "--index-url", "--extra-index-url", "--index", "-f", "--find-links", "-t", "--target", "--prefix",
                 "--root", "--src", "--platform", "--python-version", "--implementation", "--abi",
                 "--upgrade-strategy", "--no-binary", "--only-binary", "--progress-bar", "-C", "--config-settings",
                 "--global-option", "--report", "--python", "-p", "--trusted-host", "--cache-dir", "--log",
                 "--proxy", "--retries", "--timeout", "--group", "-G", "--optional", "--package", "--extra",
                 "--from", "--with", "-w", "--source", "--directory", "--pip-args", "--suffix", "-E", "--extras"],
        sources: ["-r", "--requirement", "--requirements"],
        packages: ["-e", "--editable"])
    static let rust = Installer(
        noun: "Rust crate", pluralNoun: "Rust crates", dependencies: nil,
        valued: ["--version", "--vers", "--git", "--branch", "--tag", "--rev", "--path", "--root", "--registry",
                 "--index", "--features", "-F", "--target", "--target-dir", "--profile", "-j", "--jobs", "--bin",
                 "--example", "--rename", "--package", "-p", "--manifest-path"],
        sources: ["--git", "--path"])
    static let go = Installer(
        noun: "Go package", pluralNoun: "Go packages", dependencies: "install Go dependencies",
        valued: ["-modfile", "-tags", "-ldflags", "-gcflags", "-asmflags", "-o", "-p", "-mod", "-pkgdir",
                 "-buildmode", "-compiler", "-installsuffix", "-overlay", "-pgo", "-toolexec", "-C"])
    static let ruby = Installer(
        noun: "Ruby gem", pluralNoun: "Ruby gems", dependencies: "install Ruby dependencies",
        valued: ["-v", "--version", "-i", "--install-dir", "-n", "--bindir", "-s", "--source", "--platform",
                 "-P", "--trust-policy", "--build-root", "-g", "--file", "--gemfile", "--path", "--group"])
    static let system = Installer(
        noun: "system package", pluralNoun: "system packages", dependencies: nil,
        valued: ["-o", "--option", "-t", "--target-release", "-c", "--config-file", "--repo", "--enablerepo",
                 "--disablerepo", "--setopt", "--releasever", "--installroot", "-X", "--repository", "--virtual",
                 "--root"])
    static let homebrew = Installer(noun: "Homebrew package", pluralNoun: "Homebrew packages", dependencies: nil)
    static let php = Installer(
        noun: "PHP package", pluralNoun: "PHP packages", dependencies: "install PHP dependencies",
        valued: ["-d", "--working-dir"])

    static func describe(_ core: [String], program: String) -> String? {
        guard let (installer, arguments) = invocation(core, program: program) else { return nil }
        return text(installer, arguments: arguments)
    }

    /// Which installer `core` runs and its arguments after the install subcommand (the
    /// subcommand word itself first), or nil when it installs nothing.
    private static func invocation(_ core: [String], program: String) -> (Installer, ArraySlice<String>)? {
        let words = core[...]
        switch program {
        case "npm":
            guard let (name, arguments) = CommandWords.subcommand(words, valued: npm.valued) else { return nil }
            if ["ci", "clean-install", "ic", "install-clean"].contains(name) { return (npm, arguments.prefix(1)) }
            let installs: Set<String> = [
                "install", "i", "in", "ins", "inst", "insta", "instal", "isnt", "isnta", "isntal", "isntall", "add",
            ]
            return installs.contains(name) ? (npm, arguments) : nil
        case "pnpm", "bun":
            guard let (name, arguments) = CommandWords.subcommand(words, valued: otherJavaScript.valued) else { return nil }
            return ["add", "a", "install", "i"].contains(name) ? (otherJavaScript, arguments) : nil
        case "yarn":
            guard var (name, arguments) = CommandWords.subcommand(words, valued: otherJavaScript.valued) else {
                return (otherJavaScript, words.suffix(0)) // bare `yarn` installs the dependencies
            }
            if name == "global", let (inner, innerArguments) = CommandWords.subcommand(arguments, valued: otherJavaScript.valued) {
                (name, arguments) = (inner, innerArguments)
            }
            return ["add", "install"].contains(name) ? (otherJavaScript, arguments) : nil
        case "uv":
            guard let (name, arguments) = CommandWords.subcommand(words, valued: python.valued) else { return nil }
            if name == "add" { return (python, arguments) }
            if name == "pip" || name == "tool", let (inner, innerArguments) = CommandWords.subcommand(arguments, valued: python.valued),
               inner == "install" {
                return (python, innerArguments)
            }
            return nil
        case "pipx":
            guard let (name, arguments) = CommandWords.subcommand(words, valued: python.valued), name == "install" else { return nil }
            return (python, arguments)
        case "poetry":
            guard let (name, arguments) = CommandWords.subcommand(words, valued: python.valued), name == "add" else { return nil }
            return (python, arguments)
        case "cargo":
            var cargo = words
            if cargo.count > 1, cargo[cargo.startIndex + 1].hasPrefix("+") { cargo.remove(at: cargo.startIndex + 1) }
            guard let (name, arguments) = CommandWords.subcommand(cargo, valued: ["-Z", "--config", "--color", "-C"]),
                  name == "install" || name == "add" else { return nil }
            return (rust, arguments)
        case "go":
            guard let (name, arguments) = CommandWords.subcommand(words, valued: ["-C"]),
                  name == "install" || name == "get" else { return nil }
            return (go, arguments)
        case "gem":
            guard let (name, arguments) = CommandWords.subcommand(words), name == "install" else { return nil }
            return (ruby, arguments)
        case "bundle", "bundler":
            guard let (name, arguments) = CommandWords.subcommand(words), name == "install" || name == "add" else { return nil }
            return (ruby, name == "install" ? arguments.prefix(1) : arguments)
        case "composer":
            guard let (name, arguments) = CommandWords.subcommand(words, valued: php.valued) else { return nil }
            if name == "install" { return (php, arguments.prefix(1)) }
            return name == "require" ? (php, arguments) : nil
        case "apt", "apt-get", "aptitude", "dnf", "yum", "microdnf", "zypper":
            guard let (name, arguments) = CommandWords.subcommand(words, valued: system.valued),
                  name == "install" || (program == "zypper" && name == "in") else { return nil }
            return (system, arguments)
        case "apk":
            guard let (name, arguments) = CommandWords.subcommand(words, valued: system.valued), name == "add" else { return nil }
            return (system, arguments)
        case "pacman":
            // -S installs; -Ss/-Si/-Sc/-Sg/-Sl/-Sp/-Sw only query, clean or download.
            guard let sync = core.dropFirst().first(where: { $0.hasPrefix("-S") || $0 == "--sync" }),
                  !sync.dropFirst(2).contains(where: { "sicglpw".contains($0) }) else { return nil }
            return (system, ArraySlice([sync] + core.dropFirst().filter { $0 != sync }))
        case "brew":
            guard let (name, arguments) = CommandWords.subcommand(words), name == "install" || name == "reinstall" else {
                return nil
            }
            return (homebrew, arguments)
        default:
            guard isPip(program) || isPython(program) else { return nil }
            var pip = words
            if isPython(program) {
                // python -m pip install …
                guard let module = core.firstIndex(of: "-m"), module + 1 < core.count, isPip(core[module + 1]) else {
                    return nil
                }
                pip = core[(module + 1)...]
            }
            guard let (name, arguments) = CommandWords.subcommand(pip, valued: python.valued), name == "install" else {
                return nil
            }
            return (python, arguments)
        }
    }

    private static func isPip(_ name: String) -> Bool {
        name.hasPrefix("pip") && name.dropFirst(3).allSatisfy { $0.isNumber || $0 == "." }
    }

    private static func isPython(_ name: String) -> Bool {
        name.hasPrefix("python") && name.dropFirst(6).allSatisfy { $0.isNumber || $0 == "." }
    }

    /// `arguments` starts with the subcommand word.
    private static func text(_ installer: Installer, arguments: ArraySlice<String>) -> String {
        var sources: [String] = []
        let names = CommandWords.walkArguments(arguments) { argument, next, names in
            var option = argument
            var value: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                option = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            } else if !argument.hasPrefix("--"), argument.count > 2, installer.valued.contains(String(argument.prefix(2))),
                      !installer.valued.contains(argument) {
                option = String(argument.prefix(2))
                value = String(argument.dropFirst(2))
            }
            guard installer.valued.contains(option) else { return }
            if value == nil, next < arguments.endIndex {
                value = arguments[next]
                next += 1
            }
            guard let value else { return }
            if installer.sources.contains(option) { sources.append(value) }
            if installer.packages.contains(option) { names.append(value) }
        }
        let from = sources.isEmpty ? "" : " from \(IntentText.list(sources))"
        if names.count == 1 {
            return "agent wants to install \(installer.noun): \(IntentText.list(names))" + (from.isEmpty ? "" : " and packages\(from)")
        }
        if !names.isEmpty {
            return "agent wants to install \(installer.pluralNoun): \(IntentText.list(names))" + (from.isEmpty ? "" : " and packages\(from)")
        }
        if !sources.isEmpty { return "agent wants to install \(installer.pluralNoun)\(from)" }
        return "agent wants to " + (installer.dependencies ?? "install \(installer.pluralNoun)")
    }
}
