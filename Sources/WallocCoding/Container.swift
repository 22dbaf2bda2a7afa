import Foundation
import WallocTensor
import CZlib

/// The header of a `.wlc` file: what was coded, with which model, and how to undo the
/// preparation. See docs/FORMAT.md for the byte layout.
public struct WLCHeader: Sendable, Equatable {
    public enum Modality: UInt8, Sendable { case image = 0, audio = 1 }
    /// How the payload codes the latents.
    public enum Coding: UInt8, Sendable {
        /// Context-modelled rANS (`LatentCoder`).
        case rans = 0
        /// Lossless WebP of the latent image (the reference's way; `latent_to_pil` layout).
        case webp = 1
        /// PNG of the latent image.
        case png = 2
    }

    /// The format version this header was read from; for a header made in memory, the version
    /// `WLCFile.encode()` writes it in (4 with downscaling, else 3).
    public internal(set) var version: Int = 3
    /// The model's fingerprint as the file stores it: its first 8 bytes (version 3) or 16
    /// (versions 1 and 2). `Compressor` writes the first `WLCFile.fingerprintLength` bytes.
    public var fingerprint: [UInt8]
    public var modelName: String
    public var modality: Modality
    /// `[C, H, W]` or `[C, L]` of the original signal.
    public var originalShape: [Int]
    /// Samples per second (audio), 0 for images.
    public var sampleRate: Int
    /// Bit depth of the original samples (8/16/32 for images, 16/24/32 for audio), a default for decoding.
    public var bitDepth: Int
    /// Reflect padding applied before encoding, per spatial axis.
    public var paddingBefore: [Int]
    public var paddingAfter: [Int]
    /// Audio level: the codec saw `(x − offset) · gain`.
    public var gain: Float
    public var offset: Float
    public var latentShape: [Int]
    public var latentBits: Int
    public var coding: Coding
    /// The quality setting (1...100) a variable-rate model encoded at; nil for fixed-rate models
    /// (and every version-1 file).
    public var quality: Int?
    /// Set when the encoder coded the image at a reduced size (version 4): the latents hold an
    /// image of `size` (`[H, W]`, padded as `paddingBefore`/`paddingAfter` say), coded at `quality`,
    /// and decoding enlarges it to `originalShape`.
    public var downscaling: Downscaling? { didSet { version = downscaling == nil ? min(version, 3) : 4 } }

    /// How a downscaled image was coded.
    public struct Downscaling: Sendable, Equatable {
        /// The quality setting the latents were quantised at (the decoder's setting).
        public var quality: Int
        /// The coded image's `[H, W]`, each at most the original's and more than an eighth of it.
        public var size: [Int]
        public init(quality: Int, size: [Int]) { self.quality = quality; self.size = size }
    }

    /// The spatial size the latents code: the downscaled size, else the original's.
    public var codedSize: [Int] { downscaling?.size ?? Array(originalShape.dropFirst()) }

    /// The quality setting the decoder runs at: the coded one of a downscaled image, else `quality`.
    public var decodingQuality: Int? { downscaling?.quality ?? quality }

    public init(fingerprint: [UInt8], modelName: String, modality: Modality, originalShape: [Int], sampleRate: Int = 0,
                bitDepth: Int, paddingBefore: [Int], paddingAfter: [Int], gain: Float = 1, offset: Float = 0,
                latentShape: [Int], latentBits: Int, coding: Coding = .rans, quality: Int? = nil) {
        self.fingerprint = fingerprint; self.modelName = modelName; self.modality = modality
        self.originalShape = originalShape; self.sampleRate = sampleRate; self.bitDepth = bitDepth
        self.paddingBefore = paddingBefore; self.paddingAfter = paddingAfter; self.gain = gain; self.offset = offset
        self.latentShape = latentShape; self.latentBits = latentBits; self.coding = coding; self.quality = quality
    }

    /// Number of latent values the header declares.
    public var latentCount: Int { latentShape.reduce(1, *) }

    /// Whether the model with (full) fingerprint `model` made this file: the file's fingerprint
    /// is its first bytes.
    public func isMade(byModelWithFingerprint model: [UInt8]) -> Bool {
        !fingerprint.isEmpty && model.count >= fingerprint.count && Array(model.prefix(fingerprint.count)) == fingerprint
    }

    /// Fails, naming both models, when the stream was made with another model.
    public func checkModel(fingerprint other: [UInt8], name: String) throws {
        guard isMade(byModelWithFingerprint: other) else {
            let hex = { (b: [UInt8]) in b.map { String(format: "%02x", $0) }.joined() }
            throw WallocError("this file was encoded with model '\(modelName)' (fingerprint \(hex(fingerprint))), not with '\(name)' (fingerprint \(hex(other))); decode it with the model that encoded it")
        }
    }
}

/// A `.wlc` file: header and payload, each protected by a CRC-32.
public struct WLCFile: Sendable, Equatable {
    public static let magic: [UInt8] = [0x57, 0x4C, 0x43, 0x1A]  // "WLC" + Ctrl-Z
    /// The newest version this code reads and writes. Writers use the oldest version that holds a
    /// file (`minimumVersion`): 4 only for downscaled images, 3 otherwise.
    public static let currentVersion = 4
    /// Header flag bits (versions 3 and later).
    static let downscaledFlag: UInt8 = 1
    /// Bytes of the model fingerprint a current file stores.
    public static let fingerprintLength = 8
    /// Bytes of the model fingerprint a file of `version` stores.
    static func fingerprintBytes(version: Int) -> Int { version >= 3 ? fingerprintLength : 16 }

    /// The oldest version that holds this file: 4 with downscaling, else 3.
    public var minimumVersion: Int { header.downscaling != nil ? 4 : 3 }
    /// Decoders refuse latent tensors larger than `baseLatentLimit + payload bytes · latentsPerPayloadByte`
    /// values, so a small corrupt file can never make them allocate much.
    public static let baseLatentLimit = 1 << 24
    public static let latentsPerPayloadByte = 1 << 16

    public var header: WLCHeader
    public var payload: Data

    public init(header: WLCHeader, payload: Data) { self.header = header; self.payload = payload }

    static func crc(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBufferPointer { crc($0) }
    }

    static func crc(_ b: UnsafeBufferPointer<UInt8>) -> UInt32 {
        UInt32(crc32(crc32(0, nil, 0), b.baseAddress, uInt(b.count)))
    }

    /// The bytes of the file, in the oldest version that holds it (`minimumVersion`), or, for tests
    /// of old readers and files, in `version` (version 1 has no quality field, so the header's
    /// quality is then dropped; versions 1 and 2 store 16 fingerprint bytes, padded with zeros;
    /// only version 4 holds downscaling).
    public func encode(version: Int? = nil) -> Data {
        let version = version ?? minimumVersion
        precondition((1...WLCFile.currentVersion).contains(version), "unknown .wlc version \(version)")
        precondition(version >= 4 || header.downscaling == nil, "downscaled images need .wlc version 4")
        let h = header
        var w = ByteWriter()
        w.append(WLCFile.magic)
        w.u16(UInt16(version))
        let compact = version >= 3, audio = h.modality == .audio
        let fingerprintBytes = WLCFile.fingerprintBytes(version: version)
        var body = ByteWriter()
        let flags: UInt8 = h.downscaling != nil ? WLCFile.downscaledFlag : 0
        if compact { body.byte(flags) } else { body.u16(0) }
        body.append(Array((h.fingerprint + [UInt8](repeating: 0, count: fingerprintBytes)).prefix(fingerprintBytes)))
        body.string(h.modelName)
        body.byte(h.modality.rawValue)
        body.varint(UInt64(h.originalShape.count)); for d in h.originalShape { body.varint(UInt64(d)) }
        if !compact || audio { body.varint(UInt64(h.sampleRate)) }
        body.byte(UInt8(h.bitDepth))
        body.varint(UInt64(h.paddingBefore.count))
        for (b, a) in zip(h.paddingBefore, h.paddingAfter) { body.varint(UInt64(b)); body.varint(UInt64(a)) }
        if !compact || audio { body.f32(h.gain); body.f32(h.offset) }
        body.varint(UInt64(h.latentShape.count)); for d in h.latentShape { body.varint(UInt64(d)) }
        body.byte(UInt8(h.latentBits))
        body.byte(h.coding.rawValue)
        if compact { body.varint(UInt64(payload.count)) } else { body.u64(UInt64(payload.count)) }
        if version >= 2 { body.byte(UInt8(h.quality ?? 0)) }
        if let d = h.downscaling {
            body.byte(UInt8(d.quality))
            for n in d.size { body.varint(UInt64(n)) }
        }
        w.u32(UInt32(body.bytes.count))
        w.append(body.bytes)
        w.u32(WLCFile.crc(w.bytes[...]))
        var out = Data(w.bytes)
        out.append(payload)
        let p = [UInt8](payload)
        var tail = ByteWriter(); tail.u32(WLCFile.crc(p[...]))
        out.append(contentsOf: tail.bytes)
        return out
    }

    /// Parses and verifies a `.wlc` file. Every malformed input is a `WallocError`.
    public static func decode(_ data: Data) throws -> WLCFile {
        let bytes = [UInt8](data)
        var r = ByteReader(bytes)
        guard bytes.count >= 4, Array(bytes[0..<4]) == magic else {
            throw WallocError("not a .wlc file (bad magic)")
        }
        _ = try r.take(4)
        let version = Int(try r.u16())
        guard version >= 1 else { throw WallocError("corrupt .wlc file: version \(version)") }
        guard version <= currentVersion else {
            throw WallocError(".wlc format version \(version) is newer than this walloc reads (up to \(currentVersion)); upgrade walloc")
        }
        let headerLength = Int(try r.u32())
        guard headerLength <= 1 << 16 else { throw WallocError("corrupt .wlc file: header length \(headerLength)") }
        let bodyStart = r.position
        try r.need(headerLength + 4)
        let storedCRC = UInt32(bytes[bodyStart + headerLength]) | UInt32(bytes[bodyStart + headerLength + 1]) << 8
            | UInt32(bytes[bodyStart + headerLength + 2]) << 16 | UInt32(bytes[bodyStart + headerLength + 3]) << 24
        guard crc(bytes[0..<(bodyStart + headerLength)]) == storedCRC else {
            throw WallocError("corrupt .wlc file: header checksum mismatch")
        }
        var h = ByteReader(bytes, from: bodyStart, to: bodyStart + headerLength)
        var (header, flags) = try readHeader(&h, version: version)
        let payloadStart = bodyStart + headerLength + 4
        let payloadLength = version >= 3 ? Int(try h.varint(max: UInt64(bytes.count))) : Int(try h.u64Bounded(max: UInt64(bytes.count)))
        if version >= 2 {
            let q = Int(try h.byte())
            guard q <= 100 else { throw WallocError("corrupt .wlc file: quality \(q)") }
            header.quality = q == 0 ? nil : q
        }
        if flags & downscaledFlag != 0 { header.downscaling = try readDownscaling(&h, header: header) }
        guard h.remaining == 0 else { throw WallocError("corrupt .wlc file: \(h.remaining) unexpected header bytes") }
        guard bytes.count == payloadStart + payloadLength + 4 else {
            throw WallocError("corrupt .wlc file: expected \(payloadStart + payloadLength + 4) bytes, found \(bytes.count) (truncated or padded)")
        }
        let payload = bytes[payloadStart..<(payloadStart + payloadLength)]
        var tail = ByteReader(bytes, from: payloadStart + payloadLength)
        guard crc(payload) == (try tail.u32()) else { throw WallocError("corrupt .wlc file: payload checksum mismatch") }
        let limit = baseLatentLimit + payloadLength * latentsPerPayloadByte
        guard header.latentCount <= limit else {
            throw WallocError("corrupt .wlc file: \(header.latentCount) latents declared for a \(payloadLength)-byte payload")
        }
        return WLCFile(header: header, payload: Data(payload))
    }

    /// The header body up to the payload length (the fields every version has; version 3 leaves
    /// out the audio fields of images and keeps 8 fingerprint bytes).
    /// Also returns the flags (0 before version 3).
    static func readHeader(_ r: inout ByteReader, version: Int) throws -> (WLCHeader, UInt8) {
        let compact = version >= 3
        let flags = compact ? Int(try r.byte()) : Int(try r.u16())
        // Version 1 and 2 readers ignored flags; version 3 defines none, version 4 the downscaling bit.
        let known = version >= 4 ? Int(downscaledFlag) : 0
        guard !compact || flags & ~known == 0 else { throw WallocError("corrupt .wlc file: unknown header flags \(flags)") }
        let fingerprint = Array(try r.take(WLCFile.fingerprintBytes(version: version)))
        let name = try r.string(maxLength: 1024)
        guard let modality = WLCHeader.Modality(rawValue: try r.byte()) else { throw WallocError("corrupt .wlc file: unknown modality") }
        let audioFields = !compact || modality == .audio
        let shape = try readShape(&r, what: "signal")
        let sampleRate = audioFields ? Int(try r.varint(max: 10_000_000)) : 0
        let bitDepth = Int(try r.byte())
        let axes = Int(try r.varint(max: 2))
        var before = [Int](), after = [Int]()
        for _ in 0..<axes { before.append(Int(try r.varint(max: 1 << 20))); after.append(Int(try r.varint(max: 1 << 20))) }
        let gain = audioFields ? try r.f32() : 1, offset = audioFields ? try r.f32() : 0
        guard gain.isFinite, gain > 0, offset.isFinite else { throw WallocError("corrupt .wlc file: audio gain \(gain) / offset \(offset)") }
        let latentShape = try readShape(&r, what: "latent")
        let bits = Int(try r.byte())
        guard (1...16).contains(bits) else { throw WallocError("corrupt .wlc file: latent bits \(bits)") }
        guard let coding = WLCHeader.Coding(rawValue: try r.byte()) else { throw WallocError("corrupt .wlc file: unknown latent coding") }
        let spatial = modality == .image ? 2 : 1
        guard shape.count == spatial + 1, latentShape.count == spatial + 1, axes == spatial else {
            throw WallocError("corrupt .wlc file: shapes \(shape) / \(latentShape) do not fit a \(modality == .image ? "2D" : "1D") signal")
        }
        var header = WLCHeader(fingerprint: fingerprint, modelName: name, modality: modality, originalShape: shape,
                               sampleRate: sampleRate, bitDepth: bitDepth, paddingBefore: before, paddingAfter: after,
                               gain: gain, offset: offset, latentShape: latentShape, latentBits: bits, coding: coding)
        header.version = version
        guard flags == 0 || modality == .image else { throw WallocError("corrupt .wlc file: downscaling flag on audio") }
        return (header, compact ? UInt8(flags) : 0)
    }

    /// The downscaling fields (version 4, after the quality): the coded quality and `[H, W]`.
    static func readDownscaling(_ r: inout ByteReader, header: WLCHeader) throws -> WLCHeader.Downscaling {
        guard header.quality != nil else { throw WallocError("corrupt .wlc file: downscaling without a quality setting") }
        let q = Int(try r.byte())
        guard (1...100).contains(q) else { throw WallocError("corrupt .wlc file: coded quality \(q)") }
        var size = [Int]()
        for n in header.originalShape.dropFirst() {
            let m = Int(try r.varint(max: 1 << 31))
            // Enlarging by at most 8 per side keeps the output within 64 times the coded pixels.
            guard m >= 1, m <= n, m * 8 >= n else { throw WallocError("corrupt .wlc file: coded size \(m) for a side of \(n)") }
            size.append(m)
        }
        return .init(quality: q, size: size)
    }

    /// A shape of rank 2 or 3 with positive dimensions whose product fits in 2^40.
    static func readShape(_ r: inout ByteReader, what: String) throws -> [Int] {
        let rank = Int(try r.varint(max: 3))
        guard rank >= 2 else { throw WallocError("corrupt .wlc file: \(what) rank \(rank)") }
        var dims = [Int](), total = 1
        for _ in 0..<rank {
            let d = Int(try r.varint(max: 1 << 31))
            guard d > 0 else { throw WallocError("corrupt .wlc file: \(what) dimension 0") }
            total *= d
            guard total <= 1 << 40 else { throw WallocError("corrupt .wlc file: \(what) shape too large") }
            dims.append(d)
        }
        return dims
    }
}

extension ByteReader {
    mutating func u64Bounded(max: UInt64) throws -> UInt64 {
        let v = try u64()
        guard v <= max else { throw WallocError("corrupt .wlc file: length \(v) exceeds the file size") }
        return v
    }
}
