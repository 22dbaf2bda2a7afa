import Foundation
import Testing
import Walloc

@Suite("Benchmark support: synthetic signals, child-process peak memory")
struct BenchmarkSupportTests {
    @Test("Synthetic audio: pieces concatenate exactly, peaks below 0.8, stereo channels differ, the 110 Hz partial is there")
    func audio() {
        let whole = SyntheticSignals.audio(channels: 2, frames: 44_100)
        let a = SyntheticSignals.audio(channels: 2, frames: 30_000)
        let b = SyntheticSignals.audio(channels: 2, frames: 14_100, start: 30_000)
        #expect(Tensor.concatenateLastAxis([a, b]) == whole)
        #expect(whole.shape == [2, 44_100])
        #expect(whole.maxMagnitude < 0.8 && whole.maxMagnitude > 0.3)
        let left = whole.scalars.prefix(44_100), right = whole.scalars.suffix(44_100)
        #expect(zip(left, right).map { abs($0 - $1) }.max()! > 0.05)
        // Projection on the 110 Hz partial (amplitude 0.30 times a loudness of 0.5...1): 0.15...0.30.
        var dot = 0.0
        for (i, v) in left.enumerated() { dot += Double(v) * sin(2 * Double.pi * 110 * Double(i) / 44_100) }
        let amplitude = 2 * dot / 44_100
        #expect(amplitude > 0.15 && amplitude < 0.30, "projection \(amplitude)")
    }

    @Test("writeAudio writes the synthetic samples in pieces to a WAV file, atomically; bad sizes are errors")
    func writeAudio() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-synth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("s.wav")
        try SyntheticSignals.writeAudio(to: url, channels: 2, frames: 10_000, sampleRate: 22_050, piece: 3_000)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["s.wav"])
        let reader = try AudioReader(url: url)
        #expect(reader.channels == 2 && reader.frames == 10_000 && reader.sampleRate == 22_050 && reader.bitDepth == 16)
        let read = try reader.read(frames: 10_000)
        let expected = SyntheticSignals.audio(channels: 2, frames: 10_000, sampleRate: 22_050)
        #expect(read.maxAbsDifference(expected) <= 1.0 / 32_768 + 1e-6)
        let empty = dir.appendingPathComponent("empty.wav")
        #expect(throws: WallocError.self) { try SyntheticSignals.writeAudio(to: empty, channels: 2, frames: 0) }
        #expect(!FileManager.default.fileExists(atPath: empty.path))
    }

    @Test("Synthetic image: [3, H, W] in [0, 1], deterministic, textured")
    func image() {
        let x = SyntheticSignals.image(width: 96, height: 64)
        #expect(x.shape == [3, 64, 96])
        #expect(x.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(x == SyntheticSignals.image(width: 96, height: 64))
        // Other channel counts: channel c is the RGB image's channel c % 3.
        let grey = SyntheticSignals.image(width: 96, height: 64, channels: 1)
        #expect(grey.shape == [1, 64, 96] && grey.scalars == Array(x.scalars.prefix(64 * 96)))
        let mean = x.scalars.reduce(0, +) / Float(x.count)
        let spread = (x.scalars.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(x.count)).squareRoot()
        #expect(mean > 0.3 && mean < 0.7 && spread > 0.05, "mean \(mean), spread \(spread)")
    }

    @Test("ChildProcess: exit status, standard error, and each child's own peak memory")
    func childProcess() throws {
        let big = try ChildProcess.run("/bin/dd", ["if=/dev/zero", "of=/dev/null", "bs=96M", "count=1"])
        #expect(big.status == 0)
        #expect(big.peakBytes >= 96 << 20, "dd with a 96 MiB buffer: peak \(big.peakBytes)")
        // Measured per child: a small one after the big one is not reported at the big one's peak.
        // (A spawned child's reading starts at the parent's resident size: this test process's.)
        var floor = residentBytes()
        let small = try ChildProcess.run("/bin/sh", ["-c", "echo oops >&2; exit 3"])
        #expect(small.status == 3)
        #expect(small.standardError == "oops\n")
        #expect(small.peakBytes > 0 && small.peakBytes < floor + (32 << 20), "sh: peak \(small.peakBytes), parent \(floor)")
        // Memory the parent held earlier and gave back does not count towards the child's peak.
        do {
            let n = 256 << 20
            let block = UnsafeMutablePointer<UInt8>.allocate(capacity: n)
            for i in stride(from: 0, to: n, by: 4096) { block[i] = 1 }
            block.deallocate()
        }
        floor = residentBytes()
        let after = try ChildProcess.run("/bin/sh", ["-c", "exit 0"])
        #expect(after.peakBytes < floor + (64 << 20), "sh after the parent freed 256 MiB: peak \(after.peakBytes), parent \(floor)")
        let killed = try ChildProcess.run("/bin/sh", ["-c", "kill -9 $$"])
        #expect(killed.status == 128 + 9)
        #expect(throws: WallocError.self) { try ChildProcess.run("/nonexistent/walloc", []) }
    }
}

/// This process's resident size now (Linux: /proc/self/statm), in bytes.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
          let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
