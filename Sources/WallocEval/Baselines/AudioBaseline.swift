import Foundation
import WallocIO
import WallocMedia
import WallocTensor

/// Conventional audio codecs to compare against.
public enum AudioBaseline: String, CaseIterable, Sendable {
    /// Ogg Vorbis through libsndfile (libvorbis), VBR quality q / 100.
    case vorbis

    /// Qualities (0-100) for the sweep.
    public var defaultQualities: [Int] { [0, 10, 20, 40, 60, 80] }

    /// What the codec runs with (for reports).
    public var settings: String { "libsndfile Ogg/Vorbis, VBR quality q/100" }

    /// The codec's own parameter for `quality`: the Vorbis VBR quality in [0, 1].
    public func parameter(quality: Int) -> Double { Double(min(100, max(0, quality))) / 100 }

    /// Encodes `[C, L]` samples and decodes them again: the compressed bytes and the decoded
    /// samples (libsndfile encodes and decodes through files, here in a temporary directory).
    public func roundTrip(_ samples: Tensor, sampleRate: Int, quality: Int) throws -> (data: Data, decoded: Tensor, encodeSeconds: Double, decodeSeconds: Double) {
        guard (0...100).contains(quality) else { throw WallocError("vorbis: quality must be 0-100, got \(quality)") }
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
        default: throw WallocError("unknown audio baseline '\(name)' (expected vorbis)")
        }
    }
}
