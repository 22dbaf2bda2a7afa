import CTIFF
import Foundation
import WallocTensor

/// TIFF through libtiff: 8/16-bit unsigned and 32-bit float samples, any channel count, strips
/// or tiles, contiguous or separate planes on read; contiguous strips on write.
enum TIFFCodec {
    /// The sample types we read and write.
    enum Kind {
        case u8, u16, f32
        var bytes: Int {
            switch self {
            case .u8: return 1
            case .u16: return 2
            case .f32: return 4
            }
        }
        var bitDepth: Int { bytes * 8 }
    }

    private static let deflate: UInt16 = 8 // COMPRESSION_ADOBE_DEFLATE

    static func decode(_ data: Data, name: String) throws -> Image {
        try data.withUnsafeBytes { raw in
            let file = TIFFMemoryFile(reading: raw)
            return try withExtendedLifetime(file) {
                guard let tif = file.open(name: name, mode: "r") else {
                    throw WallocError("\(name): cannot decode tiff: \(file.error ?? "not a TIFF file")")
                }
                defer { TIFFClose(tif) }
                return try read(tif, file: file, name: name)
            }
        }
    }

    private static func read(_ tif: OpaquePointer, file: TIFFMemoryFile, name: String) throws -> Image {
        func fail(_ message: String) -> WallocError {
            WallocError("\(name): cannot decode tiff: \(file.error ?? message)")
        }
        guard let width = field(tif, TIFFTAG_IMAGEWIDTH, UInt32.self, defaulted: false),
              let height = field(tif, TIFFTAG_IMAGELENGTH, UInt32.self, defaulted: false) else {
            throw fail("missing image size")
        }
        let (w, h) = (Int(width), Int(height))
        let channels = Int(field(tif, TIFFTAG_SAMPLESPERPIXEL, UInt16.self) ?? 1)
        let bits = field(tif, TIFFTAG_BITSPERSAMPLE, UInt16.self) ?? 1
        let format = field(tif, TIFFTAG_SAMPLEFORMAT, UInt16.self) ?? UInt16(SAMPLEFORMAT_UINT)
        let separate = field(tif, TIFFTAG_PLANARCONFIG, UInt16.self) == UInt16(PLANARCONFIG_SEPARATE) && channels > 1
        let photometric = Int32(field(tif, TIFFTAG_PHOTOMETRIC, UInt16.self, defaulted: false) ?? UInt16(PHOTOMETRIC_MINISBLACK))
        guard w >= 1, h >= 1, channels >= 1, channels <= ImageLimits.maxTIFFChannels else {
            throw fail("invalid size \(w)x\(h) with \(channels) channels")
        }
        try checkImageSize(width: w, height: h, channels: channels, what: name)

        let kind: Kind
        switch (bits, Int32(format)) {
        case (8, SAMPLEFORMAT_UINT): kind = .u8
        case (16, SAMPLEFORMAT_UINT): kind = .u16
        case (32, SAMPLEFORMAT_IEEEFP): kind = .f32
        default:
            throw WallocError("\(name): TIFF with \(bits)-bit samples of format \(format) is not supported (8/16-bit unsigned integer or 32-bit float)")
        }
        switch photometric {
        case PHOTOMETRIC_PALETTE:
            throw WallocError("\(name): palette TIFF is not supported")
        case PHOTOMETRIC_YCBCR:
            guard field(tif, TIFFTAG_COMPRESSION, UInt16.self) == UInt16(COMPRESSION_JPEG),
                  setField(tif, TIFFTAG_JPEGCOLORMODE, [Int32(JPEGCOLORMODE_RGB)]) else {
                throw WallocError("\(name): subsampled YCbCr TIFF is not supported")
            }
        default: break
        }

        let plane = w * h
        let perChunk = separate ? 1 : channels // samples per pixel in one strip or tile
        var pixels = Tensor(zeros: [channels, h, w])
        try pixels.withUnsafeMutableBufferPointer { buffer in
            let dst = buffer.baseAddress!
            func convert(_ src: UnsafeRawPointer, pixels n: Int, firstChannel: Int, offset: Int) {
                switch kind {
                case .u8:
                    SampleConversion.deinterleave(src.assumingMemoryBound(to: UInt8.self), pixels: n, channels: perChunk,
                                                  into: dst, planeStride: plane, firstChannel: firstChannel, offset: offset)
                case .u16:
                    SampleConversion.deinterleave(src.assumingMemoryBound(to: UInt16.self), pixels: n, channels: perChunk,
                                                  into: dst, planeStride: plane, firstChannel: firstChannel, offset: offset)
                case .f32:
                    SampleConversion.deinterleave(src.assumingMemoryBound(to: Float.self), pixels: n, channels: perChunk,
                                                  into: dst, planeStride: plane, firstChannel: firstChannel, offset: offset)
                }
            }
            let planes = separate ? channels : 1
            if TIFFIsTiled(tif) != 0 {
                guard let tw32 = field(tif, TIFFTAG_TILEWIDTH, UInt32.self),
                      let th32 = field(tif, TIFFTAG_TILELENGTH, UInt32.self) else { throw fail("missing tile size") }
                let (tw, th) = (Int(tw32), Int(th32))
                let (tilePixels, overflow) = tw.multipliedReportingOverflow(by: th)
                guard tw >= 1, th >= 1, !overflow, tilePixels * perChunk <= ImageLimits.maxSamples else {
                    throw fail("invalid tile size \(tw)x\(th)")
                }
                let rowBytes = tw * perChunk * kind.bytes
                var scratch = [UInt8](repeating: 0, count: th * rowBytes)
                try scratch.withUnsafeMutableBytes { tile in
                    for p in 0..<planes {
                        for ty in stride(from: 0, to: h, by: th) {
                            for tx in stride(from: 0, to: w, by: tw) {
                                let index = TIFFComputeTile(tif, UInt32(tx), UInt32(ty), 0, UInt16(p))
                                guard TIFFReadEncodedTile(tif, index, tile.baseAddress, tmsize_t(tile.count)) == tile.count else {
                                    throw fail("tile \(index) is truncated or corrupt")
                                }
                                for r in 0..<min(th, h - ty) {
                                    convert(tile.baseAddress! + r * rowBytes, pixels: min(tw, w - tx),
                                            firstChannel: separate ? p : 0, offset: (ty + r) * w + tx)
                                }
                            }
                        }
                    }
                }
            } else {
                let rowsPerStrip = max(1, min(Int(field(tif, TIFFTAG_ROWSPERSTRIP, UInt32.self) ?? height), h))
                let rowBytes = w * perChunk * kind.bytes
                var scratch = [UInt8](repeating: 0, count: rowsPerStrip * rowBytes)
                try scratch.withUnsafeMutableBytes { strip in
                    for p in 0..<planes {
                        for row in stride(from: 0, to: h, by: rowsPerStrip) {
                            let rows = min(rowsPerStrip, h - row)
                            let index = TIFFComputeStrip(tif, UInt32(row), UInt16(p))
                            guard TIFFReadEncodedStrip(tif, index, strip.baseAddress, tmsize_t(rows * rowBytes)) == rows * rowBytes else {
                                throw fail("strip \(index) is truncated or corrupt")
                            }
                            convert(strip.baseAddress!, pixels: rows * w, firstChannel: separate ? p : 0, offset: row * w)
                        }
                    }
                }
            }
            if photometric == PHOTOMETRIC_MINISWHITE && kind != .f32 {
                for i in 0..<plane { dst[i] = 1 - dst[i] } // first channel: 0 means white
            }
        }
        return Image(pixels: pixels, bitDepth: kind.bitDepth, isFloat: kind == .f32, format: .tiff)
    }

    static func encode(_ pixels: Tensor, bitDepth: Int, compression: TIFFCompression) throws -> Data {
        let (c, h, w) = try imageDimensions(pixels, format: .tiff)
        guard c <= ImageLimits.maxTIFFChannels else {
            throw WallocError("tiff: at most \(ImageLimits.maxTIFFChannels) channels, got \(c)")
        }
        let kind: Kind
        switch bitDepth {
        case 8: kind = .u8
        case 16: kind = .u16
        case 32: kind = .f32
        default: throw WallocError("tiff: bit depth must be 8, 16 or 32 (float), got \(bitDepth)")
        }
        let file = TIFFMemoryFile()
        return try withExtendedLifetime(file) {
            let bigTIFF = c * h * w * kind.bytes > 4_000_000_000 - (1 << 24)
            guard let tif = file.open(name: "tiff", mode: bigTIFF ? "w8" : "w") else {
                throw WallocError("tiff: cannot start encoding: \(file.error ?? "libtiff failed")")
            }
            var open = true
            defer { if open { TIFFClose(tif) } }
            func fail(_ message: String) -> WallocError { WallocError("tiff: cannot encode: \(file.error ?? message)") }

            let rowBytes = w * c * kind.bytes
            let rowsPerStrip = max(1, min(h, (1 << 18) / rowBytes))
            // Grey(+alpha) and RGB(+alpha) are tagged as such; other counts are grey plus extra samples.
            var extra: [UInt16] = switch c {
            case 1, 3: []
            case 2, 4: [UInt16(EXTRASAMPLE_UNASSALPHA)]
            default: [UInt16](repeating: UInt16(EXTRASAMPLE_UNSPECIFIED), count: c - 1)
            }
            let compressionTag: UInt16 = switch compression {
            case .none: UInt16(COMPRESSION_NONE)
            case .lzw: UInt16(COMPRESSION_LZW)
            case .deflate: deflate
            }
            var ok = setField(tif, TIFFTAG_IMAGEWIDTH, [UInt32(w)])
                && setField(tif, TIFFTAG_IMAGELENGTH, [UInt32(h)])
                && setField(tif, TIFFTAG_SAMPLESPERPIXEL, [Int32(c)])
                && setField(tif, TIFFTAG_BITSPERSAMPLE, [Int32(kind.bitDepth)])
                && setField(tif, TIFFTAG_SAMPLEFORMAT, [kind == .f32 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT])
                && setField(tif, TIFFTAG_PLANARCONFIG, [PLANARCONFIG_CONTIG])
                && setField(tif, TIFFTAG_PHOTOMETRIC, [(c == 3 || c == 4) ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK])
                && setField(tif, TIFFTAG_ROWSPERSTRIP, [UInt32(rowsPerStrip)])
                && setField(tif, TIFFTAG_COMPRESSION, [Int32(compressionTag)])
            if compression != .none {
                ok = ok && setField(tif, TIFFTAG_PREDICTOR, [kind == .f32 ? PREDICTOR_FLOATINGPOINT : PREDICTOR_HORIZONTAL])
            }
            if !extra.isEmpty {
                ok = ok && extra.withUnsafeMutableBufferPointer { setField(tif, TIFFTAG_EXTRASAMPLES, [Int32($0.count), $0.baseAddress!]) }
            }
            guard ok else { throw fail("cannot set TIFF tags") }

            var scratch = [UInt8](repeating: 0, count: rowsPerStrip * rowBytes)
            try pixels.withUnsafeBufferPointer { src in
                try scratch.withUnsafeMutableBytes { strip in
                    for (index, row) in stride(from: 0, to: h, by: rowsPerStrip).enumerated() {
                        let rows = min(rowsPerStrip, h - row)
                        let base = strip.baseAddress!
                        switch kind {
                        case .u8:
                            SampleConversion.interleave(src.baseAddress!, planeStride: h * w, offset: row * w, pixels: rows * w,
                                                        channels: c, into: base.assumingMemoryBound(to: UInt8.self))
                        case .u16:
                            SampleConversion.interleave(src.baseAddress!, planeStride: h * w, offset: row * w, pixels: rows * w,
                                                        channels: c, into: base.assumingMemoryBound(to: UInt16.self))
                        case .f32:
                            SampleConversion.interleave(src.baseAddress!, planeStride: h * w, offset: row * w, pixels: rows * w,
                                                        channels: c, into: base.assumingMemoryBound(to: Float.self))
                        }
                        guard TIFFWriteEncodedStrip(tif, UInt32(index), base, tmsize_t(rows * rowBytes)) >= 0 else {
                            throw fail("writing strip \(index) failed")
                        }
                    }
                }
            }
            guard TIFFFlush(tif) == 1 else { throw fail("writing the directory failed") }
            TIFFClose(tif)
            open = false
            if let error = file.error { throw WallocError("tiff: cannot encode: \(error)") }
            return Data(file.sink)
        }
    }

    /// Reads a scalar tag through libtiff's va_list API (Swift cannot call variadic C functions).
    private static func field<T: BinaryInteger>(_ tif: OpaquePointer, _ tag: Int32, _: T.Type,
                                                 defaulted: Bool = true) -> T? {
        var value = T.zero
        let found = withUnsafeMutablePointer(to: &value) { pointer in
            withVaList([pointer]) { args in
                defaulted ? TIFFVGetFieldDefaulted(tif, UInt32(tag), args) : TIFFVGetField(tif, UInt32(tag), args)
            }
        }
        return found == 1 ? value : nil
    }

    /// Sets a tag through libtiff's va_list API. 16-bit values are passed as Int32 (C promotion).
    private static func setField(_ tif: OpaquePointer, _ tag: Int32, _ values: [CVarArg]) -> Bool {
        withVaList(values) { TIFFVSetField(tif, UInt32(tag), $0) } == 1
    }
}
