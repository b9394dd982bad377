import ArgumentParser
import Foundation
import Glibc

extension ParsableCommand {
    /// `main()`, except that usage errors (unknown options, missing arguments, a failed
    /// `validate()`) exit 2, the status both tools document for wrong arguments, instead of
    /// ArgumentParser's EX_USAGE (64). The message and usage text are ArgumentParser's own;
    /// `--help` and `--version` still print to standard output and exit 0.
    public static func mainWithUsageErrorsExitingTwo(_ arguments: [String]? = nil) -> Never {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            exit()
        } catch let code as ExitCode {
            // Said nothing and exits with a status (the agent's, for a session): ArgumentParser's
            // exit(withError:) would first build the command's help text, a few ms of reflection.
            Foundation.exit(code.rawValue)
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            let message = fullMessage(for: error)
            FileHandle.standardError.write(Data((message.hasSuffix("\n") ? message : message + "\n").utf8))
            exit(withError: ExitCode(CheckExitCode.error))
        }
    }
}

extension CommandLine {
    /// This process's executable (/proc/self/exe), or argv[0] when that can't be read.
    static var executablePathname: String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        guard count > 0 else { return arguments.first ?? "agentgate-supervise" }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
