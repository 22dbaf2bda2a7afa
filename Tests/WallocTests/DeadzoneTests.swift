import Foundation
import Testing
import Walloc

/// The encoder's dead zone (`rate.deadzone`): a wider zero bin, an encoder-side choice that
/// decoders and fingerprints do not see.
@Suite("Encoder dead zone")
struct DeadzoneTests {
    @Test("Levels: zero below ½ + deadzone, rounding half to even above, clamped")
    func levels() {
        let cases: [(Float, Float, Float)] = [(0.6, 0.15, 0), (0.64, 0.15, 0), (-0.64, 0.15, 0), (0.66, 0.15, 1), (-0.7, 0.15, -1),
                                              (1.4, 0.15, 1), (1.5, 0.15, 2), (2.5, 0.15, 2), (0.6, 0, 1), (0.5, 0, 0), (9, 0.15, 7)]
        for (u, dz, want) in cases { #expect(Quantizer.level(u, deadzone: dz, limit: 7) == want, "level(\(u), deadzone \(dz))") }
    }

    @Test("config.json: the dead zone is read, written only when set, validated, and not part of the fingerprint")
    func configuration() throws {
        let json = #"{"max_step": 2, "min_step": 0.05, "default_quality": 60, "deadzone": 0.15}"#
        let r = try JSONDecoder().decode(RateConfig.self, from: Data(json.utf8))
        #expect(r.deadzone == 0.15)
        let plain = try JSONDecoder().decode(RateConfig.self, from: Data(#"{"max_step": 2, "min_step": 0.05}"#.utf8))
        #expect(plain.deadzone == 0)
        #expect(!String(decoding: try JSONEncoder().encode(plain), as: UTF8.self).contains("deadzone"))
        #expect(try JSONDecoder().decode(RateConfig.self, from: try JSONEncoder().encode(r)) == r)
        for bad: Float in [-0.1, 0.5] {
            #expect(throws: WallocError.self) { try RateConfig(maxStep: 2, minStep: 0.05, defaultQuality: 60, deadzone: bad).validate() }
        }
        let zoned = try Self.compressor(deadzone: 0.2), plainCodec = try Self.compressor(deadzone: 0)
        #expect(zoned.codec.fingerprint == plainCodec.codec.fingerprint)
    }

    @Test("Encoding: only more zeros (every other latent as plain rounding gives it), a smaller file, and the same decoder")
    func encoding() throws {
        let image = VariableRateTests.image()
        let plain = try Self.compressor(deadzone: 0).withQuality(30), zoned = try Self.compressor(deadzone: 0.2).withQuality(30)
        let (fa, _) = try plain.compress(image: image), (fb, _) = try zoned.compress(image: image)
        let a = try plain.latents(of: fa), b = try zoned.latents(of: fb)
        var zeroed = 0
        for (x, y) in zip(a.scalars, b.scalars) {
            #expect(y == x || y == 0)
            if x != 0 && y == 0 { zeroed += 1; #expect(abs(x) == 1) }
        }
        #expect(zeroed > 0)
        #expect(fb.encode().count < fa.encode().count)
        // A decoder without the dead zone reads the file (same fingerprint) and decodes it alike.
        #expect(try VariableRateTests.decodedPixels(plain, fb) == (try VariableRateTests.decodedPixels(zoned, fb)))
    }

    @Test("Audio: the dead zone leaves the envelope channels alone")
    func envelopeChannels() throws {
        func codec(_ dz: Float) throws -> Codec {
            let config = ModelConfig(type: .codec1D, channels: 2, J: 3, Nd: 16, latentDim: 4, latentBits: 12, lightweightEncode: true,
                                     postFilter: false, linearSkip: true,
                                     rate: RateConfig(maxStep: 0.5, minStep: 0.01, defaultQuality: 70, deadzone: dz),
                                     envelope: EnvelopeConfig(groups: 3, window: 24, stepDB: 2, firstBand: 2))
            return try Codec(config: config, seed: 12)
        }
        var x = StreamingTests.signal(channels: 2, length: 2048, seed: 3)
        x.scale(by: 0.05)
        let a = try codec(0).withQuality(10).encode(x), b = try codec(0.45).withQuality(10).encode(x)
        let latents = 4 * a.shape[1]
        #expect(Array(a.scalars[latents...]) == Array(b.scalars[latents...]))
        #expect(a.scalars[latents...].contains { $0 != 0 })
        #expect(b.scalars[..<latents].filter { $0 == 0 }.count > a.scalars[..<latents].filter { $0 == 0 }.count)
    }

    static func compressor(deadzone: Float) throws -> Compressor {
        var config = VariableRateTests.rgb.codec.config
        config.rate?.deadzone = deadzone
        var codec = try Codec(config: config, seed: 1)
        let source = Dictionary(uniqueKeysWithValues: VariableRateTests.rgb.codec.namedParameters())
        codec.visitParameters(prefix: "") { name, t in if let s = source[name] { t.scalars = s.scalars } }
        codec.parametersDidChange()
        return Compressor(codec: codec, name: "rgb-vr")
    }
}
