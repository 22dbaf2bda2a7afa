import Foundation
import Testing
import Walloc

/// `smooth_margin`: images padded so that the wavelet transform's periodic continuation is smooth.
@Suite("Smooth image margins")
struct SmoothMarginTests {
    /// Ramps across both axes (the left and right edges, and the top and bottom ones, differ).
    static func ramp(channels: Int, height: Int, width: Int) -> Tensor {
        var values = [Float]()
        for c in 0..<channels {
            for y in 0..<height {
                for x in 0..<width { values.append(Float(x) / Float(width) + 0.5 * Float(y) / Float(height) + 0.1 * Float(c)) }
            }
        }
        return Tensor(shape: [channels, height, width], scalars: values)
    }

    /// The largest difference between neighbours along rows and columns, read periodically.
    static func largestPeriodicStep(_ t: Tensor) -> Float {
        let c = t.shape[0], h = t.shape[1], w = t.shape[2]
        var largest: Float = 0
        for ch in 0..<c {
            for y in 0..<h {
                for x in 0..<w {
                    let v = t.scalars[(ch * h + y) * w + x]
                    largest = max(largest, abs(t.scalars[(ch * h + y) * w + (x + 1) % w] - v),
                                  abs(t.scalars[(ch * h + (y + 1) % h) * w + x] - v))
                }
            }
        }
        return largest
    }

    @Test("Padding reaches a multiple with at least the margin, crops back exactly, and joins the ends smoothly",
          arguments: [(17, 30, 12), (64, 64, 12), (5, 9, 8), (40, 24, 0), (1, 3, 16)])
    func padding(height: Int, width: Int, margin: Int) throws {
        let x = Self.ramp(channels: 3, height: height, width: width)
        let (p, padding) = SignalPreparation.padSmooth(x, multiple: 8, margin: margin)
        for (axis, n) in [height, width].enumerated() {
            let total = p.shape[axis + 1] - n
            #expect(p.shape[axis + 1] % 8 == 0 && total >= margin && total < margin + 8)
            #expect(padding.before[axis] == total / 2 && padding.before[axis] + padding.after[axis] == total)
        }
        #expect(SignalPreparation.crop(p, padding: padding) == x)
        if margin == 0 && height % 8 == 0 && width % 8 == 0 { #expect(p == x) }
        // Reflect padding keeps the jump from one edge to the other (about 1 here); the smooth
        // margin spreads it evenly over at least `margin` samples.
        if margin >= 8 && height > 1 {
            if height >= 16 && width >= 16 {
                let reflect = SignalPreparation.padToMultiple(x, multiple: 8).0
                #expect(Self.largestPeriodicStep(reflect) > 0.8)
            }
            #expect(Self.largestPeriodicStep(p) <= 1.5 / Float(margin) + 1e-5)
        }
    }

    /// The linear RGB codec of `VariableRateTests`, with or without a margin (and with
    /// downscaling rules, for `DownscaleTests`).
    static func compressor(margin: Int?, downscale: [RateConfig.Downscale] = []) throws -> Compressor {
        let rate = RateConfig(maxStep: 2, minStep: 0.01, defaultQuality: 50, downscale: downscale)
        var config = ModelConfig(type: .linearCodec2D, channels: 3, J: 2, latentDim: 12, latentBits: 12, rate: rate)
        config.smoothMargin = margin
        var codec = try Codec(config: config, seed: 1)
        let images = (0..<3).map { RoundTripTests.pixels(channels: 3, height: 64, width: 64, seed: UInt64(10 + $0)) }
        try PCAInitialization.apply(to: &codec, signals: images.map(SignalPreparation.imageToSignal), scale: 1)
        return Compressor(codec: codec, name: "rgb-vr")
    }

    @Test("config.json: smooth_margin is read, validated, written only when set, and not part of the fingerprint")
    func configuration() throws {
        let json = #"{"type": "LinearCodec2D", "channels": 3, "J": 2, "latent_dim": 12, "latent_bits": 12, "smooth_margin": 12}"#
        let config = try ModelConfig.decode(Data(json.utf8), name: "config.json")
        #expect(config.smoothMargin == 12)
        #expect(String(decoding: try config.encoded(), as: UTF8.self).contains("\"smooth_margin\" : 12"))
        var plain = config
        plain.smoothMargin = nil
        #expect(!String(decoding: try plain.encoded(), as: UTF8.self).contains("smooth_margin"))
        for bad in [#""smooth_margin": -1"#, #""smooth_margin": 1000"#] {
            let text = #"{"type": "LinearCodec2D", "channels": 3, "J": 2, "latent_dim": 12, "latent_bits": 12, "#
            #expect(throws: WallocError.self) { try ModelConfig.decode(Data((text + bad + "}").utf8), name: "c") }
        }
        let audio = #"{"type": "Codec1D", "channels": 2, "J": 3, "Nd": 16, "latent_dim": 8, "latent_bits": 12, "lightweight_encode": true, "smooth_margin": 8}"#
        #expect(throws: WallocError("c: smooth_margin applies to image models")) { try ModelConfig.decode(Data(audio.utf8), name: "c") }
        #expect(try Self.compressor(margin: 12).fingerprint == (try Self.compressor(margin: nil)).fingerprint)
    }

    @Test("Files: the margin is padding in the header, decoding crops it, and any decoder of the model reads them")
    func files() throws {
        let image = VariableRateTests.image()  // 45 x 70
        let smooth = try Self.compressor(margin: 12).withQuality(60), plain = try Self.compressor(margin: nil).withQuality(60)
        let (fs, _) = try smooth.compress(image: image), (fp, _) = try plain.compress(image: image)
        // J = 2: 45 + 12 rounds up to 60 (15 rows of margin), 70 + 12 to 84 (14 columns).
        #expect(fs.header.paddingBefore == [7, 7] && fs.header.paddingAfter == [8, 7])
        #expect(fp.header.paddingBefore.allSatisfy { $0 < 4 })
        let a = try VariableRateTests.decodedPixels(smooth, fs), b = try VariableRateTests.decodedPixels(plain, fs)
        #expect(a.shape == image.pixels.shape && a == b)
        #expect(try ImageMetrics.psnr(image.pixels, a) > 20)
    }
}
