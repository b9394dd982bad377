import Foundation
import Glibc
import Testing

/// Dotfiles and credential folders that are symlinks (a dotfile manager's: ~/.ssh a link to
/// ~/dotfiles/ssh): the policy's rules name ~/.ssh, the kernel resolves to ~/dotfiles/ssh, and
/// the supervisor decides the file under both names, the stricter winning (found by review on
/// 2026-12-07: `cat ~/.ssh/id_rsa` read the key, and `>> ~/.bashrc` wrote a shell start-up file).
@Suite struct SymlinkAliasTests {
    @Test func filesReachedThroughSymlinkedProtectedNamesAreDecidedUnderThoseNames() throws {
        let h = try Harness()
        let home = h.path("home")
        try FileManager.default.createDirectory(atPath: home + "/dotfiles/ssh", withIntermediateDirectories: true)
        try h.write("home/dotfiles/ssh/id_rsa", "SSHKEY\n")
        try h.write("home/dotfiles/bashrc", "# rc\n")
        try h.write("home/dotfiles/notes", "notes\n")
        try FileManager.default.createSymbolicLink(atPath: home + "/.ssh", withDestinationPath: "dotfiles/ssh")
        // Per-file links under a real directory, as stow makes them when the directory exists.
        try FileManager.default.createDirectory(atPath: home + "/.gnupg", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: home + "/dotfiles/gnupg", withIntermediateDirectories: true)
        try h.write("home/dotfiles/gnupg/private.key", "GPGKEY\n")
        try FileManager.default.createSymbolicLink(atPath: home + "/.gnupg/private.key", withDestinationPath: "../dotfiles/gnupg/private.key")
        // A link whose name isn't UTF-8 (looked up by its bytes).
        try h.write("home/dotfiles/gnupg/other.key", "OTHERKEY\n")
        let odd = h.bare(["sh", "-c", "ln -s ../dotfiles/gnupg/other.key \"$(printf '\(home)/.gnupg/key-\\377')\""])
        #expect(odd.status == 0, "\(odd)")
        try FileManager.default.createSymbolicLink(atPath: home + "/.bashrc", withDestinationPath: "dotfiles/bashrc")
        let policy = try h.policy("""
            version: 2
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "\(home)/.ssh/**"}
                decision: deny
              - match: {action: fs_read, target_glob: "\(home)/.gnupg/**"}
                decision: deny
              - match: {action: fs_write, target_glob: "\(home)/.*"}
                decision: deny
            """)
        let script = """
            cat '\(home)/.ssh/id_rsa'; echo "read-link=$?"
            cat '\(home)/dotfiles/ssh/id_rsa'; echo "read-real=$?"
            echo x >> '\(home)/.bashrc'; echo "write-link=$?"
            echo x >> '\(home)/dotfiles/bashrc'; echo "write-real=$?"
            cat '\(home)/.gnupg/private.key'; echo "read-file-link=$?"
            cat '\(home)/dotfiles/gnupg/private.key'; echo "read-file-real=$?"
            cat '\(home)/dotfiles/gnupg/other.key'; echo "read-odd-name=$?"
            cat '\(home)/dotfiles/notes'; echo "read-other=$?"
            mv '\(home)/dotfiles/gnupg' '\(home)/dotfiles/gnupg2' && mv '\(home)/dotfiles/gnupg2' '\(home)/dotfiles/gnupg'; echo "moved=$?"
            echo x >> '\(home)/dotfiles/notes'; echo "write-other=$?"
            """
        let bare = h.bare(["sh", "-c", script])
        #expect(bare.stdout.contains("SSHKEY\nread-link=0") && bare.stdout.contains("write-link=0") && bare.stdout.contains("moved=0"),
                "bare: the links work, and the directory moves\n\(bare)")
        let r = h.supervised(["sh", "-c", script], policy: policy)
        #expect(!r.stdout.contains("SSHKEY") && !r.stdout.contains("GPGKEY") && !r.stdout.contains("OTHERKEY"), "\(r)")
        #expect(bare.stdout.contains("GPGKEY\nread-file-link=0"), "bare: the file link works\n\(bare)")
        // cat fails with 1, a failed redirection with 2.
        for denied in ["read-link=1", "read-real=1", "write-link=2", "write-real=2", "read-file-link=1", "read-file-real=1", "read-odd-name=1"] {
            #expect(r.stdout.contains(denied), "\(denied): \(r)")
        }
        #expect(r.stdout.contains("read-other=0") && r.stdout.contains("write-other=0"), "\(r)")
        // Moving the directory a link leads to would carry its files to a name no alias covers.
        #expect(!r.stdout.contains("moved=0"), "\(r)")
        // The agent's hook inside the session says the same.
        try h.write("read.json", HookCommandTests.event("Read", ["file_path": home + "/dotfiles/ssh/id_rsa"], cwd: h.dir, session: "inner"))
        let hook = h.supervised(["/bin/sh", "-c", "'\(HookCommandTests.client)' claude-code < '\(h.path("read.json"))'"], policy: policy)
        #expect(hook.stdout.contains(#""permissionDecision":"deny""#), "\(hook)")
        // `agentgate check` predicts the same.
        let check = h.run([HookCommandTests.agentgate, "check", "--policy", policy, "--action", "fs_read", home + "/dotfiles/ssh/id_rsa"])
        #expect(check.stdout.contains("decision: deny"), "\(check)")
        let reads = h.query("select decision from events where action = 'fs_read' and target = '\(home)/dotfiles/ssh/id_rsa'")
        #expect(reads == [["deny"], ["deny"]], "recorded under the name the kernel resolves: \(reads)")
    }

    /// Links that lead to shared or other people's files spread no rule there (found by review
    /// on 2026-12-07): `~/.bash_history -> /dev/null` denied every use of /dev/null, a venv's
    /// `python3 -> /usr/bin/python3` under ~/.config/gcloud the system's python, and another
    /// user's link planted in a shared place a project's writes.
    @Test func linksToSharedOrForeignFilesSpreadNoRule() throws {
        let h = try Harness()
        let home = h.path("home")
        try FileManager.default.createDirectory(atPath: home + "/.config/gcloud/venv", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: home + "/shared", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: h.path("proj"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: home + "/.bash_history", withDestinationPath: "/dev/null")
        try FileManager.default.createSymbolicLink(atPath: home + "/.config/gcloud/venv/true", withDestinationPath: "/usr/bin/true")
        try FileManager.default.createSymbolicLink(atPath: home + "/shared/ssh-planted", withDestinationPath: h.path("proj"))
        // A dot-link over the directory the session works in.
        try FileManager.default.createSymbolicLink(atPath: home + "/.work", withDestinationPath: h.dir)
        // Another user's: as root, handed to uid 65534; otherwise it would be the user's own
        // link, which does count, so it is removed.
        let foreign = TestUser.isRoot && lchown(home + "/shared/ssh-planted", 65534, 65534) == 0
        if !foreign { try FileManager.default.removeItem(atPath: home + "/shared/ssh-planted") }
        let policy = try h.policy("""
            version: 2
            default: allow
            rules:
              - match: {target_glob: "\(home)/.bash_history"}
                decision: deny
              - match: {target_glob: "\(home)/.config/gcloud/**"}
                decision: deny
              - match: {action: fs_write, target_glob: "\(home)/shared/ssh-*/**"}
                decision: deny
              - match: {action: fs_write, target_glob: "\(home)/.*/**"}
                decision: deny
            """)
        let script = """
            echo x > /dev/null; echo "devnull=$?"
            /usr/bin/true; echo "true=$?"
            echo x > '\(h.path("proj"))/a.txt'; echo "project=$?"
            """
        let r = h.supervised(["sh", "-c", script], policy: policy)
        #expect(r.stdout.contains("devnull=0") && r.stdout.contains("true=0"), "\(r)")
        #expect(r.stdout.contains("project=0"), "another user's link, or a dot-link over the project: \(r)")
    }
}
