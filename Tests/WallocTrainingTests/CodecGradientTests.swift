import Foundation
import Testing
import Walloc

@Suite("Codec2D training gradients")
struct CodecGradientTests {
    init() { TestSetup.singleThreaded }

    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/training/codec2d_tiny")

    @Test("Loss and every parameter gradient match PyTorch autograd (scripts/make_training_fixture.py)")
    func matchesPyTorch() throws {
        let codec = try Codec.load(from: Self.fixture)
        let x = try NPY.read(Self.fixture.appendingPathComponent("input.npy"))
        let noise = try NPY.read(Self.fixture.appendingPathComponent("noise.npy"))
        let losses = try NPY.read(Self.fixture.appendingPathComponent("losses.npy")).scalars
        let reference = try Safetensors.read(Self.fixture.appendingPathComponent("gradients.safetensors")).tensors
        let (result, grads) = try codec.lossAndGradients(batch: x, noise: noise, tfWeight: losses[3])
        #expect(abs(result.loss - losses[0]) < 1e-4 * losses[0])
        #expect(abs(result.mse - losses[1]) < 1e-4 * losses[1])
        #expect(abs(result.tfLoss - losses[2]) < 1e-4 * losses[2])
        #expect(grads.values.count == reference.count)
        // Some gradients are zero in exact arithmetic (key biases under softmax, conv biases
        // followed by a group norm with one channel per group): judge those against the overall scale.
        let scale = reference.values.map(\.maxMagnitude).max() ?? 1
        var worst: (String, Float) = ("", 0)
        for (name, expected) in reference {
            let g = try #require(grads[name], "missing gradient \(name)")
            #expect(g.shape == expected.shape, "\(name)")
            let err = g.maxAbsDifference(expected) / max(expected.maxMagnitude, 1e-4 * scale)
            if err > worst.1 { worst = (name, err) }
            #expect(err < 5e-3, "\(name): relative error \(err)")
        }
        print("worst relative gradient error: \(worst.0) \(worst.1)")
    }

    @Test("LinearCodec2D gradients by finite differences")
    func linearCodec() throws {
        let config = ModelConfig(type: .linearCodec2D, channels: 2, J: 1, latentDim: 3, latentBits: 6)
        var codec = try Codec(config: config, seed: 3)
        // Larger encoder weights so the latents use the quantiser's range.
        codec.visitParameters(prefix: "") { name, t in if name == "encoder.0.weight" { t.scalars = t.scalars.map { $0 * 20 } } }
        codec.parametersDidChange()
        let x = random([2, 2, 12, 12], seed: 31)
        let noise = random([2, 3, 6, 6], seed: 32)
        let (base, grads) = try codec.lossAndGradients(batch: x, noise: noise, tfWeight: 0.3)
        let eps: Float = 1e-2
        for (name, p) in codec.namedParameters() {
            let g = try #require(grads[name])
            let i = g.scalars.indices.max { abs(g.scalars[$0]) < abs(g.scalars[$1]) }!
            func loss(_ e: Float) throws -> Double {
                var m = codec
                m.visitParameters(prefix: "") { n, t in if n == name { t.scalars[i] += e } }
                m.parametersDidChange()
                return Double(try m.lossAndGradients(batch: x, noise: noise, tfWeight: 0.3).0.loss)
            }
            let numeric = Float((try loss(eps) - loss(-eps)) / Double(2 * eps))
            #expect(abs(numeric - g.scalars[i]) <= 2e-2 * abs(g.scalars[i]) + 1e-6, "\(name)[\(i)] of \(p.shape): \(numeric) vs \(g.scalars[i])")
        }
        #expect(base.loss > 0)
    }
}
