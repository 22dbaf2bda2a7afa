import Foundation
import Testing
import Walloc

@Suite("Codec1D training gradients")
struct Codec1DGradientTests {
    init() { TestSetup.singleThreaded }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/training")

    /// codec1d_tiny: Oobleck encoder and post filter; codec1d_light: kernel-1 encoder, no post filter.
    @Test("Loss and every parameter gradient match PyTorch autograd (scripts/make_training_fixture.py)",
          arguments: ["codec1d_tiny", "codec1d_light"])
    func matchesPyTorch(name: String) throws {
        let dir = Self.fixtures.appendingPathComponent(name)
        let codec = try Codec.load(from: dir)
        let x = try NPY.read(dir.appendingPathComponent("input.npy"))
        let noise = try NPY.read(dir.appendingPathComponent("noise.npy"))
        let losses = try NPY.read(dir.appendingPathComponent("losses.npy")).scalars
        let reference = try Safetensors.read(dir.appendingPathComponent("gradients.safetensors")).tensors
        let (result, grads) = try codec.lossAndGradients(batch: x, noise: noise, tfWeight: losses[3])
        #expect(abs(result.loss - losses[0]) < 1e-4 * losses[0])
        #expect(abs(result.mse - losses[1]) < 1e-4 * losses[1])
        #expect(abs(result.tfLoss - losses[2]) < 1e-4 * losses[2])
        #expect(grads.values.count == reference.count)
        #expect(Set(grads.values.keys) == Set(codec.namedParameters().map(\.0)))
        let scale = reference.values.map(\.maxMagnitude).max() ?? 1
        var worst: (String, Float) = ("", 0)
        for (key, expected) in reference {
            let g = try #require(grads[key], "missing gradient \(key)")
            #expect(g.shape == expected.shape, "\(key)")
            let err = g.maxAbsDifference(expected) / max(expected.maxMagnitude, 1e-4 * scale)
            if err > worst.1 { worst = (key, err) }
            #expect(err < 5e-3, "\(key): relative error \(err)")
        }
        print("\(name): worst relative gradient error: \(worst.0) \(worst.1)")
    }

    /// Finite differences of the whole loss for two coordinates of every parameter tensor (the
    /// largest gradient and a random one), for both encoders, with and without the post filter.
    @Test("Codec1D gradients by finite differences", arguments: [(false, true), (true, false), (true, true)])
    func finiteDifferences(light: Bool, post: Bool) throws {
        let config = ModelConfig(type: .codec1D, channels: 2, J: 2, Ne: light ? nil : 8, Nd: 8, latentDim: 4, latentBits: 6,
                                 lightweightEncode: light, postFilter: post)
        var codec = try Codec(config: config, seed: 3)
        var s: UInt64 = 40
        codec.visitParameters(prefix: "") { name, t in
            if name.hasSuffix("alpha") || name.hasSuffix("beta") { t = random(t.shape, seed: s, scale: 1); s += 1 }
            // Spread the latents over the quantiser's range.
            if name == "encoder.0.weight" || name == "encoder.0.conv2.weight_g" { t.scalars = t.scalars.map { $0 * 4 } }
        }
        codec.parametersDidChange()
        let x = random([2, 2, 32], seed: 41)
        let noise = random([2, 4, 32 / 4 + 2], seed: 42)
        let tfWeight: Float = 0.3
        let (_, grads) = try codec.lossAndGradients(batch: x, noise: noise, tfWeight: tfWeight)
        // The loss is a Float: eps 1e-2 keeps its rounding (≈ 7e-9 near 0.1) below 1e-6 of the slope.
        let eps: Float = 1e-2
        var rng = SplitMix64(seed: 7)
        var checked = 0
        for (name, p) in codec.namedParameters() {
            let g = try #require(grads[name], "no gradient for \(name)")
            #expect(g.shape == p.shape)
            let largest = g.scalars.indices.max { abs(g.scalars[$0]) < abs(g.scalars[$1]) }!
            for i in [largest, rng.below(g.count)] {
                func loss(_ e: Float) throws -> Double {
                    var m = codec
                    m.visitParameters(prefix: "") { n, t in if n == name { t.scalars[i] += e } }
                    m.parametersDidChange()
                    return Double(try m.lossAndGradients(batch: x, noise: noise, tfWeight: tfWeight).0.loss)
                }
                let numeric = Float((try loss(eps) - loss(-eps)) / Double(2 * eps))
                let a = g.scalars[i]
                let bound = 3e-2 * max(abs(numeric), abs(a), 0.02 * g.maxMagnitude) + 5e-6
                #expect(abs(numeric - a) <= bound, "\(name)[\(i)] of \(p.shape): numeric \(numeric) vs analytic \(a)")
                checked += 1
            }
        }
        #expect(checked == 2 * codec.namedParameters().count)
    }

    @Test("Evaluation losses apply the post filter; bad batches give clear errors")
    func evaluationAndErrors() throws {
        let config = ModelConfig(type: .codec1D, channels: 2, J: 2, Nd: 8, latentDim: 4, latentBits: 6,
                                 lightweightEncode: true, postFilter: true)
        let codec = try Codec(config: config, seed: 5)
        let clip = random([2, 64], seed: 50)
        let r = try codec.evaluationLosses(clip)
        let decoded = try codec.decode(try codec.encode(clip))  // clamped, post-filtered reconstruction
        var squares: Double = 0
        for i in 0..<clip.count { let d = Double(decoded.scalars[i] - clip.scalars[i]); squares += d * d }
        let psnr = Float(10 * log10(Double(clip.count) / squares))
        #expect(abs(r.psnr - psnr) < 1e-3, "\(r.psnr) vs \(psnr)")
        #expect(throws: WallocError.self) { try codec.lossAndGradients(batch: random([2, 64], seed: 1), noise: random([2, 4, 18], seed: 2)) }
        #expect(throws: WallocError.self) { try codec.lossAndGradients(batch: random([1, 2, 62], seed: 1), noise: random([1, 4, 17], seed: 2)) }
        #expect(throws: WallocError.self) { try codec.lossAndGradients(batch: random([1, 2, 64], seed: 1), noise: random([1, 4, 16], seed: 2)) }
    }
}
