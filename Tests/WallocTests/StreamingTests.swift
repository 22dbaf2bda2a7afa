import Foundation
import Testing
import Walloc

@Suite("Long signals in pieces")
struct StreamingTests {
    /// A band-limited random signal in [-0.5, 0.5] (sums of sinusoids and a little noise).
    static func signal(channels: Int, length: Int, seed: UInt64) -> Tensor {
        let noise = randomTensor([channels, length], seed: seed)
        var x = Tensor(zeros: [channels, length])
        for c in 0..<channels {
            for t in 0..<length {
                let v = 0.2 * sin(Float(t) * 0.013 * Float(c + 1)) + 0.15 * sin(Float(t) * 0.21 + Float(c)) + 0.1 * noise.scalars[c * length + t]
                x.scalars[c * length + t] = v
            }
        }
        return x
    }

    static func models() throws -> [(String, Codec)] {
        var out = [(String, Codec)]()
        for name in ["reference/codec1d_full", "reference/codec1d_light", "generated/codec1d_mono_j2", "generated/codec1d_6ch_full"] {
            out.append((name, try Codec.load(from: Fixtures.root.appendingPathComponent(name))))
        }
        // Post filter and linear skip, with an encoder scaled so latents use the quantiser's range.
        let config = ModelConfig(type: .codec1D, channels: 2, J: 3, Nd: 16, latentDim: 4, latentBits: 8,
                                 lightweightEncode: true, postFilter: true, linearSkip: true)
        var codec = try Codec(config: config, seed: 11)
        codec.visitParameters(prefix: "") { name, t in if name == "encoder.0.weight" { t.scalars = t.scalars.map { $0 * 300 } } }
        codec.parametersDidChange()
        out.append(("random post filter + skip", codec))
        // A variable-rate model with spectral-envelope channels (whose window needs extra context).
        let vr = ModelConfig(type: .codec1D, channels: 2, J: 3, Nd: 16, latentDim: 4, latentBits: 12, lightweightEncode: true,
                             postFilter: false, linearSkip: true, rate: RateConfig(maxStep: 0.5, minStep: 0.01, defaultQuality: 70),
                             envelope: EnvelopeConfig(groups: 3, window: 24, stepDB: 2, firstBand: 2))
        out.append(("variable rate + envelope", try Codec(config: vr, seed: 12)))
        return out
    }

    @Test("Encoding and decoding in pieces equals whole-signal processing", arguments: [1, 7, 64])
    func piecesEqualWhole(chunk: Int) throws {
        for (name, codec) in try Self.models() {
            let f = codec.config.downsampling
            let x = Self.signal(channels: codec.config.channels, length: 150 * f, seed: 3)
            let whole = try codec.encode(x)
            let pieces = try codec.encodeStreaming(TensorSource(x), chunk: chunk)
            #expect(pieces.shape == whole.shape, "\(name)")
            let differing = zip(pieces.scalars, whole.scalars).filter { $0 != $1 }
            #expect(differing.count <= max(1, whole.count / 1000) && differing.allSatisfy { abs($0 - $1) <= 1 },
                    "\(name), chunk \(chunk): \(differing.count) of \(whole.count) latents differ")
            let reference = try codec.decode(whole)
            var parts = [Tensor]()
            var next = 0
            try codec.decodeStreaming(whole, chunk: chunk) { range, piece in
                #expect(range.lowerBound == next && piece.shape == [codec.config.channels, range.count])
                next = range.upperBound
                parts.append(piece)
            }
            let decoded = Tensor.concatenateLastAxis(parts)
            #expect(decoded.shape == reference.shape)
            // Float noise only (GEMMs of other shapes sum in other orders); a missing margin shows as errors of the signal's size.
            #expect(decoded.maxAbsDifference(reference) < 5e-4, "\(name), chunk \(chunk): \(decoded.maxAbsDifference(reference))")
        }
    }

    @Test("Radii cover the networks' reach")
    func radii() throws {
        let full = try Codec.load(from: Fixtures.reference("codec1d_full"))
        // conv 7 (3) + 2 blocks x (units 3 + 9 + 27, conv 2 (1)) + conv 3 (1) = 84, plus the margin.
        #expect(full.encoderRadius == 88)
        // conv 7 (3) + 2 blocks x (transposed conv 2 (1), units 39) + conv 7 (3) = 86, plus the margin.
        #expect(full.decoderRadius == 90)
    }
}

@Suite("Large images in tiles")
struct TilingTests {
    @Test("Tiles reproduce whole-image decoding exactly without attention, closely with it")
    func tiles() throws {
        let linear = try Codec.load(from: Fixtures.root.appendingPathComponent("generated/linear2d_rgba_j3"))
        let x = RoundTripTests.pixels(channels: 4, height: 96, width: 136, seed: 2).map { $0 - 0.5 }
        let y = try linear.encode(x)
        #expect(try linear.encodeTiled(x, tile: 5, overlap: 2) == y)
        let whole = try linear.decode(y)
        let linearTiled = try linear.decodeTiled(y, tile: 5, overlap: 2)
        #expect(linearTiled.maxAbsDifference(whole) < 1e-4, "\(linearTiled.maxAbsDifference(whole)) \(linearTiled.shape) \(whole.shape)")

        // The VAE decoder's attention sees one tile instead of the image: close, not equal.
        let vae = try Codec.load(from: Fixtures.reference("codec2d_full"))
        let x3 = RoundTripTests.pixels(channels: 3, height: 64, width: 96, seed: 3).map { $0 - 0.5 }
        let y3 = try vae.encode(x3)
        let tiledLatents = try vae.encodeTiled(x3, tile: 6, overlap: 3)
        #expect(tiledLatents.shape == y3.shape)
        let reference = try vae.decode(y3), tiled = try vae.decodeTiled(y3, tile: 6, overlap: 3)
        #expect(tiled.shape == reference.shape)
        var mse: Double = 0
        for i in 0..<tiled.count { let d = Double(tiled.scalars[i] - reference.scalars[i]); mse += d * d }
        let psnr = 10 * log10(1 / max(mse / Double(tiled.count), 1e-20))
        #expect(psnr > 20, "tiled vs whole decoding: \(psnr) dB")
        // Grids within one tile are decoded whole.
        // (Float sums may be ordered differently when other tests keep the worker pool busy.)
        #expect(try vae.decodeTiled(y3).maxAbsDifference(reference) < 1e-5)
        // The releasing form (what Compressor uses) gives the same image and empties the latents.
        // It reports the fraction of tiles done, rising to 1 (8 x 12 positions in 6 x 6 tiles: 4 tiles).
        var owned = y3
        var fractions = [Double]()
        let released = try vae.decodeTiled(releasing: &owned, tile: 6, overlap: 3) { fractions.append($0) }
        #expect(released.maxAbsDifference(tiled) < 1e-6 && owned.count == 0)
        #expect(!fractions.isEmpty && fractions == fractions.sorted() && fractions.last == 1)
        // Tiles decoded one at a time (one thread) give the same image.
        let serial = try Threading.serially { try vae.decodeTiled(y3, tile: 6, overlap: 3) }
        #expect(serial.maxAbsDifference(tiled) == 0)
    }
}

@Suite("Images encoded in strips")
struct StripEncodingTests {
    @Test("strip encoding equals whole-image encoding", arguments: ["codec2d_light", "linear2d_gray"])
    func equalsWhole(model: String) throws {
        let codec = try Codec.load(from: Fixtures.reference(model))
        let c = codec.config.channels, f = codec.config.downsampling
        // 37 band rows: strips of 4 leave a short last strip, and the wrap-around reaches past both ends.
        let x = RoundTripTests.pixels(channels: c, height: 37 * f, width: 5 * f, seed: 11).map { $0 - 0.5 }
        let whole = try codec.encode(x)
        for strip in [4, 9, 18] {
            let strips = try codec.encodeStrips(x, strip: strip)
            #expect(strips.shape == whole.shape)
            var differ = 0
            for i in 0..<whole.count where strips.scalars[i] != whole.scalars[i] {
                differ += 1
                #expect(abs(strips.scalars[i] - whole.scalars[i]) <= 1, "strip \(strip): latent \(i)")
            }
            // Float rounding may flip a latent that lies on a rounding boundary, nothing more.
            #expect(differ <= whole.count / 1000, "strip \(strip): \(differ) of \(whole.count) latents differ")
        }
        let vae = try Codec.load(from: Fixtures.reference("codec2d_full"))
        #expect(throws: WallocError.self) { try vae.encodeStrips(RoundTripTests.pixels(channels: 3, height: 64, width: 64, seed: 1).map { $0 - 0.5 }, strip: 2) }
    }

    @Test("strip synthesis equals whole-image synthesis")
    func synthesisEqualsWhole() throws {
        let codec = try Codec.load(from: Fixtures.reference("codec2d_light"))
        let f = codec.config.downsampling
        let x = RoundTripTests.pixels(channels: 3, height: 37 * f, width: 5 * f, seed: 12).map { $0 - 0.5 }
        let bands = try codec.analysis(x)
        let whole = try codec.reconstruct(bands: bands)
        for strip in [4, 9, 18] {
            let strips = try codec.reconstructStrips(bands: bands, strip: strip)
            #expect(strips.shape == whole.shape)
            #expect(strips.maxAbsDifference(whole) < 1e-5, "strip \(strip)")
            // Padding left out as the strips are written equals cropping afterwards.
            for padding in [Padding(before: [5, 1], after: [12, 3]), Padding(before: [0, 0], after: [0, 0]), Padding(before: [100, 2], after: [150, 0])] {
                let cropped = try codec.reconstructStrips(bands: bands, strip: strip, crop: padding)
                #expect(cropped == SignalPreparation.crop(strips, padding: padding), "strip \(strip), crop \(padding)")
            }
        }
    }
}
