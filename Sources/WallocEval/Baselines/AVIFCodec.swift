import CAVIF
import CEvalLibraries
import Foundation
import WallocTensor

/// AVIF through libavif (AV1 encoder: whichever libavif picks first, libaom on Debian; decoder:
/// dav1d), 8-bit RGB in, 8-bit RGB out.
enum AVIFCodec {
    /// The encoder speed (0 slowest ... 10 fastest); 6 is avifenc's default.
    static let speed: Int32 = 6

    /// Loads libavif, which Walloc opens only when the AVIF baseline runs (`CEvalLibraries`).
    static func load() throws {
        var error = [CChar](repeating: 0, count: 600)
        guard walloc_load_avif(&error, error.count) == 1 else {
            throw WallocError("avif: \(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)); install libavif (Debian: libavif15)")
        }
    }

    /// libavif's version ("unavailable" where it cannot be loaded).
    static var libraryVersion: String { (try? load()) == nil ? "unavailable" : String(cString: avifVersion()) }

    /// The AV1 codecs libavif was built with, as libavif reports them.
    static var versions: String {
        guard (try? load()) != nil else { return "" }
        var buffer = [CChar](repeating: 0, count: 256)
        avifCodecVersions(&buffer)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Encodes `[3, H, W]` pixels in [0, 1] at an AV1 quantizer (0 best ... 63 worst) with
    /// full-range YUV in `chroma` sampling.
    static func encode(_ pixels: Tensor, quantizer: Int, yuv444: Bool, threads: Int) throws -> Data {
        try load()
        let (c, h, w) = (pixels.shape[0], pixels.shape[1], pixels.shape[2])
        guard c == 3 else { throw WallocError("avif: the baseline takes RGB images, got \(c) channel(s)") }
        guard (0...63).contains(quantizer) else { throw WallocError("avif: quantizer must be 0-63, got \(quantizer)") }
        guard let image = avifImageCreate(UInt32(w), UInt32(h), 8, yuv444 ? AVIF_PIXEL_FORMAT_YUV444 : AVIF_PIXEL_FORMAT_YUV420) else {
            throw WallocError("avif: out of memory")
        }
        defer { avifImageDestroy(image) }
        image.pointee.yuvRange = AVIF_RANGE_FULL
        var samples = PixelPacking.interleaved8(pixels)
        var rgb = avifRGBImage()
        avifRGBImageSetDefaults(&rgb, image)
        rgb.format = AVIF_RGB_FORMAT_RGB
        rgb.depth = 8
        rgb.rowBytes = UInt32(w * 3)
        let converted = samples.withUnsafeMutableBufferPointer { buffer -> avifResult in
            rgb.pixels = buffer.baseAddress
            return avifImageRGBToYUV(image, &rgb)
        }
        try check(converted, "converting RGB to YUV")

        guard let encoder = avifEncoderCreate() else { throw WallocError("avif: out of memory") }
        defer { avifEncoderDestroy(encoder) }
        encoder.pointee.maxThreads = Int32(threads)
        encoder.pointee.speed = speed
        encoder.pointee.minQuantizer = Int32(quantizer)
        encoder.pointee.maxQuantizer = Int32(quantizer)
        var output = avifRWData(data: nil, size: 0)
        defer { avifRWDataFree(&output) }
        try check(avifEncoderWrite(encoder, image, &output), "encoding")
        guard let bytes = output.data else { throw WallocError("avif: the encoder returned no data") }
        return Data(bytes: bytes, count: output.size)
    }

    /// Decodes an AVIF to `[3, H, W]` pixels in [0, 1].
    static func decode(_ data: Data, threads: Int) throws -> Tensor {
        try load()
        guard let decoder = avifDecoderCreate() else { throw WallocError("avif: out of memory") }
        defer { avifDecoderDestroy(decoder) }
        decoder.pointee.maxThreads = Int32(threads)
        return try data.withUnsafeBytes { raw -> Tensor in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress else { throw WallocError("avif: empty data") }
            try check(avifDecoderSetIOMemory(decoder, base, raw.count), "reading")
            try check(avifDecoderParse(decoder), "parsing")
            try check(avifDecoderNextImage(decoder), "decoding")
            guard let image = decoder.pointee.image else { throw WallocError("avif: no image decoded") }
            let (w, h) = (Int(image.pointee.width), Int(image.pointee.height))
            var rgb = avifRGBImage()
            avifRGBImageSetDefaults(&rgb, image)
            rgb.format = AVIF_RGB_FORMAT_RGB
            rgb.depth = 8
            avifRGBImageAllocatePixels(&rgb)
            defer { avifRGBImageFreePixels(&rgb) }
            try check(avifImageYUVToRGB(image, &rgb), "converting YUV to RGB")
            guard let pixels = rgb.pixels else { throw WallocError("avif: out of memory") }
            return PixelPacking.planar(pixels, channels: 3, height: h, width: w, stride: Int(rgb.rowBytes))
        }
    }

    private static func check(_ result: avifResult, _ what: String) throws {
        guard result == AVIF_RESULT_OK else {
            throw WallocError("avif: \(what) failed: \(String(cString: avifResultToString(result)))")
        }
    }
}
