import Foundation
import WallocIO
import WallocMedia
import WallocTensor

/// Conventional audio codecs to compare against.
public enum AudioBaseline: String, CaseIterable, Sendable {
    /// Ogg Vorbis through libsndfile (libvorbis), VBR quality q / 100.
    case vorbis
    /// Ogg Opus through libopusenc / libopusfile (libopus), VBR at a target bitrate of q kbps;
    /// the 48 kHz decoded audio is resampled to the input's rate with libsamplerate.
    case opus

    /// Settings for the sweep: Vorbis qualities 0-100, Opus bitrates in kbps.
    public var defaultQualities: [Int] {
        switch self {
        case .vorbis: return [0, 10, 20, 40, 60, 80]
        case .opus: return [6, 8, 12, 16, 24, 32, 48, 64, 96, 128]
        }
    }

    /// The settings the codec accepts.
    public var validQualities: ClosedRange<Int> { self == .opus ? 6...510 : 0...100 }

    /// What the codec runs with (for reports).
    public var settings: String {
        switch self {
        case .vorbis: return "libsndfile Ogg/Vorbis, VBR quality q/100"
        case .opus: return "libopusenc Ogg/Opus, VBR, target bitrate q kbps, complexity 10; decoded with libopusfile at 48 kHz, resampled with libsamplerate (best sinc)"
        }
    }

    /// The codec's own parameter for `quality`: the Vorbis VBR quality in [0, 1], or the Opus
    /// bitrate in kbps.
    public func parameter(quality: Int) -> Double {
        self == .opus ? Double(quality) : Double(min(100, max(0, quality))) / 100
    }

    /// Encodes `[C, L]` samples and decodes them again: the compressed bytes and the decoded
    /// samples, cut or zero-padded to the input's length.
    public func roundTrip(_ samples: Tensor, sampleRate: Int, quality: Int) throws -> (data: Data, decoded: Tensor, encodeSeconds: Double, decodeSeconds: Double) {
        guard validQualities.contains(quality) else {
            throw WallocError("\(rawValue): setting must be \(validQualities.lowerBound)-\(validQualities.upperBound), got \(quality)")
        }
        if self == .opus { return try OpusCodec.roundTrip(samples, sampleRate: sampleRate, kbps: quality) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-eval-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("audio.ogg")
        let t0 = DispatchTime.now().uptimeNanoseconds
        try AudioIO.write(samples, sampleRate: sampleRate, to: url, format: .ogg, quality: parameter(quality: quality))
        let data = try FileIO.read(url)
        let t1 = DispatchTime.now().uptimeNanoseconds
        var decoded = try AudioIO.read(url).samples
        let t2 = DispatchTime.now().uptimeNanoseconds
        // Vorbis decoders may return a few frames more or fewer; compare the common length.
        if decoded.shape != samples.shape {
            decoded = try AudioBaseline.fit(decoded, to: samples.shape)
        }
        return (data, decoded, Double(t1 - t0) / 1e9, Double(t2 - t1) / 1e9)
    }

    /// Cuts or zero-pads `[C, L']` to `[C, L]`.
    static func fit(_ x: Tensor, to shape: [Int]) throws -> Tensor {
        guard x.rank == 2, shape.count == 2, x.shape[0] == shape[0] else {
            throw WallocError("decoded audio has shape \(x.shape), expected \(shape)")
        }
        let (c, l, have) = (shape[0], shape[1], x.shape[1])
        var out = Tensor(zeros: shape)
        for ch in 0..<c {
            for i in 0..<min(l, have) { out.scalars[ch * l + i] = x.scalars[ch * have + i] }
        }
        return out
    }

    /// The codec for a name (`vorbis`/`ogg`), case-insensitive.
    public init(name: String) throws {
        switch name.lowercased().trimmingCharacters(in: .whitespaces) {
        case "vorbis", "ogg": self = .vorbis
        case "opus": self = .opus
        default: throw WallocError("unknown audio baseline '\(name)' (expected vorbis or opus)")
        }
    }
}
