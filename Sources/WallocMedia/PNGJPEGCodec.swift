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
            if let idat = compressedRows(samples, width: w, height: h, channels: c) {
                return idat.withUnsafeBufferPointer { wm_png_encode_compressed(UInt32(w), UInt32(h), Int32(c), $0.baseAddress, $0.count, out, size, message, 512) }
            }
            return wm_png_encode(samples, UInt32(w), UInt32(h), Int32(c), 8, out, size, message, 512)
        }
    }

    /// Bytes of filtered rows per piece of an 8-bit PNG compressed in pieces, and the most
    /// filtered bytes compressed that way (32 MB: 3840 x 2160 RGB is 25 MB).
    static let pieceBytes = 1 << 18, piecesLimit = 1 << 25

    /// The zlib stream of an 8-bit image's Paeth-filtered rows (what `wm_png_encode` writes:
    /// Paeth filter, zlib's run-length strategy), filtered and compressed in pieces of about
    /// `pieceBytes` on the workers: with run-length matching nothing is lost at the pieces'
    /// borders but a few bytes of block headers. The pieces depend on the image's size alone.
    /// Nil for images of one piece or over `piecesLimit` bytes of rows (then libpng writes them
    /// whole, streaming: the pieces hold the whole compressed image a few times over, which on
    /// very large images would raise the peak memory), or when zlib fails.
    static func compressedRows(_ samples: [UInt8], width w: Int, height h: Int, channels c: Int) -> [UInt8]? {
        let rowBytes = w * c + 1
        let pieces = min(h, (h * rowBytes) / pieceBytes)
        guard pieces >= 2, h * rowBytes <= piecesLimit else { return nil }
        let rowsPer = (h + pieces - 1) / pieces
        let count = (h + rowsPer - 1) / rowsPer
        func rows(_ i: Int) -> Range<Int> { (i * rowsPer)..<min(h, (i + 1) * rowsPer) }
        // Each piece: its raw deflate stream and the Adler-32 of its filtered rows (nil: zlib failed).
        let compressed = Locked([(bytes: [UInt8], adler: UInt32)?](repeating: nil, count: count))
        samples.withUnsafeBufferPointer { src in
            parallelFor(count) { i in
                let r = rows(i), size = r.count * rowBytes
                let filtered = UnsafeMutablePointer<UInt8>.allocate(capacity: size)
                defer { filtered.deallocate() }
                wm_png_filter_rows(src.baseAddress, UInt32(w), Int32(c), UInt32(r.lowerBound), UInt32(r.upperBound), filtered)
                let bound = wm_png_deflate_bound(size)
                var out = [UInt8](repeating: 0, count: bound)
                let n = out.withUnsafeMutableBufferPointer { wm_png_deflate(filtered, size, i == count - 1 ? 1 : 0, $0.baseAddress, bound) }
                guard n >= 0 else { return }
                out.removeLast(bound - n)
                let adler = wm_adler32(filtered, size)
                compressed.withLock { $0[i] = (out, adler) }
            }
        }
        let parts = compressed.withLock { $0 }.compactMap { $0 }
        guard parts.count == count else { return nil }
        // zlib header (deflate, 32 KB window, fastest-level flags), the pieces, Adler-32 of all.
        var stream: [UInt8] = [0x78, 0x01]
        stream.reserveCapacity(2 + parts.reduce(0) { $0 + $1.bytes.count } + 4)
        var adler = parts[0].adler
        for (i, part) in parts.enumerated() {
            stream += part.bytes
            if i > 0 { adler = wm_adler32_combine(adler, part.adler, rows(i).count * rowBytes) }
        }
        stream += [UInt8(adler >> 24), UInt8((adler >> 16) & 0xFF), UInt8((adler >> 8) & 0xFF), UInt8(adler & 0xFF)]
        return stream
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
