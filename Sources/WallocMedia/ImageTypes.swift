import Foundation
import WallocTensor

/// The image file formats `ImageIO` reads and writes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case png, jpeg, webp, tiff

    /// The format a file name extension stands for (`png`, `jpg`/`jpeg`, `webp`, `tif`/`tiff`,
    /// case-insensitive, with or without the leading dot).
    public init(fileExtension: String) throws {
        var ext = fileExtension.lowercased()
        if ext.hasPrefix(".") { ext.removeFirst() }
        switch ext {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        case "webp": self = .webp
        case "tif", "tiff": self = .tiff
        default:
            throw WallocError("unknown image file extension '\(fileExtension)' (expected .png, .jpg, .jpeg, .webp, .tif or .tiff)")
        }
    }

    /// The format whose signature starts `data`, or nil.
    public init?(magic data: Data) {
        let head = [UInt8](data.prefix(12))
        func starts(_ bytes: [UInt8], at offset: Int = 0) -> Bool {
            head.count >= offset + bytes.count && Array(head[offset..<(offset + bytes.count)]) == bytes
        }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else if starts([0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) {
            self = .webp
        } else if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A])
                    || starts([0x49, 0x49, 0x2B, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2B]) {
            self = .tiff // classic TIFF and BigTIFF, either byte order
        } else {
            return nil
        }
    }

    /// The largest width or height the format can hold.
    public var maxSide: Int {
        switch self {
        case .png: return 65535      // our limit; the PNG format allows 2^31 - 1
        case .jpeg: return 65500     // JPEG_MAX_DIMENSION of libjpeg
        case .webp: return 16383     // WEBP_MAX_DIMENSION
        case .tiff: return 1 << 30   // our limit; the pixel limits below bind first
        }
    }
}

/// Limits checked before any pixel buffer is allocated.
public enum ImageLimits {
    /// The most pixels (width × height) an image may have.
    public static let maxPixels = 1 << 28
    /// The most samples (width × height × channels, 4 GiB of float32) an image may have.
    public static let maxSamples = 1 << 30
    /// The most channels a TIFF may have.
    public static let maxTIFFChannels = 4096
}

/// JPEG chroma subsampling.
public enum ChromaSubsampling: String, Sendable {
    /// Chroma at half resolution in both directions (the common default).
    case yuv420
    /// Chroma at full resolution.
    case yuv444
}

/// TIFF compression on write (all lossless; integer samples use the horizontal-difference
/// predictor and float samples the floating-point predictor when compressed).
public enum TIFFCompression: String, Sendable {
    case none, lzw, deflate
}

/// A decoded image.
public struct Image: Sendable {
    /// Samples as `[C, H, W]` float32; integer samples are scaled to [0, 1] (value / (2^bits - 1)),
    /// float TIFF samples are passed through unchanged.
    public var pixels: Tensor
    /// Bits per sample in the file: 8 or 16 for integer samples, 32 for float TIFF.
    public var bitDepth: Int
    /// Whether the file stores float samples.
    public var isFloat: Bool
    /// The file format the image was decoded from.
    public var format: ImageFormat

    public init(pixels: Tensor, bitDepth: Int, isFloat: Bool, format: ImageFormat) {
        self.pixels = pixels
        self.bitDepth = bitDepth
        self.isFloat = isFloat
        self.format = format
    }

    /// The number of channels (C).
    public var channels: Int { pixels.shape[0] }
    /// The height in pixels (H).
    public var height: Int { pixels.shape[1] }
    /// The width in pixels (W).
    public var width: Int { pixels.shape[2] }
}

/// Checks a pixel tensor for encoding and returns (channels, height, width). `[H, W]` counts as
/// one channel.
func imageDimensions(_ pixels: Tensor, format: ImageFormat) throws -> (c: Int, h: Int, w: Int) {
    let shape = pixels.shape
    let dims: (Int, Int, Int)
    switch shape.count {
    case 2: dims = (1, shape[0], shape[1])
    case 3: dims = (shape[0], shape[1], shape[2])
    default:
        throw WallocError("\(format.rawValue): pixels must have shape [C, H, W] or [H, W], got \(shape)")
    }
    let (c, h, w) = dims
    guard c >= 1, h >= 1, w >= 1 else {
        throw WallocError("\(format.rawValue): empty image \(shape)")
    }
    guard h <= format.maxSide, w <= format.maxSide else {
        throw WallocError("\(format.rawValue): \(w)x\(h) exceeds the largest side \(format.maxSide) the format allows")
    }
    try checkImageSize(width: w, height: h, channels: c, what: format.rawValue)
    return (c, h, w)
}

/// Rejects sizes over `ImageLimits` without overflowing.
func checkImageSize(width: Int, height: Int, channels: Int, what: String) throws {
    let (pixels, o1) = width.multipliedReportingOverflow(by: height)
    guard !o1, pixels <= ImageLimits.maxPixels else {
        throw WallocError("\(what): \(width)x\(height) has more than \(ImageLimits.maxPixels) pixels")
    }
    let (samples, o2) = pixels.multipliedReportingOverflow(by: channels)
    guard !o2, samples <= ImageLimits.maxSamples else {
        throw WallocError("\(what): \(width)x\(height)x\(channels) has more than \(ImageLimits.maxSamples) samples")
    }
}
