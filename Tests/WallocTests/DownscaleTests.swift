import Foundation
import Testing
import Walloc

/// `rate.downscale`: at low settings an image is coded smaller and enlarged back when decoded.
@Suite("Downscaled coding at low settings")
struct DownscaleTests {
    /// A 4 x 5 float image and Pillow 13's `Image.fromarray(x, mode="F").resize(size, Image.LANCZOS)`
    /// of it (generated once with Pillow; `sin(0.9 i + 0.4 j²) / 2`).
    static let input: [Float] = [0.000000, 0.194709, 0.499787, -0.221260, 0.058275, 0.391663, 0.481779, 0.299236, -0.488765,
                                 0.425218, 0.486924, 0.404248, -0.127771, -0.386382, 0.470365, 0.213690, 0.020790, -0.458083,
                                 0.008407, 0.159549]
    static let enlarged: [Float] = [
        -0.053080, -0.020667, 0.105781, 0.422422, 0.508101, 0.124643, -0.212106, -0.092081, 0.066494, 0.090254, 0.129351,
        0.237206, 0.482532, 0.469544, -0.011294, -0.302919, -0.024234, 0.240625, 0.342482, 0.387899, 0.444379, 0.518927,
        0.324646, -0.262097, -0.424382, 0.105605, 0.526609, 0.518417, 0.559813, 0.551572, 0.436879, 0.104270, -0.454989,
        -0.449737, 0.212347, 0.694446, 0.460568, 0.479275, 0.410030, 0.157817, -0.163127, -0.442700, -0.272279, 0.223329,
        0.549117, 0.298662, 0.290620, 0.176583, -0.154786, -0.391321, -0.330039, -0.034474, 0.183536, 0.280348, 0.186440,
        0.164676, 0.036108, -0.310038, -0.481278, -0.241686, 0.096414, 0.146706, 0.112148]
    static let shrunk: [Float] = [0.342846, 0.185434, -0.036727, 0.363286, -0.198879, 0.086985]
    /// The same shrunk with `Image.BILINEAR` (Pillow's triangle filter).
    static let shrunkTriangle: [Float] = [0.284669, 0.177476, 0.002735, 0.311116, -0.111480, 0.089628]

    @Test("Lanczos-3 and triangle resampling match Pillow, enlarging and shrinking, and keep constants")
    func resamplingMatchesPillow() throws {
        let x = Tensor(shape: [1, 4, 5], scalars: Self.input)
        let up = Resize.resample(x, height: 7, width: 9, filter: .lanczos), down = Resize.resample(x, height: 2, width: 3, filter: .lanczos)
        let tent = Resize.resample(x, height: 2, width: 3, filter: .triangle)
        #expect(up.shape == [1, 7, 9] && down.shape == [1, 2, 3] && tent.shape == [1, 2, 3])
        for (a, b) in zip(up.scalars, Self.enlarged) { #expect(abs(a - b) < 2e-6) }
        for (a, b) in zip(down.scalars, Self.shrunk) { #expect(abs(a - b) < 2e-6) }
        for (a, b) in zip(tent.scalars, Self.shrunkTriangle) { #expect(abs(a - b) < 2e-6) }
        // Every output's weights sum to 1: a constant image stays constant (two channels, 3x).
        let constant = Tensor(shape: [2, 5, 6], scalars: [Float](repeating: 0.25, count: 60))
        for filter in [Resize.Filter.lanczos, .triangle] {
            let flat = Resize.resample(constant, height: 15, width: 18, filter: filter)
            #expect(flat.scalars.allSatisfy { abs($0 - 0.25) < 1e-6 })
        }
    }

    static let rules = [RateConfig.Downscale(upTo: 30, scale: 0.5, qualityOffset: 20),
                        RateConfig.Downscale(upTo: 40, scale: 0.75, qualityOffset: 10)]

    /// The linear RGB codec of `SmoothMarginTests` (no margin), with these rules.
    static func compressor(rules: [RateConfig.Downscale] = DownscaleTests.rules) throws -> Compressor {
        try SmoothMarginTests.compressor(margin: nil, downscale: rules)
    }

    @Test("config.json: rate.downscale is read, validated, mapped per setting, and not part of the fingerprint")
    func configuration() throws {
        let text = #"{"type": "LinearCodec2D", "channels": 3, "J": 2, "latent_dim": 12, "latent_bits": 12, "rate": {"max_step": 2, "min_step": 0.01, "downscale": [RULES]}}"#
        let json = text.replacingOccurrences(of: "RULES", with: #"{"up_to": 30, "scale": 0.5, "quality_offset": 20}, {"up_to": 40, "scale": 0.75, "quality_offset": 10}"#)
        let config = try ModelConfig.decode(Data(json.utf8), name: "config.json")
        let rate = try #require(config.rate)
        #expect(rate.downscale == Self.rules)
        #expect(rate.downscaling(quality: 1)?.quality == 21 && rate.downscaling(quality: 30)?.rule.scale == 0.5)
        #expect(rate.downscaling(quality: 31)?.quality == 41 && rate.downscaling(quality: 40)?.rule.scale == 0.75)
        #expect(rate.downscaling(quality: 41) == nil)
        #expect(String(decoding: try config.encoded(), as: UTF8.self).contains("quality_offset"))
        for bad in [#"{"up_to": 40, "scale": 0.5, "quality_offset": 0}, {"up_to": 30, "scale": 0.5, "quality_offset": 0}"#,
                    #"{"up_to": 30, "scale": 1, "quality_offset": 0}"#, #"{"up_to": 30, "scale": 0.1, "quality_offset": 0}"#,
                    #"{"up_to": 101, "scale": 0.5, "quality_offset": 0}"#, #"{"up_to": 30, "scale": 0.5, "quality_offset": 100}"#] {
            #expect(throws: WallocError.self) { try ModelConfig.decode(Data(text.replacingOccurrences(of: "RULES", with: bad).utf8), name: "c") }
        }
        let audio = #"{"type": "Codec1D", "channels": 2, "J": 3, "Nd": 16, "latent_dim": 8, "latent_bits": 12, "lightweight_encode": true, "rate": {"max_step": 2, "min_step": 0.01, "downscale": [{"up_to": 30, "scale": 0.5, "quality_offset": 20}]}}"#
        #expect(throws: WallocError("c: rate.downscale applies to image models")) { try ModelConfig.decode(Data(audio.utf8), name: "c") }
        #expect(try Self.compressor().fingerprint == (try Self.compressor(rules: [])).fingerprint)
    }

    @Test("Files: low settings code a smaller image at the offset quality, in version 4; decoding restores the size")
    func files() throws {
        let image = Image(pixels: RoundTripTests.pixels(channels: 3, height: 80, width: 120, seed: 5), bitDepth: 8, isFloat: false, format: .png)
        let c = try Self.compressor()
        for (q, size, coded) in [(10, [40, 60], 30), (35, [60, 90], 45), (60, nil, 60)] as [(Int, [Int]?, Int)] {
            let encoder = try c.withQuality(q)
            let (file, _) = try encoder.compress(image: image)
            let back = try WLCFile.decode(file.encode())
            #expect(back == file)
            #expect(back.header.quality == q && back.header.decodingQuality == coded)
            #expect(back.header.downscaling?.size == size && back.header.version == (size == nil ? 3 : 4))
            #expect(back.header.codedSize == size ?? [80, 120])
            let decoded = try VariableRateTests.decodedPixels(c, back)
            #expect(decoded.shape == [3, 80, 120])
            #expect(try ImageMetrics.psnr(image.pixels, decoded) > 15)
        }
        // A downscaled file is smaller than the full-size one at the same coded quality.
        let small = try c.withQuality(10).compress(image: image).file, full = try c.withQuality(30).compress(image: image).file
        #expect(small.encode().count < full.encode().count)
        // Images with a coded side under 32 pixels are coded at full size.
        let (tiny, _) = try c.withQuality(10).compress(image: VariableRateTests.image())  // 45 x 70
        #expect(tiny.header.downscaling == nil && tiny.header.quality == 10)
    }

    @Test("CLI: the default RGB model downscales at a low setting; encode, info and decode say so and restore the size")
    func commandLine() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let png = dir.appendingPathComponent("p.png").path, wlc = dir.appendingPathComponent("p.wlc").path
        try ImageIO.write(WLCLatentsTests.picture(h: 80, w: 96, seed: 4), to: URL(fileURLWithPath: png), format: .png)
        var r = try CLI.run(["encode", png, "-o", wlc, "--quality", "20"])
        #expect(r.status == 0 && r.stdout.contains("(coded at 48x40, quality 43)"), "\(r.stdout)\(r.stderr)")
        r = try CLI.run(["info", wlc, "--json"])
        let info = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(info["format_version"] as? Int == 4 && info["quality"] as? Int == 20 && info["coded_quality"] as? Int == 43)
        #expect(info["coded_size"] as? [Int] == [40, 48] && info["shape"] as? [Int] == [3, 80, 96])
        let out = dir.appendingPathComponent("d.png")
        r = try CLI.run(["decode", wlc, "-o", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try ImageIO.read(out).pixels.shape == [3, 80, 96])
        // --no-downscale codes the image at full size, as before the rules (version 3).
        let full = dir.appendingPathComponent("f.wlc").path
        r = try CLI.run(["encode", png, "-o", full, "--quality", "20", "--no-downscale"])
        #expect(r.status == 0 && !r.stdout.contains("coded at"), "\(r.stdout)\(r.stderr)")
        let header = try WLCFile.decode(try Data(contentsOf: URL(fileURLWithPath: full))).header
        #expect(header.version == 3 && header.downscaling == nil && header.latentShape == [64, 12, 14])
        // walloc eval measures either way (different files, about the same size by design).
        var bpp = [Double]()
        for extra in [[], ["--no-downscale"]] {
            let json = dir.appendingPathComponent("e\(extra.count).json").path
            r = try CLI.run(["eval", png, "--qualities", "walloc:20", "--baselines", "none", "--json", json, "--quiet"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
            let rows = try #require(report["rows"] as? [[String: Any]])
            bpp.append(try #require(rows.first?["bpp"] as? Double))
        }
        #expect(bpp.count == 2 && bpp[0] != bpp[1] && bpp.allSatisfy { $0 > 0 })
    }
}
