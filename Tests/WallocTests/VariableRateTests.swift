import Foundation
import Testing
import Walloc

/// Variable-rate models: the quality setting, size targets, grey and mono through colour and
/// stereo models.
@Suite("Variable-rate models")
struct VariableRateTests {
    /// A linear RGB codec started from PCA on smooth synthetic images: at step 0 it is the
    /// weighted-PCA codec, so the quality setting behaves as it does in a trained model.
    static let rgb: Compressor = {
        let rate = RateConfig(maxStep: 2, minStep: 0.01, defaultQuality: 50)
        let config = ModelConfig(type: .linearCodec2D, channels: 3, J: 2, latentDim: 12, latentBits: 12, rate: rate)
        var codec = try! Codec(config: config, seed: 1)
        let images = (0..<3).map { RoundTripTests.pixels(channels: 3, height: 64, width: 64, seed: UInt64(10 + $0)) }
        try! PCAInitialization.apply(to: &codec, signals: images.map(SignalPreparation.imageToSignal), scale: 1)
        return Compressor(codec: codec, name: "rgb-vr")
    }()

    static func stereo() throws -> Compressor {
        let rate = RateConfig(maxStep: 1, minStep: 0.01, defaultQuality: 60)
        let config = ModelConfig(type: .codec1D, channels: 2, J: 3, Nd: 16, latentDim: 8, latentBits: 12,
                                 lightweightEncode: true, postFilter: false, linearSkip: true, rate: rate)
        var codec = try Codec(config: config, seed: 2)
        var clips = [Tensor]()
        for i in 0..<2 {
            var values = [Float](repeating: 0, count: 8192)
            for j in 0..<8192 {
                let frequency = 0.05 + 0.01 * Double(i + j / 4096)
                values[j] = Float(0.3 * sin(Double(j % 4096) * frequency))
            }
            clips.append(Tensor(shape: [2, 4096], scalars: values))
        }
        try PCAInitialization.apply(to: &codec, signals: clips, scale: 1, bandWeighting: 0.25)
        return Compressor(codec: codec, name: "stereo-vr")
    }

    static func image(_ c: Int = 3, bits: Int = 8) -> Image {
        Image(pixels: RoundTripTests.pixels(channels: c, height: 45, width: 70, seed: 5), bitDepth: bits, isFloat: false, format: .png)
    }

    static func decodedPixels(_ c: Compressor, _ file: WLCFile) throws -> Tensor {
        guard case .image(let pixels, _) = try c.decompress(try WLCFile.decode(file.encode())) else { throw WallocError("not an image") }
        return pixels
    }

    @Test("Higher quality: larger files, higher PSNR; the file carries its quality, decoding needs none")
    func qualityOrdersRateAndDistortion() throws {
        let original = Self.image()
        var sizes = [Int](), psnrs = [Double]()
        for q in [1, 30, 60, 100] {
            let c = try Self.rgb.withQuality(q)
            let (file, _) = try c.compress(image: original)
            #expect(file.header.quality == q)
            sizes.append(file.encode().count)
            // Decoded by a compressor at another quality: the file's setting is used.
            let pixels = try Self.decodedPixels(Self.rgb, file)
            #expect(pixels == (try Self.decodedPixels(c, file)))
            let rounded = Tensor(shape: pixels.shape, scalars: pixels.scalars.map { ($0 * 255).rounded() / 255 })
            psnrs.append(try ImageMetrics.psnr(original.pixels, rounded))
        }
        #expect(sizes == sizes.sorted() && Set(sizes).count == sizes.count, "sizes \(sizes)")
        #expect(psnrs == psnrs.sorted() && psnrs[3] > psnrs[0] + 10, "PSNRs \(psnrs)")
        #expect(Self.rgb.quality == 50)
        #expect(throws: WallocError.self) { try Self.rgb.withQuality(0) }
        #expect(throws: WallocError.self) { try Self.rgb.withQuality(101) }
    }

    @Test("Step mapping: geometric from max_step at 1 to min_step at 100; conditioning from -1 to 1")
    func stepMapping() throws {
        let r = RateConfig(maxStep: 4, minStep: 0.04, defaultQuality: 75)
        #expect(abs(r.step(quality: 1) - 4) < 1e-6 && abs(r.step(quality: 100) - 0.04) < 1e-7)
        #expect(abs(r.step(quality: 50.5) - 0.4) < 1e-5)
        #expect(r.conditioning(quality: 1) == -1 && r.conditioning(quality: 100) == 1)
        #expect(throws: WallocError.self) { try RateConfig(maxStep: 0.1, minStep: 1, defaultQuality: 50).validate() }
        #expect(throws: WallocError.self) { try RateConfig(maxStep: 1, minStep: 0.1, defaultQuality: 0).validate() }
    }

    @Test("A fixed-rate model refuses quality settings and size targets; files must match the model's kind")
    func fixedRate() throws {
        let fixed = try RoundTripTests.compressor("reference/codec2d_light")
        #expect(fixed.quality == nil)
        #expect(throws: WallocError.self) { try fixed.withQuality(50) }
        #expect(throws: WallocError.self) { try fixed.compress(toTarget: .bitsPerPixel(0.5)) { try $0.compress(image: Self.image()).file } }
        var (file, _) = try Self.rgb.compress(image: Self.image())
        file.header.quality = nil
        #expect(throws: WallocError.self) { try Self.rgb.decompress(file) }
    }

    @Test("Size targets: the highest quality whose file fits; an impossible target is an error")
    func targets() throws {
        let all = try (1...100).map { try Self.rgb.withQuality($0).compress(image: Self.image()).file }
        let rates = try all.map { try RateTarget.bitsPerPixel(1).measure($0) }
        let target = (rates[40] + rates[41]) / 2
        var encodes = 0
        let found = try Self.rgb.compress(toTarget: .bitsPerPixel(target)) { encodes += 1; return try $0.compress(image: Self.image()).file }
        #expect(found.rate <= target)
        #expect(encodes <= Compressor.maximumTargetTrials)
        #expect(found.quality == (rates.lastIndex { $0 <= target }! + 1))
        let generous = try Self.rgb.compress(toTarget: .bitsPerPixel(1000)) { try $0.compress(image: Self.image()).file }
        #expect(generous.quality == 100)
        do {
            _ = try Self.rgb.compress(toTarget: .bitsPerPixel(rates[0] / 2)) { try $0.compress(image: Self.image()).file }
            Issue.record("an impossible target was met")
        } catch let e as WallocError {
            #expect(e.message.contains("cannot be met") && e.message.contains("quality 1"))
        }
        #expect(throws: WallocError.self) { try Self.rgb.compress(toTarget: .kilobitsPerSecond(10)) { try $0.compress(image: Self.image()).file } }
    }

    @Test("Grey images (8 and 16 bits, with or without alpha) go through the RGB model and decode to one channel")
    func greyThroughRGB() throws {
        for (channels, bits) in [(1, 8), (1, 16), (2, 8)] {
            let original = Self.image(channels, bits: bits)
            let (file, dropped) = try Self.rgb.compress(image: original)
            #expect(dropped == (channels == 2))
            #expect(file.header.originalShape == [1, 45, 70])
            guard case .image(let pixels, let depth) = try Self.rgb.decompress(try WLCFile.decode(file.encode())) else {
                Issue.record("not an image"); continue
            }
            #expect(pixels.shape == [1, 45, 70] && depth == bits)
            let grey = Tensor(shape: [1, 45, 70], scalars: Array(original.pixels.scalars.prefix(45 * 70)))
            #expect(try ImageMetrics.psnr(grey, pixels) > 25)
        }
    }

    @Test("Mono audio goes through the stereo model and decodes to mono, in memory and streamed through files")
    func monoThroughStereo() throws {
        let c = try Self.stereo()
        let samples = Tensor(shape: [1, 9000], scalars: (0..<9000).map { Float(0.4 * sin(Double($0) * 0.07) + 0.1 * sin(Double($0) * 0.61)) })
        let audio = Audio(samples: samples, sampleRate: 22_050, bitDepth: 16)
        let file = try c.compress(audio: audio)
        #expect(file.header.originalShape == [1, 9000] && file.header.quality == 60)
        guard case .audio(let decoded, _, _) = try c.decompress(try WLCFile.decode(file.encode())) else { Issue.record("not audio"); return }
        #expect(decoded.shape == [1, 9000])
        #expect(try AudioMetrics.snr(samples, decoded) > 5)
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let wav = dir.appendingPathComponent("mono.wav"), out = dir.appendingPathComponent("out.wav")
        try AudioIO.write(samples, sampleRate: 22_050, to: wav)
        let streamed = try c.compress(audioFile: wav)
        #expect(streamed.header.originalShape == [1, 9000])
        try c.decompress(streamed, toAudioFile: out)
        let back = try AudioIO.read(out)
        #expect(back.samples.shape == [1, 9000])
        #expect(try AudioMetrics.snr(decoded, back.samples) > 40)
        // Three channels do not fit a stereo model.
        #expect(throws: WallocError.self) { try c.compress(audio: Audio(samples: Tensor(zeros: [3, 4096]), sampleRate: 22_050, bitDepth: 16)) }
    }

    @Test("The Opus baseline codes at about its target rate and decodes aligned to the input")
    func opusBaseline() throws {
        let rate = 44_100, n = 2 * rate
        var scalars = [Float](repeating: 0, count: 2 * n)
        for i in 0..<n {
            let t = Double(i) / Double(rate)
            scalars[i] = Float(0.3 * sin(2 * .pi * 440 * t) + 0.05 * sin(2 * .pi * 3100 * t))
            scalars[n + i] = Float(0.25 * sin(2 * .pi * 660 * t + 0.3))
        }
        let x = Tensor(shape: [2, n], scalars: scalars)
        let r = try AudioBaseline.opus.roundTrip(x, sampleRate: rate, quality: 64)
        #expect(r.decoded.shape == x.shape)
        let kbps = Double(r.data.count * 8) / 2 / 1000
        #expect(kbps > 30 && kbps < 100, "\(kbps) kbps")
        // Aligned: tones come back with a high SNR (a misalignment of even a few samples would not).
        #expect(try AudioMetrics.snr(x, r.decoded) > 15)
        #expect(throws: WallocError.self) { try AudioBaseline.opus.roundTrip(x, sampleRate: rate, quality: 2) }
    }
}
