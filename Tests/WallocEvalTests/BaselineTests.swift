import Foundation
import Testing
import Walloc

@Suite("Baseline codecs")
struct BaselineTests {
    @Test("Each baseline round-trips; higher quality costs more bytes and gives a higher PSNR", arguments: ImageBaseline.allCases)
    func roundTrip(codec: ImageBaseline) throws {
        let x = try MetricFixtures.image("rgb_odd_4scales_ref.png") // 121 x 99, odd sizes
        let low = try codec.encode(x, quality: 20), high = try codec.encode(x, quality: 90)
        let dLow = try codec.decode(low), dHigh = try codec.decode(high)
        #expect(dLow.shape == x.shape && dHigh.shape == x.shape)
        #expect(low.count < high.count)
        let pLow = try ImageMetrics.psnr(x, dLow), pHigh = try ImageMetrics.psnr(x, dHigh)
        #expect(pLow > 20 && pLow < pHigh, "\(codec): \(pLow) / \(pHigh) dB")
        #expect(pHigh > 32, "\(codec): \(pHigh) dB at quality 90")
        // Decoded pixels are 8-bit values.
        #expect(dHigh.scalars.allSatisfy { abs($0 * 255 - ($0 * 255).rounded()) < 1e-4 })
        // The default sweep is sorted and within 0-100.
        #expect(codec.defaultQualities == codec.defaultQualities.sorted() && codec.defaultQualities.allSatisfy { (0...100).contains($0) })
    }

    @Test("Quality maps to each codec's parameter like its command-line tool")
    func parameters() throws {
        #expect(ImageBaseline.jpeg.parameter(quality: 0) == 1)
        #expect(ImageBaseline.webp.parameter(quality: 37) == 37)
        #expect(ImageBaseline.avif.parameter(quality: 50) == 32)
        #expect(ImageBaseline.avif.parameter(quality: 100) == 0)
        #expect(ImageBaseline.avif.parameter(quality: 0) == 63)
        #expect(abs(ImageBaseline.jxl.parameter(quality: 90) - 1.0) < 1e-12)
        #expect(abs(ImageBaseline.jxl.parameter(quality: 30) - 6.4) < 1e-12)
        #expect(ImageBaseline.jxl.parameter(quality: 29) > 6.4 && ImageBaseline.jxl.parameter(quality: 29) < 7)
        #expect(abs(ImageBaseline.jxl.parameter(quality: 0) - 25) < 1e-12)
        #expect(throws: WallocError.self) { try ImageBaseline(name: "bmp") }
        #expect(try ImageBaseline(name: "JPG") == .jpeg)
    }

    @Test("Bad inputs are errors")
    func badInputs() {
        let grey = Tensor(zeros: [1, 16, 16])
        for codec in ImageBaseline.allCases {
            #expect(throws: WallocError.self) { try codec.encode(grey, quality: 50) }
            #expect(throws: WallocError.self) { try codec.encode(smoothPattern(height: 16, width: 16), quality: 101) }
            #expect(throws: WallocError.self) { try codec.decode(Data([1, 2, 3, 4, 5, 6, 7, 8])) }
        }
    }

    @Test("Vorbis round trip through libsndfile")
    func vorbis() throws {
        let n = 16_000
        let x = Tensor(shape: [1, n], scalars: (0..<n).map { Float(0.3 * sin(2 * Double.pi * 440 * Double($0) / 16_000)) })
        let low = try AudioBaseline.vorbis.roundTrip(x, sampleRate: 16_000, quality: 0)
        let high = try AudioBaseline.vorbis.roundTrip(x, sampleRate: 16_000, quality: 80)
        #expect(low.decoded.shape == x.shape && high.decoded.shape == x.shape)
        #expect(low.data.count < high.data.count)
        #expect(try AudioMetrics.snr(x, high.decoded) > 15)
    }
}

@Suite("Codec round trips for decoded datasets")
struct CodecRoundTripTests {
    @Test("jpeg:Q and webp:Q decode what the baseline decodes and count its bytes")
    func images() throws {
        let x = smoothPattern(height: 48, width: 64)
        let c = try Compressor.load(modelDirectory: try #require(DefaultModels.directory(for: .image)))
        for (spec, codec, q) in [("JPG:40", ImageBaseline.jpeg, 40), ("webp:30", .webp, 30)] {
            let trip = try CodecRoundTrip(spec, modality: .image, compressor: c)
            #expect(trip.name == "\(codec.rawValue):\(q)")
            let (decoded, bytes) = try trip(x)
            let data = try codec.encode(x, quality: q, threads: 1)
            let expected = try codec.decode(data, threads: 1)
            #expect(bytes == data.count && decoded == expected)
        }
    }

    @Test("walloc:Q codes through real .wlc bytes at that setting")
    func walloc() throws {
        let x = smoothPattern(height: 48, width: 64)
        let c = try Compressor.load(modelDirectory: try #require(DefaultModels.directory(for: .image)))
        let (low, lowBytes) = try CodecRoundTrip("walloc:20", modality: .image, compressor: c)(x)
        let (high, highBytes) = try CodecRoundTrip("walloc:80", modality: .image, compressor: c)(x)
        let q80 = try c.withQuality(80)
        let file = try q80.compress(image: Image(pixels: x, bitDepth: 8, isFloat: false, format: .png)).file
        #expect(highBytes == file.encode().count)
        guard case .image(let pixels, _) = try q80.decompress(file) else { Issue.record("not an image"); return }
        #expect(high == pixels)
        #expect(lowBytes < highBytes)
        #expect(try ImageMetrics.psnr(x, low) < (try ImageMetrics.psnr(x, high)))
    }

    @Test("opus:KBPS keeps the shape and the setting decides the size")
    func audio() throws {
        let c = try Compressor.load(modelDirectory: try #require(DefaultModels.directory(for: .audio)))
        var x = Tensor(zeros: [2, 4800])
        for i in 0..<4800 { x.scalars[i] = Float(0.3 * sin(Double(i) * 0.05)); x.scalars[4800 + i] = Float(0.2 * sin(Double(i) * 0.031)) }
        let (d8, b8) = try CodecRoundTrip("opus:8", modality: .audio, compressor: c)(x, sampleRate: 48000)
        let (d64, b64) = try CodecRoundTrip("opus:64", modality: .audio, compressor: c)(x, sampleRate: 48000)
        #expect(d8.shape == x.shape && d64.shape == x.shape && b8 < b64)
    }

    @Test("bad specifications are clear errors")
    func errors() throws {
        let c = try Compressor.load(modelDirectory: try #require(DefaultModels.directory(for: .image)))
        for (spec, modality, message) in [("jpeg", Modality.image, "expected CODEC:SETTING"), ("jpeg:x", .image, "expected CODEC:SETTING"),
                                          ("png:5", .image, "unknown image codec 'png'"), ("jpeg:101", .image, "quality must be 0-100"),
                                          ("opus:3", .audio, "setting must be 6-510"), ("webp:50", .audio, "unknown audio codec 'webp'")] {
            let e = #expect(throws: WallocError.self) { try CodecRoundTrip(spec, modality: modality, compressor: c) }
            #expect(e?.message.contains(message) == true, "\(spec): \(e?.message ?? "no error")")
        }
        let fixed = Compressor(codec: try Codec.load(from: MetricFixtures.root.deletingLastPathComponent().appendingPathComponent("reference/codec2d_light")), name: "fixed")
        let e = #expect(throws: WallocError.self) { try CodecRoundTrip("walloc:50", modality: .image, compressor: fixed) }
        #expect(e?.message.contains("one fixed rate") == true)
    }
}
