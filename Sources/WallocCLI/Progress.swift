import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A progress bar on standard error: redrawn in place on a terminal (at most ten times a
/// second), one line every `logInterval` seconds otherwise (logs, CI), nothing when disabled.
final class ProgressBar {
    let total: Int
    let label: String
    let enabled: Bool
    let isTerminal: Bool
    let logInterval: Double
    /// Nothing is drawn for work that ends sooner than this (seconds).
    let delay: Double
    private let start = Date()
    private var drawn = false
    private var lastDraw = Date.distantPast
    private var startCount: Int?

    init(total: Int, label: String, enabled: Bool = true, logInterval: Double = 30, delay: Double = 0) {
        self.delay = delay
        self.total = max(1, total)
        self.label = label
        self.enabled = enabled
        isTerminal = isatty(STDERR_FILENO) != 0
        self.logInterval = logInterval
    }

    /// Reports `done` of `total` items, with extra `info` (e.g. the loss).
    func update(_ done: Int, info: String = "", force: Bool = false) {
        guard enabled else { return }
        if startCount == nil { startCount = done }
        let now = Date()
        if !drawn && now.timeIntervalSince(start) < delay { return }
        let interval = isTerminal ? 0.1 : logInterval
        guard force || done >= total || now.timeIntervalSince(lastDraw) >= interval else { return }
        lastDraw = now
        drawn = true
        let fraction = Double(done) / Double(total)
        let elapsed = now.timeIntervalSince(start)
        let rate = Double(done - (startCount ?? 0)) / max(elapsed, 1e-9)
        let eta = rate > 0 ? Double(total - done) / rate : .infinity
        var line = "\(label) \(done)/\(total) \(String(format: "%5.1f%%", 100 * fraction))"
        if isTerminal {
            let width = 24, filled = min(width, Int(fraction * Double(width)))
            line = "\(label) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                + "] \(done)/\(total)"
        }
        line += " | \(ProgressBar.duration(elapsed)) elapsed, ETA \(ProgressBar.duration(eta))"
        if !info.isEmpty { line += " | " + info }
        let text = isTerminal ? "\r\u{1B}[K" + line + (done >= total ? "\n" : "") : line + "\n"
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// Prints a line to standard output above an in-place bar (which is redrawn on the next update).
    func print(_ line: String) {
        if enabled && isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
        lastDraw = .distantPast
    }

    /// Ends an in-place bar with a newline (no-op for logs).
    func finish() {
        if enabled && isTerminal && drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%02d:%02d", t / 60, t % 60)
    }
}

/// Set by SIGINT / SIGTERM while a long command runs, so it can stop at a safe point.
nonisolated(unsafe) var stopRequested: sig_atomic_t = 0

/// Installs handlers that ask long-running work to stop (a second signal ends the process).
func installStopHandlers() {
    let handler: @convention(c) (Int32) -> Void = { sig in
        if stopRequested != 0 { _exit(128 + sig) }
        stopRequested = 1
    }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
}
