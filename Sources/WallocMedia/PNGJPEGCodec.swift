import CMediaShims
import Foundation
import WallocTensor

/// PNG and JPEG through the C glue in CMediaShims (libpng, libjpeg-turbo).
enum PNGJPEGCodec {
    static func decode(_ data: Data, name: String, format: ImageFormat) throws -> Image {
        var raster = wm_raster()
        var message = [CChar](repeating: 0, count: 512)
        let status = data.withUnsafeBytes { raw -> Int32 in
            let base = raw.bindMemory(to: UInt8.self).baseAddress
            let (side, limit) = (UInt32(format.maxSide), UInt64(ImageLimits.maxPixels))
            return format == .png
                ? wm_png_decode(base, raw.count, side, limit, &raster, &message, message.count)
                : wm_jpeg_decode(base, raw.count, side, limit, &raster, &message, message.count)
        }
        defer { wm_free(raster.pixels) }
        guard status == 0, let bytes = raster.pixels else {
            throw WallocError("\(name): cannot decode \(format.rawValue): \(cString(message))")
        }
        let (c, h, w) = (Int(raster.channels), Int(raster.height), Int(raster.width))
        try checkImageSize(width: w, height: h, channels: c, what: name)
        let count = h * w
        let pixels = Tensor(uninitializedShape: [c, h, w]) { dst in
            if raster.bit_depth == 16 {
                bytes.withMemoryRebound(to: UInt16.self, capacity: count * c) { src in
                    SampleConversion.deinterleave(src, pixels: count, channels: c, into: dst.baseAddress!, planeStride: count)
                }
            } else {
                SampleConversion.deinterleave(bytes, pixels: count, channels: c, into: dst.baseAddress!, planeStride: count)
            }
        }
        return Image(pixels: pixels, bitDepth: Int(raster.bit_depth), isFloat: false, format: format)
    }

    static func encodePNG(_ pixels: Tensor, bitDepth: Int) throws -> Data {
        let (c, h, w) = try imageDimensions(pixels, format: .png)
        guard (1...4).contains(c) else {
            throw WallocError("png: holds 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA) channels, got \(c)")
        }
        guard bitDepth == 8 || bitDepth == 16 else {
            throw WallocError("png: bit depth must be 8 or 16, got \(bitDepth)")
        }
        return try finish("png") { out, size, message in
            if bitDepth == 16 {
                let samples = SampleConversion.interleaved(pixels, channels: c, count: h * w, as: UInt16.self)
                return samples.withUnsafeBytes { raw in
                    wm_png_encode(raw.bindMemory(to: UInt8.self).baseAddress, UInt32(w), UInt32(h), Int32(c), 16,
                                  out, size, message, 512)
                }
            }
            let samples = SampleConversion.interleaved(pixels, channels: c, count: h * w, as: UInt8.self)
            return wm_png_encode(samples, UInt32(w), UInt32(h), Int32(c), 8, out, size, message, 512)
        }
    }

    static func encodeJPEG(_ pixels: Tensor, bitDepth: Int, quality: Int?, chroma: ChromaSubsampling,
                           optimize: Bool) throws -> Data {
        let (c, h, w) = try imageDimensions(pixels, format: .jpeg)
        guard c == 1 || c == 3 else {
            throw WallocError("jpeg: holds 1 (grey) or 3 (RGB) channels, got \(c)")
        }
        guard bitDepth == 8 else { throw WallocError("jpeg: bit depth must be 8, got \(bitDepth)") }
        let q = quality ?? ImageIO.defaultQuality
        guard (1...100).contains(q) else { throw WallocError("jpeg: quality must be 1-100, got \(q)") }
        let samples = SampleConversion.interleaved(pixels, channels: c, count: h * w, as: UInt8.self)
        return try finish("jpeg") { out, size, message in
            wm_jpeg_encode(samples, UInt32(w), UInt32(h), Int32(c), Int32(q), chroma == .yuv444 ? 1 : 0,
                           optimize ? 1 : 0, out, size, message, 512)
        }
    }

    /// Runs an encoder that returns a malloc'd buffer and copies it into `Data`.
    private static func finish(
        _ what: String,
        _ encode: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>,
                   UnsafeMutablePointer<CChar>) -> Int32
    ) throws -> Data {
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 512)
        let status = message.withUnsafeMutableBufferPointer { encode(&out, &size, $0.baseAddress!) }
        defer { wm_free(out) }
        guard status == 0, let bytes = out else {
            throw WallocError("\(what): cannot encode: \(cString(message))")
        }
        return Data(bytes: bytes, count: size)
    }
}

/// The text of a NUL-terminated C character buffer.
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
