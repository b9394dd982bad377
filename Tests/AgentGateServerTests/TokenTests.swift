@testable import AgentGateServer
import Foundation
import Glibc
import Testing

/// The server's bearer token: made once, 0600, refused when others could have read or written it.
struct TokenTests {
    func scratchDirectory() -> String {
        let path = NSTemporaryDirectory() + "agentgate-token-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func createdOnceWithMode0600AndReadBack() throws {
        let path = scratchDirectory() + "/conf/agentgate/server.token"
        let first = try ServerToken.loadOrCreate(at: path)
        #expect(first.value.count == 64 && first.value.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        var info = stat()
        let statted = stat(path, &info)
        #expect(statted == 0 && info.st_mode & 0o777 == 0o600, "stat \(statted) errno \(errno) mode \(String(info.st_mode, radix: 8))")
        let second = try ServerToken.loadOrCreate(at: path)
        #expect(second.value == first.value)
        #expect(first.authorizes("Bearer \(first.value)"))
        #expect(first.authorizes("bearer \(first.value)"))
        // The last digit changed (to one it isn't: a token ending in 0 made this fail 1 run in 16).
        #expect(!first.authorizes("Bearer \(first.value.dropLast())\(first.value.last == "0" ? "1" : "0")"))
        #expect(!first.authorizes("Bearer \(first.value)0"))
        #expect(!first.authorizes(nil))
        #expect(!first.authorizes(first.value))
    }

    /// umask is the process's: a child process of its own sets one that masks the owner's bits.
    @Test func isExactly0600WhateverTheUmask() async {
        await #expect(processExitsWith: .success) {
            umask(0o277)
            let path = NSTemporaryDirectory() + "agentgate-token-umask-\(getpid())/server.token"
            guard let token = try? ServerToken.loadOrCreate(at: path) else { exit(2) }
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & 0o777 == 0o600 else { exit(3) }
            guard (try? ServerToken.loadOrCreate(at: path))?.value == token.value else { exit(4) }
            exit(0)
        }
    }

    @Test func refusesAReadableTokenASymlinkAndGarbage() throws {
        let directory = scratchDirectory()
        let path = directory + "/server.token"
        let token = try ServerToken.loadOrCreate(at: path)
        chmod(path, 0o644)
        #expect(throws: ServerToken.Failure.self) { try ServerToken.loadOrCreate(at: path) }
        do { _ = try ServerToken.load(at: path) } catch { #expect(error.code == .unsafe && error.description.contains("chmod 600")) }
        chmod(path, 0o600)
        let link = directory + "/link.token"
        symlink(path, link)
        do { _ = try ServerToken.load(at: link); Issue.record("a symlinked token was read") } catch { #expect(error.code == .unreadable) }
        let garbage = directory + "/garbage.token"
        FileManager.default.createFile(atPath: garbage, contents: Data("not a token\n".utf8), attributes: [.posixPermissions: 0o600])
        do { _ = try ServerToken.load(at: garbage); Issue.record("garbage was read") } catch { #expect(error.code == .malformed) }
        #expect(try ServerToken.load(at: path).value == token.value)
    }

    @Test func listenAddresses() {
        #expect(ListenAddress("127.0.0.1:9100") == ListenAddress("127.0.0.1:9100"))
        #expect(ListenAddress("127.0.0.1:9100")?.isLoopback == true)
        #expect(ListenAddress("[::1]:0")?.isLoopback == true)
        #expect(ListenAddress("localhost:80")?.isLoopback == true)
        #expect(ListenAddress("0.0.0.0:9100")?.isLoopback == false)
        #expect(ListenAddress("10.0.0.1:9100")?.isLoopback == false)
        #expect(ListenAddress("127.0.0.1.example.com:1")?.isLoopback == false)
        for bad in ["9100", "127.0.0.1", "127.0.0.1:70000", ":9100", "[::1]9100", "::1:9100", "host:port"] {
            #expect(ListenAddress(bad) == nil, "\(bad)")
        }
    }
}
