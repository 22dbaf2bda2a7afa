import Foundation
import Testing
import Walloc

@Suite("Trainer")
struct TrainerTests {
    init() { TestSetup.singleThreaded }

    /// Smooth synthetic images (sums of a few sinusoids) in [-0.5, 0.5].
    static func images(count: Int, channels: Int, size: Int, seed: UInt64) -> [Tensor] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            var t = Tensor(zeros: [channels, size, size])
            for c in 0..<channels {
                let fx = 0.5 * rng.uniform() + 0.1, fy = 0.5 * rng.uniform() + 0.1, ph = 6 * rng.uniform()
                for y in 0..<size {
                    for x in 0..<size {
                        t.scalars[(c * size + y) * size + x] = 0.4 * sin(fx * Float(x) + fy * Float(y) + ph)
                    }
                }
            }
            return t
        }
    }

    static func config(seed: UInt64 = 1) -> TrainingConfig {
        var c = TrainingConfig()
        c.batchSize = 2; c.cropSize = 16; c.learningRate = 3e-3; c.warmupSteps = 5; c.seed = seed; c.tfWeight = 0.1
        return c
    }

    @Test("Codec2D loss falls on a tiny synthetic dataset")
    func lossFalls() throws {
        let model = ModelConfig(type: .codec2D, channels: 1, J: 1, Nd: 32, latentDim: 2, latentBits: 6, lightweightEncode: true)
        var trainer = try Trainer(codec: try Codec(config: model, seed: 5), config: Self.config(), data: Self.images(count: 4, channels: 1, size: 24, seed: 2))
        var losses = [Float]()
        for _ in 0..<40 { losses.append(try trainer.step().loss) }
        let first = losses.prefix(5).reduce(0, +) / 5, last = losses.suffix(5).reduce(0, +) / 5
        #expect(last < 0.5 * first, "mean loss of the first 5 steps \(first), of the last 5 \(last)")
        #expect(trainer.stepCount == 40)
    }

    @Test("A model with a smooth margin trains on smaller crops padded with it, as files are coded")
    func smoothMarginCrops() throws {
        var model = ModelConfig(type: .linearCodec2D, channels: 1, J: 2, latentDim: 2, latentBits: 8)
        model.smoothMargin = 5
        var config = Self.config()
        config.cropSize = 24
        // A horizontal ramp: the left and right edges of every crop differ.
        var image = Tensor(zeros: [1, 40, 40])
        for y in 0..<40 { for x in 0..<40 { image.scalars[y * 40 + x] = Float(x) / 40 - 0.5 } }
        var trainer = try Trainer(codec: try Codec(config: model, seed: 1), config: config, data: [image])
        let batch = trainer.nextBatch()
        #expect(batch.shape == [2, 1, 24, 24])
        // The largest inner crop that pads to 24 with at least 5 samples: 19 (+ 2 before, 3 after).
        for b in 0..<2 {
            let row = Array(batch.scalars[(b * 24 + 10) * 24 ..< (b * 24 + 11) * 24])
            let inner = Array(row[2..<21])
            #expect(zip(inner.dropFirst(), inner).allSatisfy { abs($0 - $1 - 1 / 40) < 1e-6 }, "the crop is the image")
            // Round the period the margin goes back from the last sample to the first in even steps.
            var largest: Float = 0
            for x in 0..<24 { largest = max(largest, abs(row[(x + 1) % 24] - row[x])) }
            #expect(largest < 0.1, "largest step \(largest) round the padded crop")
        }
    }

    @Test("Deterministic for a seed; a checkpointed run resumes exactly")
    func checkpointResume() throws {
        let model = ModelConfig(type: .linearCodec2D, channels: 3, J: 2, latentDim: 6, latentBits: 8)
        let data = Self.images(count: 3, channels: 3, size: 20, seed: 9)
        var a = try Trainer(codec: try Codec(config: model, seed: 1), config: Self.config(seed: 4), data: data)
        var b = a
        for _ in 0..<3 { try a.step(); try b.step() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-train-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ckpt = dir.appendingPathComponent("checkpoint")
        try a.saveCheckpoint(to: ckpt)
        try a.saveCheckpoint(to: ckpt)  // overwriting an existing checkpoint
        var resumed = try Trainer.resume(from: ckpt, data: data)
        #expect(resumed.stepCount == 3)
        for _ in 0..<3 {
            let x = try a.step(), y = try resumed.step(), z = try b.step()
            #expect(x.loss == y.loss && x.loss == z.loss)
        }
        for ((n1, p1), (_, p2)) in zip(a.codec.namedParameters(), resumed.codec.namedParameters()) {
            #expect(p1 == p2, "\(n1) differs after resuming")
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(leftovers == ["checkpoint"])
        // Different seed, different run.
        var c = try Trainer(codec: try Codec(config: model, seed: 1), config: Self.config(seed: 5), data: data)
        var d = try Trainer(codec: try Codec(config: model, seed: 1), config: Self.config(seed: 4), data: data)
        #expect(try c.step().loss != (try d.step()).loss)
    }

    @Test("Bad data and configurations give clear errors")
    func errors() throws {
        let model = ModelConfig(type: .linearCodec2D, channels: 3, J: 2, latentDim: 6, latentBits: 8)
        let codec = try Codec(config: model, seed: 1)
        #expect(throws: WallocError.self) { try Trainer(codec: codec, config: Self.config(), data: Self.images(count: 1, channels: 1, size: 20, seed: 1)) }
        #expect(throws: WallocError.self) { try Trainer(codec: codec, config: Self.config(), data: Self.images(count: 1, channels: 3, size: 8, seed: 1)) }
        var bad = Self.config(); bad.cropSize = 18
        #expect(throws: WallocError.self) { try Trainer(codec: codec, config: bad, data: Self.images(count: 1, channels: 3, size: 20, seed: 1)) }
        #expect(throws: WallocError.self) { try Trainer.resume(from: URL(fileURLWithPath: "/nonexistent/ckpt"), data: []) }
    }

    @Test("AdamW matches PyTorch's update on a hand-computed case")
    func adamW() {
        var initializer = ParameterInitializer(seed: 0)
        var layer = Conv2d(inChannels: 1, outChannels: 1, kernelSize: 1, bias: false, initializer: &initializer)
        layer.weight = Tensor(shape: [1, 1, 1, 1], scalars: [1])
        layer.parametersDidChange()
        var opt = AdamW(weightDecay: 0.1)
        var g = Gradients()
        g.accumulate("weight", Tensor(shape: [1, 1, 1, 1], scalars: [0.5]))
        opt.update(&layer, gradients: g, lr: 0.01)
        // step 1: p·(1 − lr·λ) − lr·m̂/(√v̂ + ε) with m̂ = g, v̂ = g² → 0.999 − 0.01·(0.5/(0.5 + 1e-8))
        #expect(abs(layer.weight.scalars[0] - (0.999 - 0.01 * 0.5 / (0.5 + 1e-8))) < 1e-6)
        opt.update(&layer, gradients: g, lr: 0.01)
        #expect(abs(layer.weight.scalars[0] - (0.989 * 0.999 - 0.01)) < 1e-5)
    }

    @Test("Warm-up, then reduce-on-plateau")
    func schedule() {
        var s = LearningRateSchedule(peak: 1e-2, warmupSteps: 4, factor: 0.5, patience: 1)
        #expect(s.rate(step: 0) == 2.5e-3 && s.rate(step: 3) == 1e-2 && s.rate(step: 10) == 1e-2)
        s.record(validationLoss: 1); s.record(validationLoss: 1); #expect(s.rate(step: 10) == 1e-2)
        s.record(validationLoss: 1); #expect(s.rate(step: 10) == 5e-3)
        var g = Gradients()
        g.accumulate("a", Tensor(shape: [2], scalars: [3, 4]))
        #expect(g.clip(maxNorm: 1) == 5)
        #expect(abs(g.globalNorm - 1) < 1e-5)
    }
}
