import Foundation
import Testing
import Walloc

/// The embedded default models: present, small, found without a path, and as good on the bundled
/// samples (held out from training) as their model cards say.
@Suite("Default models")
struct DefaultModelTests {
    static let samples = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("samples")

    @Test("both default models are installed, with entropy tables, under 20 MB", arguments: [Modality.image, .audio])
    func installed(modality: Modality) throws {
        let dir = try #require(DefaultModels.directory(for: modality), "no default \(modality.rawValue) model")
        for name in [Codec.configFileName, Codec.weightsFileName, Compressor.entropyFileName] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path), "\(name) missing")
        }
        let weights = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(Codec.weightsFileName).path)
        #expect(try #require(weights[.size] as? Int) < 20_000_000)
        let compressor = try Compressor.load(modelDirectory: dir)
        #expect(compressor.codec.modality == modality)
        #expect(compressor.entropyModel != nil)
    }

    /// Encodes and decodes a sample with no --model; the figures `walloc compare --json` reports.
    func roundTrip(_ sample: String, decodedName: String, encodeOptions: [String] = []) throws -> [String: Any] {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = Self.samples.appendingPathComponent(sample).path
        let wlc = dir.appendingPathComponent("x.wlc").path, decoded = dir.appendingPathComponent(decodedName).path
        for args in [["encode", "--quiet", input, "-o", wlc] + encodeOptions, ["decode", "--quiet", wlc, "-o", decoded]] {
            let r = try CLI.run(args)
            try #require(r.status == 0, "\(args): \(r.stderr)")
        }
        let r = try CLI.run(["compare", input, decoded, "--wlc", wlc, "--json"])
        try #require(r.status == 0, "compare: \(r.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    /// A bundled sample, its decoded name, and the quality and rate `walloc compare` must report
    /// (the default setting, 60: photo 32.14 dB at 0.282 bpp, music 24.05 dB at 29.4 kbps).
    struct Sample: Sendable, CustomTestStringConvertible {
        var file: String, decoded: String
        var quality: (key: String, range: ClosedRange<Double>), rate: (key: String, range: ClosedRange<Double>)
        var testDescription: String { file }
    }

    @Test("the bundled samples: quality and rate of the model cards", arguments: [
        Sample(file: "chelsea.png", decoded: "y.png", quality: ("psnr_db", 31.7...32.3), rate: ("bits_per_pixel", 0.265...0.300)),
        Sample(file: "wanderer-excerpt.flac", decoded: "y.flac", quality: ("snr_db", 23.3...24.7), rate: ("kbps", 28.5...31.5)),
    ])
    func sample(_ s: Sample) throws {
        let m = try roundTrip(s.file, decodedName: s.decoded)
        let quality = try #require(m[s.quality.key] as? Double), rate = try #require(m[s.rate.key] as? Double)
        #expect(s.quality.range.contains(quality), "\(s.quality.key) \(quality)")
        #expect(s.rate.range.contains(rate), "\(s.rate.key) \(rate)")
    }

    /// Both defaults are variable-rate: a low and a high setting (the demo's) bracket the default
    /// in size and quality, and the decoded music keeps its high bands at every setting (the
    /// previous default was a 2 kHz low-pass: 28-40 dB down above 2 kHz).
    @Test("the quality setting of the default models", arguments: ["chelsea.png", "wanderer-excerpt.flac"])
    func qualitySetting(_ file: String) throws {
        let audio = file.hasSuffix(".flac")
        let decoded = audio ? "y.flac" : "y.png", rateKey = audio ? "kbps" : "bits_per_pixel", qualityKey = audio ? "snr_db" : "psnr_db"
        let low = try roundTrip(file, decodedName: decoded, encodeOptions: ["--quality", "20"])
        let mid = try roundTrip(file, decodedName: decoded)
        let high = try roundTrip(file, decodedName: decoded, encodeOptions: ["--quality", "80"])
        let rates = try [low, mid, high].map { try #require($0[rateKey] as? Double) }
        let qualities = try [low, mid, high].map { try #require($0[qualityKey] as? Double) }
        #expect(rates[0] < rates[1] && rates[1] < rates[2], "\(rates)")
        #expect(qualities[0] < qualities[1] && qualities[1] < qualities[2], "\(qualities)")
        if audio {
            for m in [low, mid, high] {
                for band in ["energy_db_2k_4k", "energy_db_4k_8k", "energy_db_8k_16k"] {
                    let db = try #require(m[band] as? Double, "\(band)")
                    #expect(abs(db) < 6, "\(band) \(db) dB")
                }
            }
        }
    }

    /// Tiled decoding (what `decode` does above 24 x 24 latent positions) against whole-image
    /// decoding, on a 1024 x 1280 photo made by mirroring the sample: the model card's figures.
    @Test("tiled decoding of a large photo is as good as whole-image decoding")
    func tiling() throws {
        let dir = try #require(DefaultModels.directory(for: .image))
        let codec = try Codec.load(from: dir)
        let photo = try ImageIO.read(Self.samples.appendingPathComponent("chelsea.png")).pixels
        let (c, h, w) = (photo.shape[0], photo.shape[1], photo.shape[2])
        let (H, W) = (1024, 1280)
        let large = Tensor(uninitializedShape: [c, H, W]) { dst in
            photo.withUnsafeBufferPointer { src in
                for ch in 0..<c { for y in 0..<H { for x in 0..<W {
                    dst[(ch * H + y) * W + x] = src[(ch * h + SignalPreparation.mirror(y, h)) * w + SignalPreparation.mirror(x, w)]
                } } }
            }
        }
        let signal = SignalPreparation.imageToSignal(large)
        let latents = try codec.encode(signal)
        #expect(latents.shape == [64, 128, 160])
        let whole = try codec.decode(latents), tiled = try codec.decodeTiled(latents)
        let between = try ImageMetrics.psnr(whole, tiled)
        let psnrWhole = try ImageMetrics.psnr(signal, whole), psnrTiled = try ImageMetrics.psnr(signal, tiled)
        print(String(format: "tiling: whole vs tiled %.2f dB (max |diff| %.4f); PSNR whole %.3f dB, tiled %.3f dB",
                     between, whole.maxAbsDifference(tiled), psnrWhole, psnrTiled))
        // Measured with 24-position tiles and 4 of context: 57.2 dB between them, the same PSNR
        // (earlier weights: 58.0 dB, tiles 0.007 dB higher; with 48/8 tiles 46.5 dB, tiles 0.31 dB
        // higher: a model trained on small crops has its attention used to local context).
        #expect(between > 45, "whole vs tiled: \(between) dB")
        #expect(psnrTiled > psnrWhole - 0.05, "whole \(psnrWhole) dB, tiled \(psnrTiled) dB")
    }

    @Test("walloc latents and reconstruct take image and audio files")
    func latentsOfFiles() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let photo = Self.samples.appendingPathComponent("chelsea.png").path
        let music = Self.samples.appendingPathComponent("wanderer-excerpt.flac").path
        for args in [["latents", photo, "-o", path("y.npy")], ["reconstruct", path("y.npy"), "-o", path("x.png")],
                     ["latents", music, "-o", path("a.npy")], ["reconstruct", path("a.npy"), "-o", path("a.wav"), "--sample-rate", "44100"],
                     ["encode", "--quiet", photo, "-o", path("c.wlc")]] {
            let r = try CLI.run(args)
            try #require(r.status == 0, "\(args): \(r.stderr)")
        }
        // The latents are exactly those the .wlc file stores: 451 x 300 pixels with the model's
        // smooth margin (at least 12 pixels per axis) padded to 464 x 312.
        let y = try NPY.read(URL(fileURLWithPath: path("y.npy")))
        #expect(y.shape == [64, 39, 58])
        let c = try Compressor.load(modelDirectory: try #require(DefaultModels.directory(for: .image)))
        #expect(try c.latents(of: try WLCFile.decode(try FileIO.read(URL(fileURLWithPath: path("c.wlc"))))) == y)
        #expect(try ImageIO.read(URL(fileURLWithPath: path("x.png"))).pixels.shape == [3, 312, 464])
        // 4 s of stereo: 176,400 samples padded to a multiple of 256, latents with 2 extra positions;
        // 128 encoder channels and 2 x 13 envelope channels.
        #expect(try NPY.read(URL(fileURLWithPath: path("a.npy"))).shape == [154, 692])
        let audio = try AudioIO.read(URL(fileURLWithPath: path("a.wav")))
        #expect(audio.samples.shape == [2, 176_640] && audio.sampleRate == 44_100)
        // Image latents cannot become audio, and nothing is written.
        let bad = try CLI.run(["reconstruct", path("y.npy"), "-o", path("z.wav")])
        #expect(bad.status != 0 && bad.stderr.contains("the model codes image"))
        #expect(!FileManager.default.fileExists(atPath: path("z.wav")))
    }
}
