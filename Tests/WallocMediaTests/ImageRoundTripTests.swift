import Foundation
import Testing
import Walloc

@Suite("Image round trips")
struct ImageRoundTripTests {
    @Test("PNG 8/16-bit with 1-4 channels round-trips exactly", arguments: [8, 16], [1, 2, 3, 4])
    func png(bits: Int, channels: Int) throws {
        let folder = try TemporaryFolder()
        let pixels = MediaFixtures.quantizedImage(channels: channels, height: 17, width: 33, bits: bits)
        let url = folder.file("image.png")
        try ImageIO.write(pixels, to: url, bitDepth: bits)
        let image = try ImageIO.read(url)
        #expect(image.format == .png)
        #expect(image.bitDepth == bits)
        #expect(!image.isFloat)
        #expect(image.pixels.shape == [channels, 17, 33])
        #expect(image.pixels == pixels)
    }

    @Test("Large 8-bit PNGs, compressed in pieces on the workers, round-trip exactly and do not depend on the thread count",
          arguments: [1, 3, 4])
    func pngPieces(channels: Int) throws {
        // 900 rows of 700 x channels bytes: two or more pieces of 256 KB of filtered rows.
        let pixels = MediaFixtures.quantizedImage(channels: channels, height: 900, width: 700, bits: 8)
        let data = try ImageIO.encode(pixels, format: .png)
        let image = try ImageIO.decode(data, name: "pieces.png")
        #expect(image.bitDepth == 8 && image.pixels.shape == [channels, 900, 700])
        #expect(image.pixels == pixels)
        let serial = try Threading.serially { try ImageIO.encode(pixels, format: .png) }
        #expect(serial == data)
        // The zlib stream is one IDAT chunk after the header: its Adler-32 is checked on reading,
        // so a corrupt piece is an error, not a wrong picture.
        var bad = data
        bad[bad.count - 20] ^= 0xFF
        #expect(throws: WallocError.self) { try ImageIO.decode(bad, name: "bad.png") }
    }

    @Test("Float samples are clamped to [0, 1] and rounded; NaN becomes 0")
    func clampAndRound() throws {
        let pixels = Tensor(shape: [1, 1, 6], scalars: [-0.5, 1.5, .nan, 0.5, 0.2 / 255, 0.6 / 255])
        let image = try ImageIO.decode(try ImageIO.encode(pixels, format: .png), name: "mem.png")
        #expect(image.pixels.scalars == [0, 1, 0, Float(128) / 255, 0, Float(1) / 255])
    }

    @Test("8-bit samples from floats, 16 at a time, equal the scalar rule (clamp, +0.5, truncate; NaN is 0)")
    func byteConversion() throws {
        var values: [Float] = [.nan, -.infinity, .infinity, -0.2, 1.2, 0, 1, 0.5, Float(0.5) / 255, Float(254.5) / 255]
        for k in 0..<256 { values += [Float(k) / 255, (Float(k) + 0.5) / 255, (Float(k) + 0.5) / 255 + 1e-6, (Float(k) + 0.5) / 255 - 1e-6] }
        let n = values.count - values.count % 16
        let three = Tensor(shape: [3, 1, n], scalars: Array(values[0..<n]) + Array(values[0..<n].reversed()) + Array(values[0..<n]))
        let image = try ImageIO.decode(try ImageIO.encode(three, format: .png), name: "mem.png")
        let expected = three.scalars.map { x -> Float in
            let v = x * 255
            let clamped: Float = v > 0 ? (v < 255 ? v : 255) : 0
            return Float(UInt8(clamped + 0.5)) / 255
        }
        #expect(image.pixels.scalars == expected)
    }

    @Test("[H, W] tensors are written as one channel; 1x1 images work")
    func greyShapes() throws {
        let grey = Tensor(shape: [3, 5], scalars: (0..<15).map { Float($0) / 255 })
        let image = try ImageIO.decode(try ImageIO.encode(grey, format: .png), name: "mem")
        #expect(image.pixels == grey.reshaped([1, 3, 5]))
        let dot = Tensor(shape: [3, 1, 1], scalars: [1, 0, Float(51) / 255])
        let back = try ImageIO.decode(try ImageIO.encode(dot, format: .tiff), name: "mem")
        #expect(back.pixels == dot)
    }

    @Test("JPEG at quality 90 keeps a smooth image above 30 dB", arguments: [1, 3])
    func jpeg(channels: Int) throws {
        let folder = try TemporaryFolder()
        let pixels = MediaFixtures.smoothImage(channels: channels, height: 48, width: 65)
        let url = folder.file("image.jpg")
        try ImageIO.write(pixels, to: url, quality: 90)
        let image = try ImageIO.read(url)
        #expect(image.format == .jpeg)
        #expect(image.bitDepth == 8)
        #expect(image.pixels.shape == [channels, 48, 65])
        #expect(psnr(image.pixels, pixels) > 30)
    }

    @Test("JPEG quality and chroma subsampling change the encoding")
    func jpegOptions() throws {
        let pixels = MediaFixtures.smoothImage(channels: 3, height: 64, width: 64)
        let q420 = try ImageIO.encode(pixels, format: .jpeg, quality: 90)
        let q444 = try ImageIO.encode(pixels, format: .jpeg, quality: 90, chroma: .yuv444)
        let low = try ImageIO.encode(pixels, format: .jpeg, quality: 20)
        #expect(q444.count > q420.count)
        #expect(low.count < q420.count)
        let decoded444 = try ImageIO.decode(q444, name: "444")
        let decodedLow = try ImageIO.decode(low, name: "low")
        #expect(psnr(decoded444.pixels, pixels) > 30)
        #expect(psnr(decodedLow.pixels, pixels) < psnr(decoded444.pixels, pixels))
    }

    @Test("JPEG optimised Huffman tables: a smaller file with the same pixels")
    func jpegOptimizedCoding() throws {
        let pixels = MediaFixtures.quantizedImage(channels: 3, height: 64, width: 96, bits: 8)
        let plain = try ImageIO.encode(pixels, format: .jpeg, quality: 75)
        let optimized = try ImageIO.encode(pixels, format: .jpeg, quality: 75, optimizeCoding: true)
        #expect(optimized.count < plain.count)
        #expect(try ImageIO.decode(optimized, name: "opt").pixels == ImageIO.decode(plain, name: "plain").pixels)
        #expect(throws: WallocError.self) { try ImageIO.encode(pixels, format: .png, optimizeCoding: true) }
    }

    @Test("WebP method: 0-6 accepted and changes the encoding, others rejected")
    func webpMethod() throws {
        let pixels = MediaFixtures.smoothImage(channels: 3, height: 64, width: 64)
        let fast = try ImageIO.encode(pixels, format: .webp, quality: 75, method: 0)
        let slow = try ImageIO.encode(pixels, format: .webp, quality: 75, method: 6)
        #expect(fast != slow)
        #expect(psnr(try ImageIO.decode(slow, name: "m6").pixels, pixels) > 30)
        #expect(throws: WallocError.self) { try ImageIO.encode(pixels, format: .webp, method: 7) }
        #expect(throws: WallocError.self) { try ImageIO.encode(pixels, format: .jpeg, method: 6) }
    }

    @Test("Lossy WebP at quality 90 keeps a smooth image above 30 dB", arguments: [3, 4])
    func webpLossy(channels: Int) throws {
        let folder = try TemporaryFolder()
        let pixels = MediaFixtures.smoothImage(channels: channels, height: 33, width: 47)
        let url = folder.file("image.webp")
        try ImageIO.write(pixels, to: url, quality: 90)
        let image = try ImageIO.read(url)
        #expect(image.format == .webp)
        #expect(image.pixels.shape == [channels, 33, 47])
        #expect(psnr(image.pixels, pixels) > 30)
    }

    @Test("Lossless WebP is exact, including colour under transparent pixels", arguments: [3, 4])
    func webpLossless(channels: Int) throws {
        var pixels = MediaFixtures.quantizedImage(channels: channels, height: 17, width: 33, bits: 8)
        if channels == 4 {
            for i in 0..<(17 * 10) { pixels.scalars[3 * 17 * 33 + i] = 0 } // fully transparent rows
        }
        let data = try ImageIO.encode(pixels, format: .webp, lossless: true)
        let image = try ImageIO.decode(data, name: "lossless.webp")
        #expect(image.pixels == pixels)
    }

    @Test("TIFF 8/16-bit and float with 1, 3, 5 and 31 channels round-trips exactly",
          arguments: [8, 16, 32], [1, 3, 5, 31])
    func tiff(bits: Int, channels: Int) throws {
        let folder = try TemporaryFolder()
        let pixels = bits == 32
            ? MediaFixtures.floatImage(channels: channels, height: 17, width: 33)
            : MediaFixtures.quantizedImage(channels: channels, height: 17, width: 33, bits: bits)
        let url = folder.file("image.tif")
        try ImageIO.write(pixels, to: url, bitDepth: bits)
        let image = try ImageIO.read(url)
        #expect(image.format == .tiff)
        #expect(image.bitDepth == bits)
        #expect(image.isFloat == (bits == 32))
        #expect(image.pixels == pixels)
    }

    @Test("TIFF with LZW and deflate compression is lossless",
          arguments: [TIFFCompression.lzw, .deflate], [8, 16, 32])
    func tiffCompression(compression: TIFFCompression, bits: Int) throws {
        let pixels = bits == 32
            ? MediaFixtures.smoothImage(channels: 3, height: 40, width: 50)
            : MediaFixtures.quantizedImage(channels: 3, height: 40, width: 50, bits: bits)
        let plain = try ImageIO.encode(pixels, format: .tiff, bitDepth: bits)
        let packed = try ImageIO.encode(pixels, format: .tiff, bitDepth: bits, compression: compression)
        #expect(packed != plain)
        #expect(try ImageIO.decode(packed, name: "packed.tif").pixels == pixels)
        // A flat image compresses well.
        let flat = Tensor(repeating: Float(64) / 255, shape: [3, 40, 50]) // on the 8- and 16-bit grids
        let flatPacked = try ImageIO.encode(flat, format: .tiff, bitDepth: bits, compression: compression)
        #expect(flatPacked.count * 4 < plain.count)
        #expect(try ImageIO.decode(flatPacked, name: "flat.tif").pixels == flat)
    }

    @Test("TIFF read: separate planes, tiles, 8 and 16 bits",
          arguments: [(false, false), (true, false), (false, true), (true, true)], [8, 16])
    func tiffLayouts(layout: (separate: Bool, tiled: Bool), bits: Int) throws {
        let pixels = MediaFixtures.quantizedImage(channels: 5, height: 21, width: 35, bits: bits)
        let data = MinimalTIFF.build(pixels, bits: bits, separate: layout.separate, tiled: layout.tiled)
        let image = try ImageIO.decode(data, name: "layout.tif")
        #expect(image.bitDepth == bits)
        #expect(image.pixels == pixels)
    }
}

/// Builds small uncompressed little-endian TIFFs by hand, for layouts the writer does not produce.
enum MinimalTIFF {
    static func build(_ pixels: Tensor, bits: Int, separate: Bool, tiled: Bool,
                      claimedSize: (width: UInt32, height: UInt32)? = nil) -> Data {
        let (c, h, w) = (pixels.shape[0], pixels.shape[1], pixels.shape[2])
        let bytes = bits / 8, tile = 16
        let maxValue = Float((1 << bits) - 1)
        func sample(_ ch: Int, _ y: Int, _ x: Int) -> [UInt8] {
            guard y < h, x < w else { return [UInt8](repeating: 0, count: bytes) } // tile padding
            let v = UInt16((pixels.scalars[(ch * h + y) * w + x] * maxValue).rounded())
            return bytes == 1 ? [UInt8(v)] : [UInt8(v & 0xFF), UInt8(v >> 8)]
        }
        // Chunks: one strip per plane, or tiles per plane, each a list of (y, x) rows.
        var chunks: [[UInt8]] = []
        let planes = separate ? c : 1
        for p in 0..<planes {
            let channels = separate ? [p] : Array(0..<c)
            if tiled {
                for ty in stride(from: 0, to: h, by: tile) {
                    for tx in stride(from: 0, to: w, by: tile) {
                        var chunk: [UInt8] = []
                        for y in ty..<(ty + tile) { for x in tx..<(tx + tile) { for ch in channels { chunk += sample(ch, y, x) } } }
                        chunks.append(chunk)
                    }
                }
            } else {
                var chunk: [UInt8] = []
                for y in 0..<h { for x in 0..<w { for ch in channels { chunk += sample(ch, y, x) } } }
                chunks.append(chunk)
            }
        }
        var out: [UInt8] = Array("II".utf8) + [42, 0]
        func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
        func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16) }
        out += u32(8)
        // Entry values that do not fit in 4 bytes go after the IFD.
        var entries: [(tag: Int, type: Int, values: [Int])] = [
            (256, 4, [Int(claimedSize?.width ?? UInt32(w))]), (257, 4, [Int(claimedSize?.height ?? UInt32(h))]),
            (258, 3, Array(repeating: bits, count: c)), (259, 3, [1]), (262, 3, [1]),
            (277, 3, [c]), (284, 3, [separate ? 2 : 1]),
        ]
        let offsetsTag = tiled ? 324 : 273, countsTag = tiled ? 325 : 279
        if tiled { entries += [(322, 3, [tile]), (323, 3, [tile])] } else { entries.append((278, 4, [h])) }
        entries += [(offsetsTag, 4, Array(repeating: 0, count: chunks.count)), (countsTag, 4, chunks.map(\.count))]
        if c > 1 { entries.append((338, 3, Array(repeating: 0, count: c - 1))) }
        entries.sort { $0.tag < $1.tag }
        let ifdSize = 2 + entries.count * 12 + 4
        var extra: [UInt8] = []
        var extraOffsets: [Int: Int] = [:]
        let extraStart = 8 + ifdSize
        for e in entries where e.values.count * (e.type == 3 ? 2 : 4) > 4 {
            extraOffsets[e.tag] = extraStart + extra.count
            extra += Array(repeating: 0, count: e.values.count * (e.type == 3 ? 2 : 4))
        }
        let dataStart = extraStart + extra.count
        var chunkOffsets: [Int] = []
        var position = dataStart
        for chunk in chunks { chunkOffsets.append(position); position += chunk.count }
        var ifd = u16(entries.count)
        for var e in entries {
            if e.tag == offsetsTag { e.values = chunkOffsets }
            let encoded = e.values.flatMap { e.type == 3 ? u16($0) : u32($0) }
            ifd += u16(e.tag) + u16(e.type) + u32(e.values.count)
            if let offset = extraOffsets[e.tag] {
                ifd += u32(offset)
                extra.replaceSubrange((offset - extraStart)..<(offset - extraStart + encoded.count), with: encoded)
            } else {
                ifd += encoded + Array(repeating: 0, count: 4 - encoded.count)
            }
        }
        ifd += u32(0)
        out += ifd + extra
        for chunk in chunks { out += chunk }
        return Data(out)
    }
}
