import CWebP
import Foundation
import WallocTensor

/// WebP through libwebp: RGB or RGBA, lossy with a quality or exact lossless.
enum WebPCodec {
    /// Width and height from the bitstream's header (libwebp's `WebPGetInfo`), or nil.
    static func headerSize(_ data: Data) -> (width: Int, height: Int)? {
        data.withUnsafeBytes { raw -> (width: Int, height: Int)? in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress else { return nil }
            var w: Int32 = 0, h: Int32 = 0
            guard WebPGetInfo(base, raw.count, &w, &h) != 0 else { return nil }
            return (Int(w), Int(h))
        }
    }

    static func decode(_ data: Data, name: String) throws -> Image {
        try data.withUnsafeBytes { raw -> Image in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress else {
                throw WallocError("\(name): empty file")
            }
            var features = WebPBitstreamFeatures()
            let status = WebPGetFeatures(base, raw.count, &features)
            guard status == VP8_STATUS_OK else {
                throw WallocError("\(name): cannot decode webp: \(describe(status))")
            }
            guard features.has_animation == 0 else {
                throw WallocError("\(name): animated WebP is not supported")
            }
            let (w, h) = (Int(features.width), Int(features.height))
            let c = features.has_alpha != 0 ? 4 : 3
            guard w >= 1, h >= 1, w <= ImageFormat.webp.maxSide, h <= ImageFormat.webp.maxSide else {
                throw WallocError("\(name): invalid WebP size \(w)x\(h)")
            }
            try checkImageSize(width: w, height: h, channels: c, what: name)
            let count = w * h
            var samples = [UInt8](repeating: 0, count: count * c)
            let ok = samples.withUnsafeMutableBufferPointer { out -> Bool in
                let stride = Int32(w * c)
                let result = c == 4
                    ? WebPDecodeRGBAInto(base, raw.count, out.baseAddress, out.count, stride)
                    : WebPDecodeRGBInto(base, raw.count, out.baseAddress, out.count, stride)
                return result != nil
            }
            guard ok else { throw WallocError("\(name): cannot decode webp: corrupt or truncated data") }
            let pixels = Tensor(uninitializedShape: [c, h, w]) { dst in
                SampleConversion.deinterleave(samples, pixels: count, channels: c, into: dst.baseAddress!, planeStride: count)
            }
            return Image(pixels: pixels, bitDepth: 8, isFloat: false, format: .webp)
        }
    }

    static func encode(_ pixels: Tensor, bitDepth: Int, quality: Int?, lossless: Bool, method: Int?) throws -> Data {
        let (c, h, w) = try imageDimensions(pixels, format: .webp)
        guard c == 3 || c == 4 else {
            throw WallocError("webp: holds 3 (RGB) or 4 (RGBA) channels, got \(c)")
        }
        guard bitDepth == 8 else { throw WallocError("webp: bit depth must be 8, got \(bitDepth)") }
        let q = quality ?? (lossless ? 75 : ImageIO.defaultQuality)
        guard (0...100).contains(q) else { throw WallocError("webp: quality must be 0-100, got \(q)") }

        var config = WebPConfig()
        guard WebPConfigInit(&config) != 0 else { throw WallocError("webp: libwebp version mismatch") }
        config.lossless = lossless ? 1 : 0
        config.exact = lossless ? 1 : 0 // keep RGB under fully transparent pixels
        config.quality = Float(q)
        if let method {
            guard (0...6).contains(method) else { throw WallocError("webp: method must be 0-6, got \(method)") }
            config.method = Int32(method)
        }
        guard WebPValidateConfig(&config) != 0 else { throw WallocError("webp: invalid encoder settings") }

        let samples = SampleConversion.interleaved(pixels, channels: c, count: h * w, as: UInt8.self)
        var picture = WebPPicture()
        guard WebPPictureInit(&picture) != 0 else { throw WallocError("webp: libwebp version mismatch") }
        defer { WebPPictureFree(&picture) }
        picture.width = Int32(w)
        picture.height = Int32(h)
        picture.use_argb = lossless ? 1 : 0
        let stride = Int32(w * c)
        let imported = c == 4
            ? WebPPictureImportRGBA(&picture, samples, stride)
            : WebPPictureImportRGB(&picture, samples, stride)
        guard imported != 0 else { throw WallocError("webp: out of memory importing \(w)x\(h) pixels") }

        var writer = WebPMemoryWriter()
        WebPMemoryWriterInit(&writer)
        defer { WebPMemoryWriterClear(&writer) }
        let encoded = withUnsafeMutablePointer(to: &writer) { writerPointer -> Int32 in
            picture.writer = WebPMemoryWrite
            picture.custom_ptr = UnsafeMutableRawPointer(writerPointer)
            return WebPEncode(&config, &picture)
        }
        guard encoded != 0, let mem = writer.mem else {
            throw WallocError("webp: cannot encode (libwebp error \(picture.error_code.rawValue))")
        }
        return Data(bytes: mem, count: writer.size)
    }

    private static func describe(_ status: VP8StatusCode) -> String {
        switch status {
        case VP8_STATUS_NOT_ENOUGH_DATA: return "file is truncated"
        case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream"
        case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature"
        case VP8_STATUS_INVALID_PARAM: return "invalid parameter"
        case VP8_STATUS_OUT_OF_MEMORY: return "out of memory"
        default: return "error \(status.rawValue)"
        }
    }
}
