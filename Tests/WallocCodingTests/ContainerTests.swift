import Foundation
import Testing
import Walloc

@Suite("The .wlc container")
struct ContainerTests {
    static func sample() throws -> WLCFile {
        let y = makeLatents([12, 6, 9], bits: 8, spread: 9, seed: 3)
        let header = WLCHeader(fingerprint: Array(0..<8), modelName: "RGB test", modality: .image, originalShape: [3, 45, 70],
                               bitDepth: 8, paddingBefore: [1, 1], paddingAfter: [2, 1], latentShape: [12, 6, 9], latentBits: 8)
        return WLCFile(header: header, payload: try LatentCoder.encode(y, bits: 8))
    }

    @Test("Round trip keeps every field, audio fields included")
    func roundTrip() throws {
        let file = try Self.sample()
        #expect(try WLCFile.decode(file.encode()) == file)
        var audio = file
        audio.header = WLCHeader(fingerprint: Array(repeating: 7, count: 8), modelName: "stéréo", modality: .audio,
                                 originalShape: [2, 44_099], sampleRate: 44_100, bitDepth: 24, paddingBefore: [30],
                                 paddingAfter: [31], gain: 0.731, offset: -0.002, latentShape: [16, 5514], latentBits: 8, coding: .webp)
        let back = try WLCFile.decode(audio.encode())
        #expect(back == audio)
        #expect(back.header.version == 3)
    }

    @Test("The quality setting travels in the file; version-1 and version-2 files still decode")
    func qualityAndVersion1() throws {
        var file = try Self.sample()
        file.header.quality = 37
        let back = try WLCFile.decode(file.encode())
        #expect(back.header.quality == 37 && back.header.version == 3)
        var fixed = try Self.sample()
        fixed.header.quality = nil
        #expect(try WLCFile.decode(fixed.encode()).header.quality == nil)
        // A version-1 file (no quality byte) reads as a fixed-rate file of version 1.
        let old = try WLCFile.decode(fixed.encode(version: 1))
        #expect(old.header.version == 1 && old.header.quality == nil && old.payload == fixed.payload)
        #expect(fixed.encode(version: 1).count == fixed.encode(version: 2).count - 1)
        // Version 2 (16 fingerprint bytes, audio fields and a u64 length in image files) decodes too.
        let two = try WLCFile.decode(file.encode(version: 2))
        #expect(two.header.version == 2 && two.header.quality == 37 && two.payload == file.payload)
        #expect(two.header.fingerprint == Array(0..<8) + [UInt8](repeating: 0, count: 8))
        #expect(two.header.gain == 1 && two.header.offset == 0 && two.header.sampleRate == 0)
        // Version 3 is 24 bytes shorter for this image: 1 flag byte, 8 fingerprint bytes, no
        // sample rate, gain or offset, and a payload length in 2 varint bytes, not 8.
        #expect(file.payload.count >= 128 && file.payload.count < 16384)
        #expect(file.encode().count == file.encode(version: 2).count - 24)
        // A quality byte above 100 is corrupt.
        var bad = [UInt8](file.encode())
        let n = Int(bad[6]) | Int(bad[7]) << 8
        bad[10 + n - 1] = 200
        #expect(throws: WallocError.self) { try WLCFile.decode(Data(bad)) }
    }

    @Test("Another model is refused, naming both")
    func fingerprintMismatch() throws {
        let h = try Self.sample().header
        do {
            try h.checkModel(fingerprint: Array(repeating: 0xAB, count: 16), name: "other")
            Issue.record("accepted another model")
        } catch let e as WallocError {
            #expect(e.message.contains("RGB test") && e.message.contains("other") && e.message.contains("abab"))
        }
        // The file keeps the model fingerprint's first 8 bytes: the full fingerprint matches.
        try h.checkModel(fingerprint: Array(0..<16), name: "same")
        #expect(h.isMade(byModelWithFingerprint: Array(0..<16)) && !h.isMade(byModelWithFingerprint: Array(1..<17)))
    }

    @Test("Newer versions and foreign files are refused clearly")
    func versions() throws {
        var bytes = [UInt8](try Self.sample().encode())
        bytes[4] = 9
        #expect(throws: WallocError(".wlc format version 9 is newer than this walloc reads (up to 4); upgrade walloc")) {
            try WLCFile.decode(Data(bytes))
        }
        #expect(throws: WallocError.self) { try WLCFile.decode(Data("RIFF....WAVEfmt ".utf8)) }
        #expect(throws: WallocError.self) { try WLCFile.decode(Data()) }
    }

    @Test("Thousands of corrupted files are rejected, none crashes or allocates much")
    func corruption() throws {
        let good = [UInt8](try Self.sample().encode())
        var rng = SplitMix(state: 99)
        var rejected = 0
        let trials = 4000
        for trial in 0..<trials {
            var bad = good
            switch trial % 4 {
            case 0: bad = Array(bad.prefix(Int.random(in: 0..<bad.count, using: &rng)))
            case 1:
                let i = Int.random(in: 0..<bad.count, using: &rng)
                bad[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            case 2:
                bad.insert(contentsOf: [UInt8](repeating: UInt8.random(in: 0...255, using: &rng), count: Int.random(in: 1...9, using: &rng)),
                           at: Int.random(in: 0...bad.count, using: &rng))
            default:
                // Absurd latent shapes with a valid checksum: rewrite the header and re-sign it.
                var f = try Self.sample()
                f.header.latentShape = [Int.random(in: 1...1 << 20, using: &rng), Int.random(in: 1...1 << 20, using: &rng), 3]
                bad = [UInt8](f.encode())
            }
            do {
                let file = try WLCFile.decode(Data(bad))
                // Only a re-signed header gets here; its latents must still fail to decode or be bounded.
                #expect(file.header.latentCount <= WLCFile.baseLatentLimit + file.payload.count * WLCFile.latentsPerPayloadByte)
                _ = try LatentCoder.decode(file.payload, shape: file.header.latentShape, bits: file.header.latentBits)
                Issue.record("trial \(trial): a corrupted file decoded")
            } catch is WallocError {
                rejected += 1
            }
        }
        #expect(rejected == trials)
    }

    @Test("Version 4 headers: corrupt downscaling fields are refused")
    func corruptHeaders() throws {
        var file = try Self.sample()  // an image of 45 x 70
        file.header.quality = 20
        file.header.downscaling = .init(quality: 40, size: [23, 35])
        let bytes = [UInt8](file.encode())
        #expect(bytes[4] == 4)
        #expect(try WLCFile.decode(Data(bytes)) == file)
        // Coded sizes larger than the image, or more than 8 times smaller, and coded quality 0.
        for bad in [WLCHeader.Downscaling(quality: 40, size: [46, 35]), .init(quality: 40, size: [5, 35]), .init(quality: 0, size: [23, 35])] {
            var f = file
            f.header.downscaling = bad
            #expect(throws: WallocError.self) { try WLCFile.decode(f.encode()) }  // written with valid CRCs
        }
        // The flag in a version-3 file, or an unknown flag bit, is refused.
        var plain = file
        plain.header.downscaling = nil
        var three = [UInt8](plain.encode())
        #expect(three[4] == 3)
        three[10] = 1  // the flags: the body's first byte
        #expect(throws: WallocError("corrupt .wlc file: unknown header flags 1")) { try WLCFile.decode(Data(Self.withHeaderCRC(three))) }
        var four = bytes
        four[10] = 3
        #expect(throws: WallocError("corrupt .wlc file: unknown header flags 3")) { try WLCFile.decode(Data(Self.withHeaderCRC(four))) }
    }

    /// `bytes` with the header CRC recomputed (CRC-32, zlib's polynomial), so that a test reaches
    /// the field checks behind it.
    static func withHeaderCRC(_ bytes: [UInt8]) -> [UInt8] {
        let n = Int(bytes[6]) | Int(bytes[7]) << 8 | Int(bytes[8]) << 16 | Int(bytes[9]) << 24
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes[0..<(10 + n)] {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        crc ^= 0xFFFF_FFFF
        var out = bytes
        for i in 0..<4 { out[10 + n + i] = UInt8((crc >> (8 * UInt32(i))) & 0xFF) }
        return out
    }
}
