import Foundation
import Testing
import Walloc

@Suite("Image errors")
struct ImageErrorTests {
    static func sample(_ format: ImageFormat) throws -> Data {
        switch format {
        case .png, .tiff:
            return try ImageIO.encode(MediaFixtures.quantizedImage(channels: 3, height: 17, width: 33, bits: 8), format: format)
        case .jpeg, .webp:
            return try ImageIO.encode(MediaFixtures.smoothImage(channels: 3, height: 17, width: 33), format: format)
        }
    }

    @Test("Truncated files give a WallocError at every cut", arguments: ImageFormat.allCases)
    func truncated(format: ImageFormat) throws {
        let data = try Self.sample(format)
        #expect(try ImageIO.decode(data, name: "whole").pixels.shape == [3, 17, 33])
        let n = data.count
        for cut in [0, 1, 3, 4, 8, 12, 16, 30, 60, n / 4, n / 2, 3 * n / 4, n - 10, n - 2, n - 1] {
            let error = expectWallocError { _ = try ImageIO.decode(data.prefix(cut), name: "cut-\(cut)") }
            #expect(error?.message.contains("cut-\(cut)") == true)
        }
    }

    @Test("A valid signature followed by random bytes gives a WallocError", arguments: ImageFormat.allCases)
    func randomAfterSignature(format: ImageFormat) throws {
        let header = Array(try Self.sample(format).prefix(format == .webp ? 16 : 8))
        for seed in 1...8 {
            var rng = SeededGenerator(seed: UInt64(seed))
            let body = (0..<(64 << seed)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            expectWallocError { _ = try ImageIO.decode(Data(header + body), name: "random") }
        }
    }

    @Test("Corrupted bytes inside a file never crash: an error or an image of the right shape",
          arguments: ImageFormat.allCases)
    func corrupted(format: ImageFormat) throws {
        let data = try Self.sample(format)
        var rng = SeededGenerator(seed: 99)
        var failures = 0
        for _ in 0..<40 {
            var bytes = [UInt8](data)
            for _ in 0..<4 { bytes[Int.random(in: 16..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            do {
                let image = try ImageIO.decode(Data(bytes), name: "corrupt")
                #expect(image.pixels.count == image.channels * image.height * image.width)
            } catch is WallocError {
                failures += 1
            }
        }
        if format == .png { #expect(failures == 40) } // CRCs catch every change
    }

    @Test("Unknown formats and extensions are rejected")
    func unknownFormats() throws {
        let folder = try TemporaryFolder()
        let error = expectWallocError { _ = try ImageIO.decode(Data("GIF89a........".utf8), name: "x.gif") }
        #expect(error?.message.contains("unknown") == true)
        expectWallocError { _ = try ImageIO.decode(Data(), name: "empty") }
        expectWallocError { _ = try ImageFormat(fileExtension: "gif") }
        #expect(try ImageFormat(fileExtension: ".JPG") == .jpeg)
        #expect(try ImageFormat(fileExtension: "tif") == .tiff)
        let pixels = MediaFixtures.smoothImage(channels: 3, height: 4, width: 4)
        expectWallocError { try ImageIO.write(pixels, to: folder.file("x.bmp")) }
        expectWallocError { try ImageIO.write(pixels, to: folder.file("noextension")) }
        expectWallocError { _ = try ImageIO.read(folder.file("missing.png")) }
        #expect(try folder.contents().isEmpty)
        // The format comes from the signature, not the name.
        try ImageIO.write(pixels, to: folder.file("really-a-png.jpg"), format: .png)
        #expect(try ImageIO.read(folder.file("really-a-png.jpg")).format == .png)
    }

    @Test("Channel counts, bit depths and options a format cannot hold are rejected")
    func unsupportedLayouts() throws {
        func image(_ c: Int) -> Tensor { MediaFixtures.smoothImage(channels: c, height: 5, width: 7) }
        let cases: [(Tensor, ImageFormat, Int, Int?, Bool)] = [
            (image(5), .png, 8, nil, false), (image(2), .jpeg, 8, nil, false), (image(4), .jpeg, 8, nil, false),
            (image(1), .webp, 8, nil, false), (image(5), .webp, 8, nil, true), (image(3), .png, 32, nil, false),
            (image(3), .jpeg, 16, nil, false), (image(3), .webp, 16, nil, false), (image(3), .tiff, 12, nil, false),
            (image(3), .jpeg, 8, 0, false), (image(3), .jpeg, 8, 101, false), (image(3), .png, 8, 50, false),
            (image(3), .png, 8, nil, true), (Tensor(zeros: [3, 0, 4]), .png, 8, nil, false),
            (Tensor(zeros: [2, 3, 4, 5]), .tiff, 8, nil, false),
        ]
        for (pixels, format, bits, quality, lossless) in cases {
            expectWallocError { _ = try ImageIO.encode(pixels, format: format, bitDepth: bits, quality: quality, lossless: lossless) }
        }
    }

    @Test("Sizes over the format or memory limits are rejected before allocating")
    func limits() throws {
        expectWallocError { _ = try ImageIO.encode(Tensor(zeros: [1, 1, 65536]), format: .png) }
        expectWallocError { _ = try ImageIO.encode(Tensor(zeros: [3, 1, 16384]), format: .webp) }
        expectWallocError { _ = try ImageIO.encode(Tensor(zeros: [1, 65501, 1]), format: .jpeg) }
        // A TIFF header claiming 2^20 x 2^20 pixels (backed by 16 real ones).
        let small = MediaFixtures.quantizedImage(channels: 1, height: 4, width: 4, bits: 8)
        let huge = MinimalTIFF.build(small, bits: 8, separate: false, tiled: false, claimedSize: (1 << 20, 1 << 20))
        let error = expectWallocError { _ = try ImageIO.decode(huge, name: "huge.tif") }
        #expect(error?.message.contains("pixels") == true)
        // 31 channels is fine, 4097 is over the TIFF channel limit.
        expectWallocError { _ = try ImageIO.encode(Tensor(zeros: [4097, 1, 1]), format: .tiff) }
    }

    @Test("A failed write leaves no file and keeps an existing one")
    func atomicWrite() throws {
        let folder = try TemporaryFolder()
        let url = folder.file("out.png")
        expectWallocError { try ImageIO.write(Tensor(zeros: [5, 4, 4]), to: url) }
        #expect(try folder.contents().isEmpty)
        let good = MediaFixtures.quantizedImage(channels: 3, height: 4, width: 4, bits: 8)
        try ImageIO.write(good, to: url)
        let before = try Data(contentsOf: url)
        expectWallocError { try ImageIO.write(Tensor(zeros: [5, 4, 4]), to: url) }
        #expect(try Data(contentsOf: url) == before)
        #expect(try folder.contents() == ["out.png"])
        expectWallocError { try ImageIO.write(good, to: folder.file("no-such-folder/out.png")) }
    }
}
