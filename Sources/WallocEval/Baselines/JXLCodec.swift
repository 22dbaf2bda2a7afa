import CEvalLibraries
import CJXL
import Foundation
import WallocTensor

/// JPEG XL through libjxl: lossy (XYB) at a Butteraugli distance, 8-bit sRGB in and out.
enum JXLCodec {
    /// The encoder effort (1 fastest ... 9 slowest); 7 is cjxl's default.
    static let effort: Int64 = 7

    /// Loads libjxl, which Walloc opens only when the JPEG XL baseline runs (`CEvalLibraries`).
    static func load() throws {
        var error = [CChar](repeating: 0, count: 600)
        guard walloc_load_jxl(&error, error.count) == 1 else {
            throw WallocError("jxl: \(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)); install libjxl (Debian: libjxl0.7)")
        }
    }

    /// Encodes `[3, H, W]` pixels in [0, 1] at a distance (0.1 ... 25; 1 is visually lossless).
    static func encode(_ pixels: Tensor, distance: Double, threads: Int) throws -> Data {
        try load()
        let (c, h, w) = (pixels.shape[0], pixels.shape[1], pixels.shape[2])
        guard c == 3 else { throw WallocError("jxl: the baseline takes RGB images, got \(c) channel(s)") }
        guard distance > 0, distance <= 25 else { throw WallocError("jxl: distance must be in (0, 25], got \(distance)") }
        guard let encoder = JxlEncoderCreate(nil) else { throw WallocError("jxl: out of memory") }
        defer { JxlEncoderDestroy(encoder) }
        let runner = JxlThreadParallelRunnerCreate(nil, threads)
        defer { JxlThreadParallelRunnerDestroy(runner) }
        try check(JxlEncoderSetParallelRunner(encoder, JxlThreadParallelRunner, runner), encoder, "setting threads")

        var info = JxlBasicInfo()
        JxlEncoderInitBasicInfo(&info)
        info.xsize = UInt32(w)
        info.ysize = UInt32(h)
        info.bits_per_sample = 8
        info.num_color_channels = 3
        info.uses_original_profile = 0 // lossy XYB
        try check(JxlEncoderSetBasicInfo(encoder, &info), encoder, "setting the image size")
        var color = JxlColorEncoding()
        JxlColorEncodingSetToSRGB(&color, 0)
        try check(JxlEncoderSetColorEncoding(encoder, &color), encoder, "setting the colour space")

        guard let settings = JxlEncoderFrameSettingsCreate(encoder, nil) else { throw WallocError("jxl: out of memory") }
        try check(JxlEncoderSetFrameDistance(settings, Float(distance)), encoder, "setting the distance")
        try check(JxlEncoderFrameSettingsSetOption(settings, JXL_ENC_FRAME_SETTING_EFFORT, effort), encoder, "setting the effort")
        var format = JxlPixelFormat(num_channels: 3, data_type: JXL_TYPE_UINT8, endianness: JXL_NATIVE_ENDIAN, align: 0)
        let samples = PixelPacking.interleaved8(pixels)
        try samples.withUnsafeBytes { raw in
            try check(JxlEncoderAddImageFrame(settings, &format, raw.baseAddress, raw.count), encoder, "adding the image")
        }
        JxlEncoderCloseInput(encoder)

        var out = [UInt8](repeating: 0, count: max(1 << 16, w * h / 4))
        var written = 0
        while true {
            let (status, used) = out.withUnsafeMutableBufferPointer { buffer -> (JxlEncoderStatus, Int) in
                var next: UnsafeMutablePointer<UInt8>? = buffer.baseAddress! + written
                var available = buffer.count - written
                let status = JxlEncoderProcessOutput(encoder, &next, &available)
                return (status, buffer.count - written - available)
            }
            written += used
            if status == JXL_ENC_SUCCESS { break }
            guard status == JXL_ENC_NEED_MORE_OUTPUT else { try check(status, encoder, "encoding"); break }
            out.append(contentsOf: repeatElement(0, count: out.count))
        }
        return Data(out.prefix(written))
    }

    /// Decodes a JPEG XL to `[3, H, W]` pixels in [0, 1] (8-bit sRGB).
    static func decode(_ data: Data, threads: Int) throws -> Tensor {
        try load()
        guard let decoder = JxlDecoderCreate(nil) else { throw WallocError("jxl: out of memory") }
        defer { JxlDecoderDestroy(decoder) }
        let runner = JxlThreadParallelRunnerCreate(nil, threads)
        defer { JxlThreadParallelRunnerDestroy(runner) }
        guard JxlDecoderSetParallelRunner(decoder, JxlThreadParallelRunner, runner) == JXL_DEC_SUCCESS,
              JxlDecoderSubscribeEvents(decoder, Int32(JXL_DEC_BASIC_INFO.rawValue | JXL_DEC_FULL_IMAGE.rawValue)) == JXL_DEC_SUCCESS else {
            throw WallocError("jxl: cannot set up the decoder")
        }
        var format = JxlPixelFormat(num_channels: 3, data_type: JXL_TYPE_UINT8, endianness: JXL_NATIVE_ENDIAN, align: 0)
        var info = JxlBasicInfo()
        var pixels = [UInt8]()
        return try data.withUnsafeBytes { raw -> Tensor in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress else { throw WallocError("jxl: empty data") }
            guard JxlDecoderSetInput(decoder, base, raw.count) == JXL_DEC_SUCCESS else { throw WallocError("jxl: cannot read the input") }
            JxlDecoderCloseInput(decoder)
            while true {
                let status = JxlDecoderProcessInput(decoder)
                switch status {
                case JXL_DEC_BASIC_INFO:
                    guard JxlDecoderGetBasicInfo(decoder, &info) == JXL_DEC_SUCCESS else { throw WallocError("jxl: cannot read the header") }
                case JXL_DEC_NEED_IMAGE_OUT_BUFFER:
                    var size = 0
                    guard JxlDecoderImageOutBufferSize(decoder, &format, &size) == JXL_DEC_SUCCESS,
                          size == Int(info.xsize) * Int(info.ysize) * 3 else { throw WallocError("jxl: unexpected output size") }
                    pixels = [UInt8](repeating: 0, count: size)
                    let ok = pixels.withUnsafeMutableBytes { buffer in
                        JxlDecoderSetImageOutBuffer(decoder, &format, buffer.baseAddress, buffer.count) == JXL_DEC_SUCCESS
                    }
                    guard ok else { throw WallocError("jxl: cannot set the output buffer") }
                case JXL_DEC_FULL_IMAGE:
                    continue
                case JXL_DEC_SUCCESS:
                    let (w, h) = (Int(info.xsize), Int(info.ysize))
                    guard pixels.count == w * h * 3 else { throw WallocError("jxl: no image decoded") }
                    return pixels.withUnsafeBufferPointer {
                        PixelPacking.planar($0.baseAddress!, channels: 3, height: h, width: w, stride: w * 3)
                    }
                case JXL_DEC_NEED_MORE_INPUT: throw WallocError("jxl: truncated data")
                default: throw WallocError("jxl: decoding failed (status \(status.rawValue))")
                }
            }
        }
    }

    private static func check(_ status: JxlEncoderStatus, _ encoder: OpaquePointer, _ what: String) throws {
        guard status == JXL_ENC_SUCCESS else {
            throw WallocError("jxl: \(what) failed (encoder error \(JxlEncoderGetError(encoder).rawValue))")
        }
    }
}
