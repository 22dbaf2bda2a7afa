import Foundation
import WallocMedia
import WallocTensor

/// Conventional image codecs to compare against, each through its reference library, driven by a
/// quality from 0 (worst) to 100 (best) that maps to the codec's own parameter the way its
/// command-line tool does.
///
/// | codec | library | settings |
/// |---|---|---|
/// | `jpeg` | libjpeg-turbo | 4:2:0, optimised Huffman tables, quality q (IJG tables) |
/// | `webp` | libwebp | lossy, method 6, quality q |
/// | `avif` | libavif (libaom encoder, speed 6) | full-range YUV 4:4:4, quantizer ((100 − q)·63 + 50) / 100 |
/// | `jxl` | libjxl (effort 7) | lossy XYB, distance from q as libjxl's `JxlEncoderDistanceFromQuality` |
///
/// All take 8-bit RGB and decode to 8-bit RGB.
public enum ImageBaseline: String, CaseIterable, Sendable {
    case jpeg, webp, avif, jxl

    /// Qualities that cover about 0.1 to 2 bits per pixel on photographs.
    public var defaultQualities: [Int] {
        switch self {
        case .jpeg: return [5, 8, 12, 20, 30, 45, 60, 75, 85, 90]
        case .webp: return [0, 5, 15, 30, 50, 70, 80, 88, 94]
        case .avif: return [10, 20, 30, 40, 50, 60, 70, 80, 85]
        case .jxl: return [10, 20, 30, 45, 60, 70, 80, 88, 94]
        }
    }

    /// What the codec runs with (for reports).
    public var settings: String {
        switch self {
        case .jpeg: return "libjpeg-turbo, 4:2:0, optimized Huffman tables"
        case .webp: return "libwebp lossy, method 6"
        case .avif: return "libavif \(AVIFCodec.libraryVersion), speed \(AVIFCodec.speed), YUV 4:4:4 full range, min = max quantizer (\(AVIFCodec.versions))"
        case .jxl: return "libjxl, effort \(JXLCodec.effort), lossy XYB"
        }
    }

    /// The codec's own parameter for `quality`: the JPEG or WebP quality, the AV1 quantizer
    /// (0-63, lower is better) or the JPEG XL distance (lower is better).
    public func parameter(quality: Int) -> Double {
        let q = Double(min(100, max(0, quality)))
        switch self {
        case .jpeg: return Double(max(1, quality))
        case .webp: return q
        case .avif: return Double(((100 - Int(q)) * 63 + 50) / 100)
        case .jxl:
            if q >= 100 { return 0.01 }
            return q >= 30 ? 0.1 + (100 - q) * 0.09 : 53.0 / 3000.0 * q * q - 23.0 / 20.0 * q + 25.0
        }
    }

    /// Encodes `[3, H, W]` RGB pixels in [0, 1] (rounded to 8 bits) at `quality` (0-100).
    public func encode(_ pixels: Tensor, quality: Int, threads: Int = Threading.count) throws -> Data {
        guard (0...100).contains(quality) else { throw WallocError("\(rawValue): quality must be 0-100, got \(quality)") }
        guard pixels.rank == 3, pixels.shape[0] == 3 else {
            throw WallocError("\(rawValue): the baselines take RGB images [3, H, W], got \(pixels.shape)")
        }
        switch self {
        case .jpeg:
            return try ImageIO.encode(pixels, format: .jpeg, quality: max(1, quality), chroma: .yuv420, optimizeCoding: true)
        case .webp:
            return try ImageIO.encode(pixels, format: .webp, quality: quality, method: 6)
        case .avif:
            return try AVIFCodec.encode(pixels, quantizer: Int(parameter(quality: quality)), yuv444: true, threads: threads)
        case .jxl:
            return try JXLCodec.encode(pixels, distance: parameter(quality: quality), threads: threads)
        }
    }

    /// Decodes what `encode` made to `[3, H, W]` pixels in [0, 1].
    public func decode(_ data: Data, threads: Int = Threading.count) throws -> Tensor {
        switch self {
        case .jpeg, .webp: return try ImageIO.decode(data, name: rawValue).pixels
        case .avif: return try AVIFCodec.decode(data, threads: threads)
        case .jxl: return try JXLCodec.decode(data, threads: threads)
        }
    }

    /// The codec for a name (`jpeg`/`jpg`, `webp`, `avif`, `jxl`/`jpegxl`), case-insensitive.
    public init(name: String) throws {
        switch name.lowercased().trimmingCharacters(in: .whitespaces) {
        case "jpeg", "jpg": self = .jpeg
        case "webp": self = .webp
        case "avif": self = .avif
        case "jxl", "jpegxl", "jpeg-xl": self = .jxl
        default: throw WallocError("unknown baseline '\(name)' (expected jpeg, webp, avif or jxl)")
        }
    }
}
