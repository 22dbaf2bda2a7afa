import Foundation
import Testing
import Walloc

@Suite("Image and audio metrics against numpy / scikit-image")
struct MetricTests {
    static var cases: [[String: Any]] { (MetricFixtures.json["images"] as? [[String: Any]]) ?? [] }

    @Test("The fixtures are there")
    func fixturesPresent() {
        #expect(MetricTests.cases.count == 4)
        #expect((MetricFixtures.json["audio"] as? [[String: Any]])?.count == 1)
    }

    @Test("PSNR, SSIM and MS-SSIM match the reference values", arguments: MetricTests.cases.indices)
    func imageMetrics(index: Int) throws {
        let c = MetricTests.cases[index]
        let name = try #require(c["name"] as? String)
        let x = try MetricFixtures.image(try #require(c["reference"] as? String))
        let y = try MetricFixtures.image(try #require(c["distorted"] as? String))
        let psnr = try ImageMetrics.psnr(x, y)
        let ssim = try ImageMetrics.ssim(x, y)
        let ms = try ImageMetrics.msSSIM(x, y)
        let both = try ImageMetrics.structuralSimilarity(x, y)
        // Pixels are k/255 in float32 here, in float64 in the reference: that alone moves SSIM by
        // up to 4e-9 and PSNR by up to 2e-7 dB on these images.
        #expect(abs(psnr - (c["psnr"] as! Double)) < 1e-6, "\(name): PSNR \(psnr)")
        #expect(abs(ssim - (c["ssim"] as! Double)) < 2e-8, "\(name): SSIM \(ssim) vs \(c["ssim"]!)")
        #expect(abs(ms - (c["ms_ssim"] as! Double)) < 2e-8, "\(name): MS-SSIM \(ms) vs \(c["ms_ssim"]!)")
        #expect(both.ssim == ssim && both.msSSIM == ms)
        #expect(ImageMetrics.msSSIMScales(height: x.shape[1], width: x.shape[2]) == c["ms_ssim_scales"] as! Int)
    }

    @Test("Identical images, known MSE, grey [H, W] tensors")
    func simpleCases() throws {
        let x = smoothPattern(height: 40, width: 52)
        #expect(try ImageMetrics.psnr(x, x) == .infinity)
        #expect(abs(try ImageMetrics.ssim(x, x) - 1) < 1e-12)
        #expect(abs(try ImageMetrics.msSSIM(x, x) - 1) < 1e-12)
        #expect(ImageMetrics.decibels(msSSIM: 1) == .infinity)
        #expect(abs(ImageMetrics.decibels(msSSIM: 0.99) - 20) < 1e-9)
        // A constant error of 0.1 everywhere: MSE 0.01, PSNR 20 dB (255 range: same).
        var y = x
        for i in y.scalars.indices { y.scalars[i] = x.scalars[i] - 0.1 }
        #expect(abs(try ImageMetrics.psnr(x, y) - 20) < 1e-4)
        #expect(abs(try ImageMetrics.psnr(x, y, dataRange: 255) - (20 + 20 * log10(255.0))) < 1e-4)
        // SSIM is symmetric in its arguments.
        #expect(abs(try ImageMetrics.ssim(x, y) - ImageMetrics.ssim(y, x)) < 1e-12)
        let grey = x.slice(0)
        #expect(abs(try ImageMetrics.ssim(grey, y.slice(0)) - ImageMetrics.ssim(x.slice(0).reshaped([1, 40, 52]), y.slice(0).reshaped([1, 40, 52]))) < 1e-12)
    }

    @Test("MS-SSIM scale counts and bad inputs")
    func scalesAndErrors() {
        #expect(ImageMetrics.msSSIMScales(height: 176, width: 300) == 5)
        #expect(ImageMetrics.msSSIMScales(height: 175, width: 300) == 4)
        #expect(ImageMetrics.msSSIMScales(height: 22, width: 22) == 2)
        #expect(ImageMetrics.msSSIMScales(height: 11, width: 11) == 1)
        #expect(ImageMetrics.msSSIMScales(height: 10, width: 100) == 0)
        let small = Tensor(zeros: [3, 10, 40])
        #expect(throws: WallocError.self) { try ImageMetrics.ssim(small, small) }
        #expect(throws: WallocError.self) { try ImageMetrics.psnr(Tensor(zeros: [3, 20, 20]), Tensor(zeros: [3, 20, 21])) }
        #expect(throws: WallocError.self) { try ImageMetrics.msSSIM(Tensor(zeros: [20]), Tensor(zeros: [20])) }
    }

    @Test("SNR and SI-SDR match the reference values")
    func audioMetrics() throws {
        let c = try #require((MetricFixtures.json["audio"] as? [[String: Any]])?.first)
        let x = try NPY.read(MetricFixtures.url(c["reference"] as! String))
        let y = try NPY.read(MetricFixtures.url(c["distorted"] as! String))
        #expect(abs(try AudioMetrics.snr(x, y) - (c["snr"] as! Double)) < 1e-9)
        #expect(abs(try AudioMetrics.siSDR(x, y) - (c["si_sdr"] as! Double)) < 1e-9)
        // SI-SDR ignores gain and offset; SNR does not.
        var scaled = x
        for i in scaled.scalars.indices { scaled.scalars[i] = 0.5 * x.scalars[i] + 0.25 }
        #expect(try AudioMetrics.siSDR(x, scaled) > 100)
        #expect(try AudioMetrics.snr(x, scaled) < 10)
        #expect(try AudioMetrics.snr(x, x) == .infinity)
        #expect(throws: WallocError.self) { try AudioMetrics.siSDR(Tensor(zeros: [1, 100]), x.slice(0).reshaped([1, x.shape[1]])) }
    }

    @Test("Rates: bits per pixel, kbps, compression ratio")
    func rates() {
        #expect(RateMetrics.bitsPerPixel(bytes: 1000, width: 100, height: 80) == 1)
        #expect(RateMetrics.kilobitsPerSecond(bytes: 16_000, frames: 44_100, sampleRate: 44_100) == 128)
        #expect(RateMetrics.compressionRatio(bytes: 100, samples: 1200, bitDepth: 8) == 12)
    }
}
