import Foundation

/// What an evaluation measures: images (bits per pixel, PSNR, SSIM, MS-SSIM) or audio (kbps,
/// SNR, SI-SDR).
public enum EvalModality: String, Sendable {
    case image, audio

    /// The rate measure.
    public var rateMetric: String { self == .image ? "bpp" : "kbps" }

    /// The per-file measures, in report order (the rate first).
    public var metricNames: [String] {
        switch self {
        case .image: return ["bpp", "psnr", "ssim", "ms_ssim", "ms_ssim_db", "compression_ratio"]
        case .audio: return ["kbps", "snr", "si_sdr", "log_mel", "energy_db_0k_2k", "energy_db_2k_4k", "energy_db_4k_8k",
                             "energy_db_8k_16k", "energy_db_16k_up", "compression_ratio"]
        }
    }

    /// The quality measures BD-rates are computed for.
    public var bdQualityMetrics: [String] { self == .image ? ["psnr", "ms_ssim_db"] : ["snr", "si_sdr"] }
}

/// One file coded by one codec at one setting.
public struct EvalRow: Sendable {
    public var file: String
    public var codec: String
    /// The setting's label: the model name for Walloc, `q=Q` for the baselines.
    public var setting: String
    /// The codec's own parameter (the baseline's quality, quantizer or distance), if any.
    public var parameter: Double?
    /// `[C, H, W]` for images, `[C, L]` for audio.
    public var shape: [Int]
    public var sampleRate: Int?
    /// The compressed size.
    public var bytes: Int
    /// Values for `EvalModality.metricNames`.
    public var metrics: [String: Double]
    /// Signal size over latent size (Walloc only).
    public var dimensionalityReduction: Double?
    public var encodeSeconds: Double
    public var decodeSeconds: Double

    public init(file: String, codec: String, setting: String, parameter: Double?, shape: [Int], sampleRate: Int?,
                bytes: Int, metrics: [String: Double], dimensionalityReduction: Double?, encodeSeconds: Double,
                decodeSeconds: Double) {
        self.file = file
        self.codec = codec
        self.setting = setting
        self.parameter = parameter
        self.shape = shape
        self.sampleRate = sampleRate
        self.bytes = bytes
        self.metrics = metrics
        self.dimensionalityReduction = dimensionalityReduction
        self.encodeSeconds = encodeSeconds
        self.decodeSeconds = decodeSeconds
    }
}

/// The means over files of one (codec, setting).
public struct EvalSummary: Sendable {
    public var codec: String
    public var setting: String
    public var parameter: Double?
    public var files: Int
    /// Arithmetic means over files of each metric.
    public var means: [String: Double]
    public var dimensionalityReduction: Double?
    public var encodeSeconds: Double
    public var decodeSeconds: Double

    /// Groups rows by (codec, setting), in the order they first appear, and averages them.
    public static func summarize(_ rows: [EvalRow]) -> [EvalSummary] {
        var order = [String](), groups = [String: [EvalRow]]()
        for r in rows {
            let key = r.codec + "\u{0}" + r.setting
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(r)
        }
        return order.map { key in
            let g = groups[key]!
            let n = Double(g.count)
            var means = [String: Double]()
            for name in Set(g.flatMap { $0.metrics.keys }) {
                means[name] = g.reduce(0) { $0 + ($1.metrics[name] ?? .nan) } / n
            }
            return EvalSummary(codec: g[0].codec, setting: g[0].setting, parameter: g[0].parameter, files: g.count,
                               means: means, dimensionalityReduction: g[0].dimensionalityReduction,
                               encodeSeconds: g.reduce(0) { $0 + $1.encodeSeconds } / n,
                               decodeSeconds: g.reduce(0) { $0 + $1.decodeSeconds } / n)
        }
    }
}

/// A BD-rate of one codec against another for one quality measure.
public struct BDRateEntry: Sendable {
    public var test: String
    public var anchor: String
    public var metric: String
    /// The result, or why there is none.
    public var result: Result<BDRate.Result, WallocErrorBox>

    /// BD-rates of `test` against every other codec in `summaries`, for each of `metrics`, from
    /// the mean rate and mean quality of each setting.
    /// With `rateRange`, only the settings whose mean rate lies in it enter either curve.
    public static func compute(test: String, summaries: [EvalSummary], modality: EvalModality,
                               method: BDRate.Method = .pchip, rateRange: ClosedRange<Double>? = nil) -> [BDRateEntry] {
        let codecs = summaries.map(\.codec).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        func curve(_ codec: String, _ metric: String) -> [RDPoint] {
            summaries.filter { $0.codec == codec }.compactMap { s in
                guard let r = s.means[modality.rateMetric], let q = s.means[metric] else { return nil }
                if let rateRange, !rateRange.contains(r) { return nil }
                return RDPoint(rate: r, quality: q)
            }
        }
        var out = [BDRateEntry]()
        for anchor in codecs where anchor != test {
            for metric in modality.bdQualityMetrics {
                let result: Result<BDRate.Result, WallocErrorBox>
                do {
                    result = .success(try BDRate.compute(anchor: curve(anchor, metric), test: curve(test, metric), method: method))
                } catch {
                    result = .failure(WallocErrorBox(message: "\(error)"))
                }
                out.append(BDRateEntry(test: test, anchor: anchor, metric: metric, result: result))
            }
        }
        return out
    }
}

/// An error message as a `Result` failure.
public struct WallocErrorBox: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
