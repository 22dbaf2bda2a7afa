import Foundation
import Testing
import Walloc

@Suite("Trainer on audio (Codec1D)")
struct AudioTrainerTests {
    init() { TestSetup.singleThreaded }

    /// Synthetic stereo clips in [-0.5, 0.5]: a few sinusoids per channel plus a little noise.
    static func clips(count: Int, channels: Int = 2, length: Int, seed: UInt64) -> [Tensor] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            var t = Tensor(zeros: [channels, length])
            for c in 0..<channels {
                let tones = (0..<3).map { _ in (0.02 + 0.3 * rng.uniform(), 6 * rng.uniform(), 0.05 + 0.1 * rng.uniform()) }
                for i in 0..<length {
                    var v: Float = 0
                    for (f, ph, a) in tones { v += a * sin(f * Float(i) + ph) }
                    t.scalars[c * length + i] = v + 0.01 * (rng.uniform() - 0.5)
                }
            }
            return t
        }
    }

    static func config(seed: UInt64 = 1) -> TrainingConfig {
        var c = TrainingConfig()
        c.batchSize = 4; c.cropSize = 256; c.learningRate = 2e-2; c.warmupSteps = 5; c.seed = seed; c.tfWeight = 0.1
        return c
    }

    static let model = ModelConfig(type: .codec1D, channels: 2, J: 3, Nd: 16, latentDim: 4, latentBits: 8,
                                   lightweightEncode: true, postFilter: false)

    @Test("Codec1D loss falls on synthetic stereo signals")
    func lossFalls() throws {
        var trainer = try Trainer(codec: try Codec(config: Self.model, seed: 5), config: Self.config(),
                                  data: Self.clips(count: 4, length: 1000, seed: 2))
        let batch = trainer.nextBatch()
        #expect(batch.shape == [4, 2, 256])
        var losses = [Float]()
        for _ in 0..<50 { losses.append(try trainer.step().loss) }
        let first = losses.prefix(5).reduce(0, +) / 5, last = losses.suffix(5).reduce(0, +) / 5
        #expect(last < 0.5 * first, "mean loss of the first 5 steps \(first), of the last 5 \(last)")
        // Validation on whole clips, one of a length that is not a multiple of 2^J.
        let v = try trainer.validate(on: Self.clips(count: 2, length: 1003, seed: 3))
        #expect(v.loss.isFinite && v.psnr > 0)
    }

    @Test("Oobleck encoder and post filter train too")
    func fullModel() throws {
        let model = ModelConfig(type: .codec1D, channels: 2, J: 3, Ne: 8, Nd: 8, latentDim: 4, latentBits: 8,
                                lightweightEncode: false, postFilter: true)
        var config = Self.config()
        config.learningRate = 1e-2
        var trainer = try Trainer(codec: try Codec(config: model, seed: 7), config: config,
                                  data: Self.clips(count: 2, length: 600, seed: 4))
        var losses = [Float]()
        for _ in 0..<40 { losses.append(try trainer.step().loss) }
        let first = losses.prefix(5).reduce(0, +) / 5, last = losses.suffix(5).reduce(0, +) / 5
        #expect(last < 0.6 * first, "mean loss of the first 5 steps \(first), of the last 5 \(last)")
    }

    @Test("Deterministic for a seed; a checkpointed audio run resumes exactly")
    func checkpointResume() throws {
        let data = Self.clips(count: 3, length: 700, seed: 9)
        var a = try Trainer(codec: try Codec(config: Self.model, seed: 1), config: Self.config(seed: 4), data: data)
        var b = a
        for _ in 0..<2 { try a.step(); try b.step() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-train1d-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ckpt = dir.appendingPathComponent("checkpoint")
        try a.saveCheckpoint(to: ckpt)
        var resumed = try Trainer.resume(from: ckpt, data: data)
        #expect(resumed.stepCount == 2)
        for _ in 0..<2 {
            let x = try a.step(), y = try resumed.step(), z = try b.step()
            #expect(x.loss == y.loss && x.loss == z.loss)
        }
        for ((n1, p1), (_, p2)) in zip(a.codec.namedParameters(), resumed.codec.namedParameters()) {
            #expect(p1 == p2, "\(n1) differs after resuming")
        }
        var c = try Trainer(codec: try Codec(config: Self.model, seed: 1), config: Self.config(seed: 5), data: data)
        var d = try Trainer(codec: try Codec(config: Self.model, seed: 1), config: Self.config(seed: 4), data: data)
        #expect(try c.step().loss != (try d.step()).loss)
    }

    @Test("Bad clips and segment lengths give clear errors")
    func errors() throws {
        let codec = try Codec(config: Self.model, seed: 1)
        // Mono clips for a stereo model, images for an audio model, clips shorter than a segment.
        #expect(throws: WallocError.self) { try Trainer(codec: codec, config: Self.config(), data: Self.clips(count: 1, channels: 1, length: 500, seed: 1)) }
        #expect(throws: WallocError.self) { try Trainer(codec: codec, config: Self.config(), data: [Tensor(zeros: [2, 300, 300])]) }
        #expect(throws: WallocError.self) { try Trainer(codec: codec, config: Self.config(), data: Self.clips(count: 1, length: 200, seed: 1)) }
        var bad = Self.config(); bad.cropSize = 252
        #expect(throws: WallocError.self) { try Trainer(codec: codec, config: bad, data: Self.clips(count: 1, length: 500, seed: 1)) }
        var t = try Trainer(codec: codec, config: Self.config(), data: Self.clips(count: 1, length: 500, seed: 1))
        #expect(throws: WallocError.self) { try t.step(batch: Tensor(zeros: [2, 2, 16, 16])) }
        #expect(throws: WallocError.self) { try t.validate(on: [Tensor(zeros: [2, 4])]) }
        #expect(throws: WallocError.self) { try t.validate(on: [Tensor(zeros: [1, 64])]) }
    }
}
