import ArgumentParser
import Foundation
import Walloc

/// `walloc compare ORIGINAL DECODED`: how close a decoded file is to its original.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Measure a decoded image or recording against its original.",
        discussion: """
        Images: PSNR (dB), SSIM and MS-SSIM (the mean over channels; alpha is ignored). Audio: SNR \
        and SI-SDR (dB). Both files must have the same shape. With a .wlc file, also its size, bits \
        per pixel or kbps, and compression ratio.
        """
    )

    @Argument(help: "The original image or audio file.") var original: String
    @Argument(help: "The decoded file (same kind and shape).") var decoded: String
    @Option(help: "The .wlc file both came from, for its size and rate.") var wlc: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let a = URL(fileURLWithPath: original), b = URL(fileURLWithPath: decoded)
        var info: [(String, Any)] = []
        let isAudio = ["wav", "flac", "ogg"].contains(a.pathExtension.lowercased())
        var pixels = 0, seconds = 0.0, rawBytes = 0
        if isAudio {
            let x = try AudioIO.read(a), y = try AudioIO.read(b)
            guard x.samples.shape == y.samples.shape else {
                throw WallocError("\(decoded): shape \(y.samples.shape) differs from the original's \(x.samples.shape)")
            }
            info += [("snr_db", try AudioMetrics.snr(x.samples, y.samples)), ("si_sdr_db", try AudioMetrics.siSDR(x.samples, y.samples))]
            if x.frames > 1024 {
                let spectral = try AudioMetrics.spectralComparison(x.samples, y.samples, sampleRate: x.sampleRate)
                info.append(("log_mel", spectral.logMelDistance))
                for band in AudioMetrics.energyBands { if let v = spectral.bandEnergies[band.name] { info.append((band.name, v)) } }
            }
            seconds = Double(x.frames) / Double(max(1, x.sampleRate))
            rawBytes = x.samples.count * (x.bitDepth ?? 16) / 8
        } else {
            let x = try ImageIO.read(a), y = try ImageIO.read(b)
            let c = min(x.channels, y.channels) == 4 || min(x.channels, y.channels) == 2 ? min(x.channels, y.channels) - 1 : min(x.channels, y.channels)
            func colour(_ t: Tensor) -> Tensor { t.shape[0] == c ? t : Tensor(shape: [c] + Array(t.shape.dropFirst()), scalars: Array(t.scalars.prefix(c * t.count / t.shape[0]))) }
            let rx = colour(x.pixels), ry = colour(y.pixels)
            guard rx.shape == ry.shape else {
                throw WallocError("\(decoded): shape \(y.pixels.shape) differs from the original's \(x.pixels.shape)")
            }
            let (ssim, ms) = try ImageMetrics.structuralSimilarity(rx, ry)
            info += [("psnr_db", try ImageMetrics.psnr(rx, ry)), ("ssim", ssim), ("ms_ssim", ms)]
            pixels = x.width * x.height
            rawBytes = x.pixels.count * x.bitDepth / 8
        }
        if let wlc {
            let bytes = try FileIO.read(URL(fileURLWithPath: wlc)).count
            info.append(("wlc_bytes", bytes))
            if isAudio { info.append(("kbps", Double(bytes * 8) / max(seconds, 1e-9) / 1000)) } else { info.append(("bits_per_pixel", Double(bytes * 8) / Double(max(1, pixels)))) }
            info.append(("compression_ratio", Double(rawBytes) / Double(max(1, bytes))))
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: Dictionary(uniqueKeysWithValues: info), options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for (k, v) in info {
                let value = (v as? Double).map { String(format: "%.4g", $0) } ?? "\(v)"
                print("\(k.padding(toLength: 18, withPad: " ", startingAt: 0)) \(value)")
            }
        }
    }
}
