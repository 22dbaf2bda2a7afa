import Foundation
import WallocIO
import WallocTensor

/// Reading and writing PNG, JPEG, WebP and TIFF images as `[C, H, W]` float32 tensors.
public enum ImageIO {
    /// The JPEG and lossy WebP quality used when none is given.
    public static let defaultQuality = 90

    /// Reads an image file; the format comes from the file's signature, not its extension.
    public static func read(_ url: URL) throws -> Image {
        try decode(FileIO.read(url), name: url.path)
    }

    /// Decodes an image held in memory; `name` labels error messages.
    public static func decode(_ data: Data, name: String) throws -> Image {
        guard let format = ImageFormat(magic: data) else {
            throw WallocError("\(name): unknown or unsupported image format (expected PNG, JPEG, WebP or TIFF)")
        }
        switch format {
        case .png, .jpeg: return try PNGJPEGCodec.decode(data, name: name, format: format)
        case .webp: return try WebPCodec.decode(data, name: name)
        case .tiff: return try TIFFCodec.decode(data, name: name)
        }
    }

    /// Width and height from a PNG or WebP header, without decoding the pixels; nil for other
    /// formats or a header too short to tell.
    public static func headerSize(_ data: Data) -> (width: Int, height: Int)? {
        switch ImageFormat(magic: data) {
        case .png?:
            // Signature (8), chunk length (4), "IHDR" (4), then width and height, big-endian.
            guard data.count >= 24 else { return nil }
            let b = [UInt8](data.prefix(24))
            guard b[12] == 0x49, b[13] == 0x48, b[14] == 0x44, b[15] == 0x52 else { return nil }
            func be(_ i: Int) -> Int { b[i..<(i + 4)].reduce(0) { $0 << 8 | Int($1) } }
            return (be(16), be(20))
        case .webp?:
            return WebPCodec.headerSize(data)
        default:
            return nil
        }
    }

    /// Encodes `[C, H, W]` (or `[H, W]`) float32 pixels.
    ///
    /// Integer formats clamp samples to [0, 1] and round `value * (2^bitDepth - 1)` to nearest.
    /// - Parameters:
    ///   - bitDepth: 8 (all formats), 16 (PNG, TIFF) or 32 (float TIFF, samples stored as is).
    ///   - quality: 1-100 for JPEG and lossy WebP (default 90); for lossless WebP, 0-100 effort.
    ///   - lossless: exact lossless WebP.
    ///   - chroma: JPEG chroma subsampling.
    ///   - compression: TIFF compression.
    ///   - optimizeCoding: JPEG: optimal Huffman tables (a second pass: smaller file, same pixels).
    ///   - method: WebP: speed/size trade-off, 0 (fastest) to 6 (smallest); libwebp's default 4.
    public static func encode(_ pixels: Tensor, format: ImageFormat, bitDepth: Int = 8, quality: Int? = nil,
                              lossless: Bool = false, chroma: ChromaSubsampling = .yuv420,
                              compression: TIFFCompression = .none, optimizeCoding: Bool = false,
                              method: Int? = nil) throws -> Data {
        if lossless && format != .webp {
            throw WallocError("\(format.rawValue): the lossless option applies to WebP only")
        }
        if optimizeCoding && format != .jpeg {
            throw WallocError("\(format.rawValue): the optimizeCoding option applies to JPEG only")
        }
        if method != nil && format != .webp {
            throw WallocError("\(format.rawValue): the method option applies to WebP only")
        }
        if quality != nil && format != .jpeg && format != .webp {
            throw WallocError("\(format.rawValue): the quality option applies to JPEG and WebP only")
        }
        switch format {
        case .png: return try PNGJPEGCodec.encodePNG(pixels, bitDepth: bitDepth)
        case .jpeg: return try PNGJPEGCodec.encodeJPEG(pixels, bitDepth: bitDepth, quality: quality, chroma: chroma,
                                                       optimize: optimizeCoding)
        case .webp: return try WebPCodec.encode(pixels, bitDepth: bitDepth, quality: quality, lossless: lossless, method: method)
        case .tiff: return try TIFFCodec.encode(pixels, bitDepth: bitDepth, compression: compression)
        }
    }

    /// Encodes and writes an image atomically (temporary file and rename; nothing is left behind
    /// on failure). The format defaults to the one the file extension names.
    public static func write(_ pixels: Tensor, to url: URL, format: ImageFormat? = nil, bitDepth: Int = 8,
                             quality: Int? = nil, lossless: Bool = false, chroma: ChromaSubsampling = .yuv420,
                             compression: TIFFCompression = .none) throws {
        let resolved: ImageFormat
        do {
            resolved = try format ?? ImageFormat(fileExtension: url.pathExtension)
        } catch let error as WallocError {
            throw WallocError("\(url.path): \(error.message)")
        }
        let data: Data
        do {
            data = try encode(pixels, format: resolved, bitDepth: bitDepth, quality: quality, lossless: lossless,
                              chroma: chroma, compression: compression)
        } catch let error as WallocError {
            throw WallocError("\(url.path): \(error.message)")
        }
        try FileIO.writeAtomically(data, to: url)
    }
}
