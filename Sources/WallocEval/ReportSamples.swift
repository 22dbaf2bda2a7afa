import Foundation
import WallocCoding
import WallocMedia
import WallocPipeline
import WallocTensor

/// One decoded version of a file, for the visual report.
public struct DecodedSample: Sendable {
    /// "original", "walloc", "jpeg", ...
    public var codec: String
    /// The setting as the evaluation rows name it ("default q=60", "q=35"), empty for the original.
    public var setting: String
    /// The row's metrics (bpp, psnr, ms_ssim; kbps, snr, log_mel), empty for the original.
    public var metrics: [String: Double]
    /// Pixels `[C, H, W]` in [0, 1], or samples `[C, L]`.
    public var signal: Tensor
}

/// A file's original and its decoded versions at matched rates.
public struct FileSamples: Sendable {
    public var file: String
    public var sampleRate: Int?
    /// The original first, then Walloc, then one setting of each baseline.
    public var samples: [DecodedSample]
}

extension Evaluator {
    /// The original of `url` as evaluated and its decoded versions for the visual report: the
    /// first model at `quality` (its default quality when nil; fixed-rate models as they are),
    /// and for each baseline the setting of `rows` whose rate on this file is closest to Walloc's.
    /// Each chosen setting is coded again (all codecs are deterministic), so the evaluation need
    /// not keep every decoded file.
    public func samples(_ url: URL, rows: [EvalRow], quality: Int? = nil) throws -> FileSamples {
        let name = url.lastPathComponent
        var compressor = compressors[0]
        if compressor.codec.config.isVariableRate {
            compressor = try compressor.withQuality(quality ?? compressor.codec.config.rate?.defaultQuality ?? 60)
        }
        let label = compressor.quality.map { "\(compressor.name) q=\($0)" } ?? compressor.name
        let rate = modality.rateMetric
        func closest(_ codec: String, to target: Double) -> EvalRow? {
            rows.filter { $0.file == name && $0.codec == codec && $0.metrics[rate] != nil }
                .min { abs($0.metrics[rate]! - target) < abs($1.metrics[rate]! - target) }
        }
        func settingQuality(_ row: EvalRow) -> Int? { row.setting.hasPrefix("q=") ? Int(row.setting.dropFirst(2)) : nil }

        if modality == .image {
            let image = try referenceImage(url)
            let reference = image.pixels
            let bytes = try compressor.compress(image: Image(pixels: reference, bitDepth: image.bitDepth, isFloat: false, format: image.format)).file.encode()
            guard case .image(let pixels, let depth) = try compressor.decompress(try WLCFile.decode(bytes)) else {
                throw WallocError("the model did not decode an image")
            }
            let ours = PixelPacking.quantized(pixels, bits: depth)
            let metrics = try imageRow(file: name, codec: Evaluator.codecName, setting: label, parameter: nil, reference: reference,
                                       output: ours, bytes: bytes.count, rawBytes: reference.count * image.bitDepth / 8,
                                       reduction: nil, times: (0, 0)).metrics
            var out = [DecodedSample(codec: "original", setting: "", metrics: [:], signal: reference),
                       DecodedSample(codec: Evaluator.codecName, setting: label, metrics: metrics, signal: ours)]
            let rgb = imageBaselines.isEmpty ? reference : try Evaluator.baselineInput(reference)
            for (codec, _) in imageBaselines {
                guard let row = closest(codec.rawValue, to: metrics["bpp"]!), let q = settingQuality(row) else { continue }
                var decoded = try codec.decode(try codec.encode(rgb, quality: q, threads: threads), threads: threads)
                if reference.shape[0] == 1 { decoded = Evaluator.averageChannels(decoded) }
                out.append(DecodedSample(codec: codec.rawValue, setting: row.setting, metrics: row.metrics, signal: decoded))
            }
            return FileSamples(file: name, sampleRate: nil, samples: out)
        }

        let audio = try referenceAudio(url)
        let bytes = try compressor.compress(audio: audio).encode()
        guard case .audio(let decoded, _, _) = try compressor.decompress(try WLCFile.decode(bytes)) else {
            throw WallocError("the model did not decode audio")
        }
        let metrics = try audioRow(file: name, codec: Evaluator.codecName, setting: label, parameter: nil, audio: audio,
                                   output: decoded, bytes: bytes.count, reduction: nil, times: (0, 0)).metrics
        var out = [DecodedSample(codec: "original", setting: "", metrics: [:], signal: audio.samples),
                   DecodedSample(codec: Evaluator.codecName, setting: label, metrics: metrics, signal: decoded)]
        for (codec, _) in audioBaselines {
            guard let row = closest(codec.rawValue, to: metrics["kbps"]!), let q = settingQuality(row) else { continue }
            let r = try codec.roundTrip(audio.samples, sampleRate: audio.sampleRate, quality: q)
            out.append(DecodedSample(codec: codec.rawValue, setting: row.setting, metrics: row.metrics, signal: r.decoded))
        }
        return FileSamples(file: name, sampleRate: audio.sampleRate, samples: out)
    }
}
