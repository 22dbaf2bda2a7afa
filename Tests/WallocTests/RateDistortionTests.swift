import Foundation
import Testing
import Walloc

/// Rate-distortion optimised quantisation (`rate.rd_lambda`, `RateDistortionQuantizer`): an
/// encoder-side choice that decoders and fingerprints do not see.
@Suite("Rate-distortion quantisation")
struct RateDistortionTests {
    /// Laplacian latents `[C, H, W]` (in steps) whose scale falls with the channel, as a PCA
    /// encoder's do, with some spatial correlation in the first channel.
    static func latents(channels: Int = 6, height: Int = 24, width: Int = 32, seed: UInt64 = 5) -> Tensor {
        var state = seed
        // A 64-bit LCG (Knuth's MMIX constants); its high bits as uniform numbers.
        func uniform() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24)
        }
        var v = [Float](repeating: 0, count: channels * height * width)
        for c in 0..<channels {
            let scale = 6 / Float(1 << c)
            for i in 0..<(height * width) {
                let u = max(uniform(), 0.0001), sign: Float = uniform() < 0.5 ? 1 : -1
                v[c * height * width + i] = sign * scale * -log(u) + (c == 0 ? Float(i % width) / 4 : 0)
            }
        }
        return Tensor(shape: [channels, height, width], scalars: v)
    }

    static func squaredError(_ a: Tensor, _ b: Tensor) -> Float { zip(a.scalars, b.scalars).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }

    @Test("λ = 0 is the dead-zone quantiser; otherwise every latent is its nearest level or one toward zero")
    func levels() throws {
        let y = Self.latents()
        for dz: Float in [0, 0.15] {
            let plain = try RateDistortionQuantizer.quantize(y, bits: 12, lambda: 0, initialDeadzone: dz)
            #expect(plain.scalars == y.scalars.map { Quantizer.level($0, deadzone: dz, limit: 2047) })
        }
        let q = try RateDistortionQuantizer.quantize(y, bits: 12, lambda: 0.2, initialDeadzone: 0.15)
        var lowered = 0
        for (u, v) in zip(y.scalars, q.scalars) {
            let near = u.rounded(.toNearestOrEven)
            #expect(v == near || (near != 0 && v == near - (near > 0 ? 1 : -1)), "\(u) -> \(v)")
            if v != near { lowered += 1 }
        }
        #expect(lowered > 0)
    }

    @Test("Inputs of several coder segments: the same levels for any thread count, each nearest or one toward zero")
    func segments() throws {
        let y = Self.latents(channels: 4, height: 400, width: 200, seed: 9)  // 320 000 latents: 2 segments
        let before = Threading.count
        defer { Threading.setCount(before) }
        Threading.setCount(1)
        let one = try RateDistortionQuantizer.quantize(y, bits: 12, lambda: 0.2, initialDeadzone: 0.15)
        Threading.setCount(2)
        let two = try RateDistortionQuantizer.quantize(y, bits: 12, lambda: 0.2, initialDeadzone: 0.15)
        #expect(one.scalars == two.scalars)
        #expect(zip(y.scalars, one.scalars).allSatisfy { u, v in
            let near = u.rounded(.toNearestOrEven)
            return v == near || (near != 0 && v == near - (near > 0 ? 1 : -1))
        })
    }

    @Test("Fewer bits for the error it adds: a smaller payload and a lower error² + λ·bits than nearest rounding")
    func tradeOff() throws {
        let y = Self.latents(), lambda: Float = 0.15
        let near = try RateDistortionQuantizer.quantize(y, bits: 12, lambda: 0)
        let rd = try RateDistortionQuantizer.quantize(y, bits: 12, lambda: lambda)
        let bitsNear = Float(try LatentCoder.encode(near, bits: 12).count * 8), bitsRD = Float(try LatentCoder.encode(rd, bits: 12).count * 8)
        #expect(bitsRD < 0.97 * bitsNear)
        #expect(Self.squaredError(y, rd) > Self.squaredError(y, near))
        #expect(Self.squaredError(y, rd) + lambda * bitsRD < Self.squaredError(y, near) + lambda * bitsNear)
        // Larger λ: fewer bits still.
        let coarse = try RateDistortionQuantizer.quantize(y, bits: 12, lambda: 4 * lambda)
        let bitsCoarse = try LatentCoder.encode(coarse, bits: 12).count * 8
        #expect(bitsCoarse < Int(bitsRD))
    }

    @Test("Channels past `channels` (an audio model's envelope) are rounded plainly; bad inputs are errors")
    func channelsAndErrors() throws {
        let y = Self.latents()
        let q = try RateDistortionQuantizer.quantize(y, bits: 12, lambda: 0.3, channels: 2, initialDeadzone: 0.2)
        let n = y.count / y.shape[0]
        #expect(Array(q.scalars[(2 * n)...]) == y.scalars[(2 * n)...].map { $0.rounded(.toNearestOrEven) })
        #expect(Array(q.scalars[..<(2 * n)]) != y.scalars[..<(2 * n)].map { $0.rounded(.toNearestOrEven) })
        var bad = y
        bad.scalars[7] = .nan
        #expect(throws: WallocError.self) { try RateDistortionQuantizer.quantize(bad, bits: 12, lambda: 0.1) }
        #expect(throws: WallocError.self) { try RateDistortionQuantizer.quantize(y, bits: 12, lambda: -1) }
        #expect(throws: WallocError.self) { try RateDistortionQuantizer.quantize(y, bits: 20, lambda: 0.1) }
        // Audio layout [C, L] works too.
        let a = Tensor(shape: [3, 256], scalars: Array(y.scalars.prefix(768)))
        #expect(try RateDistortionQuantizer.quantize(a, bits: 12, lambda: 0.1).shape == [3, 256])
    }

    @Test("config.json: rd_lambda is read, written only when set, validated, outside the fingerprint; files shrink and decode")
    func configurationAndFiles() throws {
        let json = #"{"max_step": 2, "min_step": 0.05, "deadzone": 0.15, "rd_lambda": 0.1}"#
        let r = try JSONDecoder().decode(RateConfig.self, from: Data(json.utf8))
        #expect(r.rdLambda == 0.1)
        #expect(try JSONDecoder().decode(RateConfig.self, from: try JSONEncoder().encode(r)) == r)
        let plain = try JSONDecoder().decode(RateConfig.self, from: Data(#"{"max_step": 2, "min_step": 0.05}"#.utf8))
        let written = String(decoding: try JSONEncoder().encode(plain), as: UTF8.self)
        #expect(plain.rdLambda == 0 && !written.contains("rd_lambda"))
        for bad: Float in [-0.1, 11] {
            #expect(throws: WallocError.self) { try RateConfig(maxStep: 2, minStep: 0.05, defaultQuality: 60, rdLambda: bad).validate() }
        }
        let base = try DeadzoneTests.compressor(deadzone: 0.15)
        var config = base.codec.config
        config.rate?.rdLambda = 0.3
        var codec = try Codec(config: config, seed: 1)
        let source = Dictionary(uniqueKeysWithValues: base.codec.namedParameters())
        codec.visitParameters(prefix: "") { name, t in if let s = source[name] { t.scalars = s.scalars } }
        codec.parametersDidChange()
        let rd = try Compressor(codec: codec, name: "rgb-vr").withQuality(30), zoned = try base.withQuality(30)
        #expect(rd.codec.fingerprint == zoned.codec.fingerprint)
        let image = VariableRateTests.image()
        let (fa, _) = try zoned.compress(image: image), (fb, _) = try rd.compress(image: image)
        #expect(fb.encode().count < fa.encode().count)
        // The plain model reads the file and decodes it alike.
        #expect(try VariableRateTests.decodedPixels(zoned, fb) == (try VariableRateTests.decodedPixels(rd, fb)))
    }
}
