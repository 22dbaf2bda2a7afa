import Foundation
import WallocCoding
import WallocMedia
import WallocNN
import WallocPipeline
import WallocTensor

/// Runs every Walloc model and every baseline setting on one file at a time and measures them.
///
/// Walloc goes through the real pipeline: `compress` → `.wlc` bytes (encode time), then
/// `WLCFile.decode` → `decompress` (decode time); decoded images are rounded to the original bit
/// depth, as `walloc decode` writes them. Baselines get the image rounded to 8 bits. Images with
/// alpha are compared without it; grey images go to the baselines as RGB with three equal
/// channels and their decoded channels are averaged back to grey.
public struct Evaluator: Sendable {
    /// The codec name Walloc's rows carry.
    public static let codecName = "walloc"

    public let modality: EvalModality
    /// Walloc models; each one is a setting (labelled with its name).
    public let compressors: [Compressor]
    public var imageBaselines: [(codec: ImageBaseline, qualities: [Int])] = []
    public var audioBaselines: [(codec: AudioBaseline, qualities: [Int])] = []
    /// Threads the AVIF and JPEG XL libraries may use.
    public var threads = Threading.count
    /// Images whose longer side exceeds this are first shrunk to it (area averaging, rounded to
    /// the file's bit depth), so a folder of large photos can be evaluated at a chosen size.
    public var maxSide: Int?
    /// Audio longer than this many seconds is cut to its middle this long before evaluating.
    public var maxSeconds: Double?
    /// The quality settings each variable-rate model is measured at (each one a setting
    /// "NAME q=Q" of the walloc curve).
    public var modelQualities = Evaluator.defaultModelQualities
    public static let defaultModelQualities = [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]

    /// Every (compressor, setting label, quality) the evaluation runs: fixed-rate models once,
    /// variable-rate models at each of `modelQualities`.
    var settings: [(compressor: Compressor, label: String, quality: Int?)] {
        get throws {
            try compressors.flatMap { c -> [(Compressor, String, Int?)] in
                guard c.codec.config.isVariableRate else { return [(c, c.name, nil)] }
                return try modelQualities.map { q in (try c.withQuality(q), "\(c.name) q=\(q)", q) }
            }
        }
    }

    /// All models must code the same modality and have distinct names.
    public init(compressors: [Compressor]) throws {
        guard let first = compressors.first else { throw WallocError("no model to evaluate") }
        let modality: EvalModality = first.codec.modality == .image ? .image : .audio
        guard compressors.allSatisfy({ ($0.codec.modality == .image) == (modality == .image) }) else {
            throw WallocError("the models mix image and audio codecs; evaluate them separately")
        }
        let names = compressors.map(\.name)
        guard Set(names).count == names.count else { throw WallocError("two models have the same name: \(names)") }
        self.modality = modality
        self.compressors = compressors
    }

    /// The modality a file's extension stands for, or nil.
    public static func modality(ofFile url: URL) -> EvalModality? {
        switch url.pathExtension.lowercased() {
        case "png", "jpg", "jpeg", "webp", "tif", "tiff": return .image
        case "wav", "flac", "ogg", "oga": return .audio
        default: return nil
        }
    }

    /// Measures every model and baseline setting on one file; throws (and measures nothing) when
    /// any of them fails, so every codec's means are over the same files.
    public func evaluate(_ url: URL) throws -> [EvalRow] {
        guard let kind = Evaluator.modality(ofFile: url) else {
            throw WallocError("unsupported file type '.\(url.pathExtension)' (images: png jpg webp tiff; audio: wav flac ogg)")
        }
        guard kind == modality else {
            throw WallocError("this is an \(kind.rawValue) file, and the model codes \(modality == .image ? "images" : "audio")")
        }
        return modality == .image ? try evaluateImage(url) : try evaluateAudio(url)
    }

    // MARK: images

    /// The image as evaluated: read, shrunk to `maxSide`, without alpha.
    func referenceImage(_ url: URL) throws -> Image {
        let image = try ImageIO.read(url)
        guard !image.isFloat else { throw WallocError("float TIFF images are not supported (metrics assume integer samples in [0, 1])") }
        var reference = image.pixels
        if let m = maxSide, max(reference.shape[1], reference.shape[2]) > m {
            reference = PixelPacking.quantized(Resize.fit(reference, maxSide: m), bits: image.bitDepth)
        }
        var c = reference.shape[0]
        let (h, w) = (reference.shape[1], reference.shape[2])
        if c == 2 || c == 4 { // drop alpha
            c -= 1
            reference = Tensor(shape: [c, h, w], scalars: Array(reference.scalars.prefix(c * h * w)))
        }
        guard min(h, w) >= ImageMetrics.minimumSide else {
            throw WallocError("image of \(w)x\(h) pixels is too small (SSIM needs at least \(ImageMetrics.minimumSide) pixels on each side)")
        }
        return Image(pixels: reference, bitDepth: image.bitDepth, isFloat: false, format: image.format)
    }

    /// What a baseline codes for a grey or RGB reference: 8-bit RGB.
    static func baselineInput(_ reference: Tensor) throws -> Tensor {
        let (c, h, w) = (reference.shape[0], reference.shape[1], reference.shape[2])
        guard c == 1 || c == 3 else { throw WallocError("the baselines take grey or RGB images, this one has \(c) channels") }
        return PixelPacking.quantized(c == 3 ? reference : Tensor.stack([reference, reference, reference]).reshaped([3, h, w]), bits: 8)
    }

    private func evaluateImage(_ url: URL) throws -> [EvalRow] {
        let image = try referenceImage(url)
        let reference = image.pixels
        let (c, h, w) = (reference.shape[0], reference.shape[1], reference.shape[2])
        let name = url.lastPathComponent
        let rawBytes = c * h * w * image.bitDepth / 8
        var rows = [EvalRow]()
        for (compressor, label, quality) in try settings {
            let t0 = now()
            let (file, _) = try compressor.compress(image: Image(pixels: reference, bitDepth: image.bitDepth, isFloat: false, format: image.format))
            let bytes = file.encode()
            let t1 = now()
            let decoded = try compressor.decompress(try WLCFile.decode(bytes))
            let t2 = now()
            guard case .image(let pixels, let depth) = decoded else { throw WallocError("the model did not decode an image") }
            let output = PixelPacking.quantized(pixels, bits: depth)
            rows.append(try imageRow(file: name, codec: Evaluator.codecName, setting: label, parameter: quality.map(Double.init),
                                     reference: reference, output: output, bytes: bytes.count, rawBytes: rawBytes,
                                     reduction: compressor.codec.config.dimensionalityReduction, times: (t1 - t0, t2 - t1)))
        }
        guard !imageBaselines.isEmpty else { return rows }
        let rgb = try Evaluator.baselineInput(reference)
        for (codec, qualities) in imageBaselines {
            for q in qualities {
                let t0 = now()
                let data = try codec.encode(rgb, quality: q, threads: threads)
                let t1 = now()
                var output = try codec.decode(data, threads: threads)
                let t2 = now()
                guard output.shape == [3, h, w] else {
                    throw WallocError("\(codec.rawValue) decoded \(output.shape), expected [3, \(h), \(w)]")
                }
                if c == 1 { output = Evaluator.averageChannels(output) }
                rows.append(try imageRow(file: name, codec: codec.rawValue, setting: "q=\(q)", parameter: codec.parameter(quality: q),
                                         reference: reference, output: output, bytes: data.count, rawBytes: rawBytes,
                                         reduction: nil, times: (t1 - t0, t2 - t1)))
            }
        }
        return rows
    }

    func imageRow(file: String, codec: String, setting: String, parameter: Double?, reference: Tensor, output: Tensor,
                          bytes: Int, rawBytes: Int, reduction: Double?, times: (Double, Double)) throws -> EvalRow {
        let (h, w) = (reference.shape[1], reference.shape[2])
        let psnr = try ImageMetrics.psnr(reference, output)
        let (ssim, ms) = try ImageMetrics.structuralSimilarity(reference, output)
        let metrics: [String: Double] = [
            "bpp": RateMetrics.bitsPerPixel(bytes: bytes, width: w, height: h), "psnr": psnr, "ssim": ssim,
            "ms_ssim": ms, "ms_ssim_db": ImageMetrics.decibels(msSSIM: ms),
            "compression_ratio": Double(rawBytes) / Double(max(1, bytes)),
        ]
        return EvalRow(file: file, codec: codec, setting: setting, parameter: parameter, shape: reference.shape, sampleRate: nil,
                       bytes: bytes, metrics: metrics, dimensionalityReduction: reduction, encodeSeconds: times.0,
                       decodeSeconds: times.1)
    }

    static func averageChannels(_ x: Tensor) -> Tensor {
        let n = x.shape[1] * x.shape[2]
        var out = Tensor(zeros: [1, x.shape[1], x.shape[2]])
        for i in 0..<n { out.scalars[i] = (x.scalars[i] + x.scalars[n + i] + x.scalars[2 * n + i]) / 3 }
        return out
    }

    // MARK: audio

    /// The audio as evaluated: read, cut to `maxSeconds`.
    func referenceAudio(_ url: URL) throws -> Audio {
        var audio = try AudioIO.read(url)
        guard audio.frames > 0 else { throw WallocError("the file holds no audio frames") }
        if let s = maxSeconds {
            let keep = Int((s * Double(audio.sampleRate)).rounded())
            if keep < audio.frames {
                let start = (audio.frames - keep) / 2
                audio = Audio(samples: audio.samples.lastAxis(start..<(start + keep)), sampleRate: audio.sampleRate, bitDepth: audio.bitDepth)
            }
        }
        return audio
    }

    private func evaluateAudio(_ url: URL) throws -> [EvalRow] {
        let audio = try referenceAudio(url)
        let name = url.lastPathComponent
        let reference = audio.samples
        var rows = [EvalRow]()
        for (compressor, label, quality) in try settings {
            let t0 = now()
            let file = try compressor.compress(audio: audio)
            let bytes = file.encode()
            let t1 = now()
            let decoded = try compressor.decompress(try WLCFile.decode(bytes))
            let t2 = now()
            guard case .audio(let samples, _, _) = decoded else { throw WallocError("the model did not decode audio") }
            rows.append(try audioRow(file: name, codec: Evaluator.codecName, setting: label, parameter: quality.map(Double.init),
                                     audio: audio, output: samples, bytes: bytes.count,
                                     reduction: compressor.codec.config.dimensionalityReduction, times: (t1 - t0, t2 - t1)))
        }
        for (codec, qualities) in audioBaselines {
            for q in qualities {
                let r = try codec.roundTrip(reference, sampleRate: audio.sampleRate, quality: q)
                rows.append(try audioRow(file: name, codec: codec.rawValue, setting: "q=\(q)", parameter: codec.parameter(quality: q),
                                         audio: audio, output: r.decoded, bytes: r.data.count, reduction: nil,
                                         times: (r.encodeSeconds, r.decodeSeconds)))
            }
        }
        return rows
    }

    func audioRow(file: String, codec: String, setting: String, parameter: Double?, audio: Audio, output: Tensor,
                          bytes: Int, reduction: Double?, times: (Double, Double)) throws -> EvalRow {
        var metrics: [String: Double] = [
            "kbps": RateMetrics.kilobitsPerSecond(bytes: bytes, frames: audio.frames, sampleRate: audio.sampleRate),
            "snr": try AudioMetrics.snr(audio.samples, output),
            "si_sdr": try AudioMetrics.siSDR(audio.samples, output),
            "compression_ratio": RateMetrics.compressionRatio(bytes: bytes, samples: audio.samples.count, bitDepth: 16),
        ]
        if audio.frames > 1024 {  // half the log-mel spectrogram's frame
            let spectral = try AudioMetrics.spectralComparison(audio.samples, output, sampleRate: audio.sampleRate)
            metrics["log_mel"] = spectral.logMelDistance
            for (k, v) in spectral.bandEnergies { metrics[k] = v }
        }
        return EvalRow(file: file, codec: codec, setting: setting, parameter: parameter, shape: audio.samples.shape,
                       sampleRate: audio.sampleRate, bytes: bytes, metrics: metrics, dimensionalityReduction: reduction,
                       encodeSeconds: times.0, decodeSeconds: times.1)
    }

    private func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
