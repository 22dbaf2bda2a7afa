import Foundation
import Testing
import Walloc
#if canImport(Glibc)
import Glibc
#endif

/// `kill -9` at any moment of `walloc encode` / `decode` leaves the previous output or none, never
/// a partial file, and no temporary files (outputs are unnamed `O_TMPFILE` files until complete).
@Suite("Crash safety: kill -9 during encode and decode", .serialized)
struct CrashSafetyTests {
    /// Runs `walloc arguments` and kills it with SIGKILL after `delay` seconds (if still running).
    static func runKilled(_ arguments: [String], after delay: Double) throws {
        let p = Process()
        p.executableURL = try #require(CLI.executable)
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        Thread.sleep(forTimeInterval: delay)
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    /// Seconds a complete run of `walloc arguments` takes (it must succeed).
    static func timed(_ arguments: [String]) throws -> Double {
        let start = Date()
        let r = try CLI.run(arguments)
        #expect(r.status == 0, "\(r.stderr)")
        return Date().timeIntervalSince(start)
    }

    /// Kills `arguments` (which write `output`) at several moments; after each, `output` holds
    /// `previous` (or is absent when nil) or exactly `complete`, and the folder holds `allowed` only.
    static func check(_ arguments: [String], output: URL, previous: Data?, complete: Data, duration: Double, allowed: Set<String>) throws {
        let fm = FileManager.default
        for fraction in [0.15, 0.35, 0.55, 0.7, 0.8, 0.86, 0.9, 0.93, 0.96, 0.98, 1.0, 1.1] {
            if let previous { try previous.write(to: output) } else { try? fm.removeItem(at: output) }
            try runKilled(arguments, after: duration * fraction)
            if let found = try? Data(contentsOf: output) {
                #expect(found == complete || found == previous, "\(output.lastPathComponent) killed at \(fraction): \(found.count) bytes, neither the old nor the complete output")
            } else {
                #expect(previous == nil, "\(output.lastPathComponent) killed at \(fraction): the previous output is gone")
            }
            let names = Set(try fm.contentsOfDirectory(atPath: output.deletingLastPathComponent().path))
            #expect(names.isSubset(of: allowed), "left behind: \(names.subtracting(allowed).sorted())")
        }
    }

    @Test("image: encode, and decode to PNG, over nothing and over an older output")
    func image() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var x = Tensor(zeros: [3, 768, 1024])
        var rng = SplitMix64(seed: 3)
        for i in 0..<x.count { x.scalars[i] = 0.5 + 0.3 * sin(Float(i % 1024) / 17) * rng.uniform() }
        let png = dir.appendingPathComponent("in.png"), wlc = dir.appendingPathComponent("in.wlc")
        try ImageIO.write(x, to: png, format: .png)
        let threads = ["--threads", "2"]
        let encodeTime = try Self.timed(["encode", png.path, "-o", wlc.path] + threads)
        let reference = try Data(contentsOf: wlc)
        let out = dir.appendingPathComponent("out.wlc")
        let encode = ["encode", png.path, "-o", out.path, "--force", "--quiet"] + threads
        try Self.check(encode, output: out, previous: nil, complete: reference, duration: encodeTime, allowed: ["in.png", "in.wlc", "out.wlc"])
        try Self.check(encode, output: out, previous: Data("older".utf8), complete: reference, duration: encodeTime, allowed: ["in.png", "in.wlc", "out.wlc"])

        let decoded = dir.appendingPathComponent("dec.png")
        let decodeTime = try Self.timed(["decode", wlc.path, "-o", decoded.path] + threads)
        let picture = try Data(contentsOf: decoded)
        let decode = ["decode", wlc.path, "-o", decoded.path, "--force", "--quiet"] + threads
        try Self.check(decode, output: decoded, previous: nil, complete: picture, duration: decodeTime, allowed: ["in.png", "in.wlc", "out.wlc", "dec.png"])
    }

    @Test("audio: decode to WAV through the streaming writer")
    func audio() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = 44100 * 20
        var x = Tensor(zeros: [2, n])
        for i in 0..<n { x.scalars[i] = 0.3 * sin(Float(i) * 0.031); x.scalars[n + i] = 0.2 * sin(Float(i) * 0.017) }
        let wav = dir.appendingPathComponent("in.wav"), wlc = dir.appendingPathComponent("in.wlc")
        try AudioIO.write(x, sampleRate: 44100, to: wav, bitDepth: 16)
        let threads = ["--threads", "2"]
        #expect(try Self.timed(["encode", wav.path, "-o", wlc.path] + threads) > 0)
        let decoded = dir.appendingPathComponent("dec.wav")
        let decodeTime = try Self.timed(["decode", wlc.path, "-o", decoded.path] + threads)
        let samples = try Data(contentsOf: decoded)
        let decode = ["decode", wlc.path, "-o", decoded.path, "--force", "--quiet"] + threads
        try Self.check(decode, output: decoded, previous: Data("older".utf8), complete: samples, duration: decodeTime, allowed: ["in.wav", "in.wlc", "dec.wav"])
    }
}
