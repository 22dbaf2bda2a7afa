import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import WallocTensor

/// Runs a command as a child process and measures its peak resident memory (`ru_maxrss` from
/// `wait4`, so each child is measured on its own, not as the maximum over all children).
public enum ChildProcess {
    public struct Result: Sendable {
        /// Exit status (0: success); for a child killed by a signal, 128 + the signal number.
        public var status: Int32
        /// Peak resident set size in bytes.
        public var peakBytes: Int
        /// Wall-clock seconds from start to exit.
        public var seconds: Double
        /// What the child wrote to standard error (its standard output is discarded).
        public var standardError: String
    }

    /// Runs `executable` with `arguments` and waits for it. Throws only when it cannot be started.
    public static func run(_ executable: String, _ arguments: [String]) throws -> Result {
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-child-\(UUID().uuidString).stderr")
        defer { unlink(errURL.path) }
        #if canImport(Glibc)
        var actions = posix_spawn_file_actions_t()
        #else
        var actions: posix_spawn_file_actions_t?
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errURL.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid = pid_t()
        let start = DispatchTime.now().uptimeNanoseconds
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw WallocError("cannot start \(executable): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw WallocError("waiting for \(executable) failed: \(String(cString: strerror(errno)))") }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as macros.
        let signal = status & 0x7f
        let code = signal == 0 ? (status >> 8) & 0xff : 128 + signal
        #if os(Linux)
        let peak = Int(usage.ru_maxrss) * 1024  // kilobytes on Linux
        #else
        let peak = Int(usage.ru_maxrss)  // bytes on macOS
        #endif
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return Result(status: code, peakBytes: peak, seconds: seconds, standardError: stderr)
    }
}
