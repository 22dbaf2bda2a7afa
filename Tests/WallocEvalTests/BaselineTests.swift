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
