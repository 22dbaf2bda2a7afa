import Foundation
import Testing
import Walloc

@Suite("PCA initialisation, linear skip, resizing, recipes")
struct InitializationTests {
    init() { TestSetup.singleThreaded }

    @Test("Symmetric eigendecomposition: A·v = λ·v, orthonormal vectors, descending values")
    func eigen() throws {
        let n = 5
        let b = random([n, n], seed: 4)
        var a = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { for k in 0..<n { a[i * n + j] += b.scalars[i * n + k] * b.scalars[j * n + k] } } }
        let (values, vectors) = try LinearAlgebra.symmetricEigen(a, n: n)
        #expect(values == values.sorted(by: >))
        for k in 0..<n {
            for i in 0..<n {
                var av: Float = 0
                for j in 0..<n { av += a[i * n + j] * vectors[j * n + k] }
                #expect(abs(av - values[k] * vectors[i * n + k]) < 1e-4)
            }
            for l in 0..<n {
                var d: Float = 0
                for i in 0..<n { d += vectors[i * n + k] * vectors[i * n + l] }
                #expect(abs(d - (k == l ? 1 : 0)) < 1e-4)
            }
        }
    }

    @Test("Area resizing averages exact footprints")
    func resize() {
        let x = Tensor(shape: [1, 4, 4], scalars: (0..<16).map(Float.init))
        let half = Resize.area(x, height: 2, width: 2)
        #expect(half.scalars == [2.5, 4.5, 10.5, 12.5])
        // 3 -> 2: outputs cover [0, 1.5) and [1.5, 3): weights (2/3, 1/3) and (1/3, 2/3).
        let row = Tensor(shape: [1, 1, 3], scalars: [0, 3, 6])
        let r = Resize.area(row, height: 1, width: 2)
        #expect(abs(r.scalars[0] - 1) < 1e-6 && abs(r.scalars[1] - 5) < 1e-6)
        let big = Tensor(zeros: [3, 300, 1000])
        #expect(Resize.fit(big, maxSide: 500).shape == [3, 150, 500])
        #expect(Resize.fit(big, maxSide: 2000).shape == [3, 300, 1000])
    }

    /// Smooth random images with a few dominant directions in band space.
    static func images(_ count: Int, size: Int, seed: UInt64) -> [Tensor] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            var t = Tensor(zeros: [3, size, size])
            for _ in 0..<4 {
                let fx = rng.uniform() * 0.6, fy = rng.uniform() * 0.6, ph = 6 * rng.uniform()
                let colour = (0..<3).map { _ in rng.uniform() * 0.2 - 0.1 }
                for c in 0..<3 {
                    for y in 0..<size { for x in 0..<size { t.scalars[(c * size + y) * size + x] += colour[c] * sin(fx * Float(x) + fy * Float(y) + ph) } }
                }
            }
            return t
        }
    }

    @Test("PCA initialisation starts the codec at the linear solution")
    func pca() throws {
        let config = ModelConfig(type: .codec2D, channels: 3, J: 1, Nd: 32, latentDim: 4, latentBits: 8,
                                 lightweightEncode: true, linearSkip: true)
        var codec = try Codec(config: config, seed: 2)
        let data = Self.images(6, size: 32, seed: 7)
        let report = try PCAInitialization.apply(to: &codec, signals: data, scale: 40)
        #expect(report.samples == 6 * 16 * 16)
        #expect(report.eigenvalues.count == 12 && report.eigenvalues == report.eigenvalues.sorted(by: >))
        // The decoder network's output layer is zero, so the bands come from the linear path alone.
        let params = Dictionary(uniqueKeysWithValues: codec.namedParameters())
        #expect(try #require(params["decoder.1.conv_out.weight"]).maxMagnitude == 0)
        // Band-space error ≈ the discarded variance (fine quantisation at this scale).
        var err = 0.0, count = 0
        for x in data {
            let bands = try codec.analysis(x)
            var y = codec.encodeBands(bands)
            codec.quantizer.round(&y)
            let back = codec.decodeBands(y)
            for i in 0..<bands.count { let d = Double(back.scalars[i] - bands.scalars[i]); err += d * d }
            count += bands.count
        }
        let discarded = report.eigenvalues.dropFirst(4).reduce(0.0) { $0 + Double($1) } / 12
        let measured = err / Double(count)
        #expect(abs(measured - discarded) < 0.15 * discarded + 1e-7, "band MSE \(measured), discarded variance \(discarded)")
        #expect(report.explainedVariance > 0.5)
        // A codec without a linear path cannot take it.
        var plain = try Codec(config: ModelConfig(type: .codec2D, channels: 3, J: 1, Nd: 32, latentDim: 4, latentBits: 8, lightweightEncode: true), seed: 1)
        #expect(throws: WallocError.self) { try PCAInitialization.apply(to: &plain, signals: data, scale: 3) }
    }

    @Test("Linear skip: decoder output plus a 1x1 path; gradients by finite differences; saved and loaded")
    func linearSkip() throws {
        let config = ModelConfig(type: .codec2D, channels: 1, J: 1, Nd: 32, latentDim: 2, latentBits: 6,
                                 lightweightEncode: true, linearSkip: true)
        var codec = try Codec(config: config, seed: 3)
        codec.visitParameters(prefix: "") { name, t in if name == "encoder.0.weight" { t.scalars = t.scalars.map { $0 * 20 } } }
        codec.parametersDidChange()
        #expect(codec.namedParameters().contains { $0.0 == "skip.weight" } && codec.namedParameters().contains { $0.0 == "skip.bias" })
        let x = random([2, 1, 8, 8], seed: 5)
        let noise = random([2, 2, 4, 4], seed: 6)
        let (_, grads) = try codec.lossAndGradients(batch: x, noise: noise)
        let eps: Float = 1e-2
        for name in ["skip.weight", "skip.bias", "encoder.0.weight", "decoder.1.conv_out.weight"] {
            let g = try #require(grads[name])
            let i = g.scalars.indices.max { abs(g.scalars[$0]) < abs(g.scalars[$1]) }!
            func loss(_ e: Float) throws -> Double {
                var m = codec
                m.visitParameters(prefix: "") { n, t in if n == name { t.scalars[i] += e } }
                m.parametersDidChange()
                return Double(try m.lossAndGradients(batch: x, noise: noise).0.loss)
            }
            let numeric = Float((try loss(eps) - loss(-eps)) / Double(2 * eps))
            #expect(abs(numeric - g.scalars[i]) <= 3e-2 * abs(g.scalars[i]) + 1e-6, "\(name)[\(i)]: \(numeric) vs \(g.scalars[i])")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-skip-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try codec.save(to: dir)
        let loaded = try Codec.load(from: dir)
        let y = try codec.encode(random([1, 16, 16], seed: 8))
        #expect(try loaded.decode(y) == (try codec.decode(y)))
        // The reference's models have no skip: a config without it rejects the extra weights.
        var plain = config; plain.linearSkip = nil
        try FileManager.default.removeItem(at: dir.appendingPathComponent("config.json"))
        try FileIO.writeAtomically(plain.encoded(), to: dir.appendingPathComponent("config.json"))
        #expect(throws: WallocError.self) { try Codec.load(from: dir) }
    }

    @Test("Frozen parameters stay put; cosine schedule")
    func frozenAndCosine() throws {
        let model = ModelConfig(type: .linearCodec2D, channels: 3, J: 1, latentDim: 4, latentBits: 8)
        var config = TrainingConfig()
        config.batchSize = 2; config.cropSize = 16; config.warmupSteps = 2; config.frozen = ["encoder."]
        config.cosineDecaySteps = 4; config.minimumLearningRate = 1e-5
        var trainer = try Trainer(codec: try Codec(config: model, seed: 1), config: config, data: Self.images(2, size: 24, seed: 3))
        let before = Dictionary(uniqueKeysWithValues: trainer.codec.namedParameters())
        for _ in 0..<3 { try trainer.step() }
        for (name, p) in trainer.codec.namedParameters() {
            if name.hasPrefix("encoder.") { #expect(p == before[name]!, "\(name) changed") } else { #expect(p != before[name]!, "\(name) did not change") }
        }
        var s = LearningRateSchedule(peak: 1e-3, warmupSteps: 2, minimum: 1e-5)
        s.cosineSteps = 4
        #expect(abs(s.rate(step: 2) - 1e-3) < 1e-9)
        #expect(abs(s.rate(step: 4) - (1e-5 + (1e-3 - 1e-5) * 0.5)) < 1e-9)
        #expect(abs(s.rate(step: 6) - 1e-5) < 1e-9 && abs(s.rate(step: 100) - 1e-5) < 1e-9)
        s.record(validationLoss: 1); s.record(validationLoss: 2); s.record(validationLoss: 3)
        #expect(abs(s.rate(step: 4) - (1e-5 + (1e-3 - 1e-5) * 0.5)) < 1e-9)
    }

    @Test("Recipes: defaults, overrides and clear errors")
    func recipes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-recipe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ text: String) throws -> URL {
            let url = dir.appendingPathComponent("r.json")
            try? FileManager.default.removeItem(at: url)
            try Data(text.utf8).write(to: url)
            return url
        }
        let ok = try TrainingRecipe.read(try write("""
            {"model": {"type": "Codec2D", "channels": 3, "J": 3, "Nd": 64, "latent_dim": 12, "latent_bits": 8, "lightweight_encode": true},
             "training": {"steps": 100, "schedule": "cosine", "frozen": ["encoder."], "precision": "bf16"}, "init": {"method": "pca", "scale": 2}}
            """))
        #expect(ok.steps == 100 && ok.initialization.scale == 2 && ok.training.precision == .bf16)
        let c = ok.trainingConfig
        #expect(c.cropSize == 128 && c.warmupSteps == 5 && c.cosineDecaySteps == 95 && c.frozen == ["encoder."])
        for (bad, fragment) in [
            (#"{"training": {}}"#, "missing field 'model'"),
            (#"{"model": {"type": "Codec2D", "channels": 3, "J": 3, "Nd": 64, "latent_dim": 12, "latent_bits": 8, "lightweight_encode": true}, "training": {"crop": 100}}"#, "multiple of 2^J"),
            (#"{"model": {"type": "Codec2D", "channels": 3, "J": 3, "Nd": 64, "latent_dim": 12, "latent_bits": 8, "lightweight_encode": true}, "training": {"schedule": "step"}}"#, "schedule"),
            (#"{"model": {"type": "Codec2D", "channels": 3, "J": 3, "Nd": 64, "latent_dim": 12, "latent_bits": 8, "lightweight_encode": true}, "init": {"method": "magic"}}"#, "init.method"),
            (#"{"model": {"type": "Codec2D", "channels": 3, "J": 3, "Nd": 64, "latent_dim": 12, "latent_bits": 8, "lightweight_encode": true}, "init": {"method": "model"}}"#, "init.path"),
            (#"{"model": {"type": "LinearCodec2D", "channels": 3, "J": 3, "latent_dim": 12, "latent_bits": 8, "linear_skip": true}}"#, "linear_skip"),
            ("not json", "not valid JSON"),
            (#"{"model": {"type": "Codec2D", "channels": 3, "J": 3, "Nd": 64, "latent_dim": 12, "latent_bits": 8, "lightweight_encode": true}, "training": {"precision": "fp16"}}"#, "bad value for 'training.precision' (fp32, bf16 or auto)"),
        ] {
            do {
                _ = try TrainingRecipe.read(try write(bad))
                Issue.record("accepted \(bad)")
            } catch let e as WallocError {
                #expect(e.message.contains(fragment), "\(e.message)")
            }
        }
    }
}

@Suite("Codec1D linear skip")
struct Skip1DTests {
    init() { TestSetup.singleThreaded }

    @Test("Codec1D with a linear skip: gradients by finite differences; PCA initialisation starts at the linear codec")
    func skip1D() throws {
        let config = ModelConfig(type: .codec1D, channels: 2, J: 2, Nd: 8, latentDim: 4, latentBits: 8,
                                 lightweightEncode: true, postFilter: false, linearSkip: true)
        var codec = try Codec(config: config, seed: 3)
        let clips = (0..<3).map { k in
            Tensor(shape: [2, 256], scalars: (0..<512).map { i in 0.3 * sin(Float(i % 256) * (0.05 + 0.07 * Float(k)) + Float(i / 256)) })
        }
        try PCAInitialization.apply(to: &codec, signals: clips, scale: 30)
        let params = Dictionary(uniqueKeysWithValues: codec.namedParameters())
        #expect(try #require(params["decoder.1.conv2.weight_g"]).maxMagnitude == 0)
        // Nudge the zeroed layer so every gradient path is exercised.
        codec.visitParameters(prefix: "") { name, t in if name == "decoder.1.conv2.weight_g" { t.scalars = t.scalars.map { _ in 0.05 } } }
        codec.parametersDidChange()
        let x = Tensor.stack([clips[0], clips[1]]).lastAxis(0..<64)
        let noise = random([2, 4, 18], seed: 6)
        let (_, grads) = try codec.lossAndGradients(batch: x, noise: noise)
        let eps: Float = 1e-2
        for name in ["skip.weight", "skip.bias", "encoder.0.weight", "decoder.1.conv2.weight_g"] {
            let g = try #require(grads[name])
            let i = g.scalars.indices.max { abs(g.scalars[$0]) < abs(g.scalars[$1]) }!
            func loss(_ e: Float) throws -> Double {
                var m = codec
                m.visitParameters(prefix: "") { n, t in if n == name { t.scalars[i] += e } }
                m.parametersDidChange()
                return Double(try m.lossAndGradients(batch: x, noise: noise).0.loss)
            }
            let numeric = Float((try loss(eps) - loss(-eps)) / Double(2 * eps))
            #expect(abs(numeric - g.scalars[i]) <= 3e-2 * abs(g.scalars[i]) + 1e-6, "\(name)[\(i)]: \(numeric) vs \(g.scalars[i])")
        }
    }
}
