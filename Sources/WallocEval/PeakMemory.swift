import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import WallocTensor

/// Runs a command as a child process and measures its peak resident memory (`ru_maxrss` from
/// `wait4`, so each child is measured on its own, not as the maximum over all children).
///
/// On Linux a spawned child starts out sharing the parent's memory until it executes the
/// command, and the kernel then records the parent's high-water mark as the child's: the
/// reading is at least the parent's resident size at that moment. `run` first resets the
/// parent's high-water mark to its current size (`/proc/self/clear_refs`), so only what the
/// parent holds at the time counts; keep the parent small (e.g. build large inputs in another
/// child) to measure small children.
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
        resetPeakMemory()
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
        // Read through a file handle: String(contentsOf:) leaks its buffer for an empty file
        // (FoundationEssentials, seen by LeakSanitizer).
        let handle = try? FileHandle(forReadingFrom: errURL)
        let stderr = String(decoding: (try? handle?.readToEnd()) ?? Data(), as: UTF8.self)
        try? handle?.close()
        return Result(status: code, peakBytes: peak, seconds: seconds, standardError: stderr)
    }

    /// Resets this process's peak resident size to its current size (Linux 4.0+; elsewhere, or
    /// where not permitted, nothing happens).
    static func resetPeakMemory() {
        #if os(Linux)
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return }
        _ = write(fd, "5", 1)
        close(fd)
        #endif
    }
}
