import Foundation
import Testing
import Walloc

/// The same `.wlc` decodes to the same bytes on every run and at every `--threads` value: BLAS
/// blocks and convolution tiles depend on the shape alone (`Partition`), never on the thread
/// count, and every other kernel computes each output element the same way on any thread.
@Suite("Deterministic decoding across runs and thread counts", .serialized)
struct DeterminismTests {
    /// Decodes `wlc` to `name` (its extension picks the format) at each thread count, the first
    /// twice, and expects byte-identical outputs.
    static func expectSameBytes(_ wlc: URL, in dir: URL, extension ext: String, threads: [Int]) throws {
        var first: Data?
        for (run, t) in ([threads[0]] + threads).enumerated() {
            let out = dir.appendingPathComponent("out-\(run)-t\(t).\(ext)")
            let r = try CLI.run(["decode", wlc.path, "-o", out.path, "--threads", "\(t)", "--quiet"])
            #expect(r.status == 0, "\(r.stderr)")
            let bytes = try Data(contentsOf: out)
            #expect(bytes.count > 1000)
            if let first {
                #expect(bytes == first, "\(ext) decoded with --threads \(t) (run \(run)) differs from --threads \(threads[0])")
            } else {
                first = bytes
            }
        }
    }

    @Test("image: a tiled default-model decode, float .npy and PNG, threads 1, 2, 3 and 5")
    func image() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 512x768 is 64x96 latent positions: decoded in 48-position tiles with blended overlaps.
        var x = Tensor(zeros: [3, 512, 768])
        var rng = SplitMix64(seed: 11)
        for i in 0..<x.count { x.scalars[i] = 0.5 + 0.25 * sin(Float(i % 768) / 13 + Float(i / 768) / 29) + 0.1 * rng.uniform() }
        let png = dir.appendingPathComponent("in.png"), wlc = dir.appendingPathComponent("in.wlc")
        try ImageIO.write(x, to: png, format: .png)
        let r = try CLI.run(["encode", png.path, "-o", wlc.path, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        try Self.expectSameBytes(wlc, in: dir, extension: "npy", threads: [1, 2, 3, 5])
        try Self.expectSameBytes(wlc, in: dir, extension: "png", threads: [2, 1])
    }

    @Test("audio: a default stereo-model decode, float .npy and WAV, threads 1, 2, 3 and 5")
    func audio() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = 44100 * 4
        var x = Tensor(zeros: [2, n])
        var rng = SplitMix64(seed: 5)
        for i in 0..<n {
            let t = Float(i) / 44100
            x.scalars[i] = 0.3 * sin(2 * .pi * 220 * t) + 0.1 * sin(2 * .pi * 3100 * t) + 0.02 * rng.uniform()
            x.scalars[n + i] = 0.2 * sin(2 * .pi * 330 * t) + 0.05 * sin(2 * .pi * 9000 * t)
        }
        let wav = dir.appendingPathComponent("in.wav"), wlc = dir.appendingPathComponent("in.wlc")
        try AudioIO.write(x, sampleRate: 44100, to: wav, bitDepth: 16)
        let r = try CLI.run(["encode", wav.path, "-o", wlc.path, "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        try Self.expectSameBytes(wlc, in: dir, extension: "npy", threads: [1, 2, 3, 5])
        try Self.expectSameBytes(wlc, in: dir, extension: "wav", threads: [2, 1])
    }
}
