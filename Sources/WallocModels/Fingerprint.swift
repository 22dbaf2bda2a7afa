import Foundation
import WallocTensor
#if canImport(CryptoKit)
import CryptoKit
#else
import CCrypto
#endif

extension Codec {
    /// A 16-byte fingerprint of the model: the first half of a SHA-256 over the configuration and
    /// every parameter (key, shape and float32 little-endian bytes, in key order). Bitstreams carry
    /// it, so decoding with a different model fails instead of producing garbage.
    public var fingerprint: [UInt8] {
        var hasher = SHA256Stream()
        let c = config
        let fields = "\(c.type.rawValue);channels=\(c.channels);J=\(c.J);Ne=\(c.Ne.map(String.init) ?? "-");Nd=\(c.Nd.map(String.init) ?? "-");latent_dim=\(c.latentDim);latent_bits=\(c.latentBits);lightweight_encode=\(c.lightweightEncode.map { $0 ? "1" : "0" } ?? "-");post_filter=\(c.postFilter.map { $0 ? "1" : "0" } ?? "-")"
        var described = fields
        // Variable-rate models also hash their quality mapping (absent from older models' hashes);
        // not the encoder's dead zone, which does not change decoding.
        if let r = c.rate {
            described += ";rate=\(r.maxStep.bitPattern),\(r.minStep.bitPattern),\(r.defaultQuality),\(r.condition ? 1 : 0)"
            if r.stepScaledOutput { described += ",scaled" }
        }
        if c.refinesLatents { described += ";refine_latents" }
        if let e = c.envelope { described += ";envelope=\(e.groups),\(e.window),\(e.stepDB.bitPattern),\(e.firstBand)" }
        hasher.update(Array(described.utf8) + [0])
        for (name, tensor) in namedParameters().sorted(by: { $0.0 < $1.0 }) {
            hasher.update(Array(name.utf8) + [0])
            var dims = [UInt8]()
            for d in tensor.shape { withUnsafeBytes(of: UInt64(d).littleEndian) { dims.append(contentsOf: $0) } }
            hasher.update(dims)
            tensor.scalars.withUnsafeBytes { raw in
                #if _endian(big)
                var le = [UInt8](); for v in tensor.scalars { withUnsafeBytes(of: v.bitPattern.littleEndian) { le.append(contentsOf: $0) } }
                hasher.update(le)
                #else
                hasher.update(raw)
                #endif
            }
        }
        return Array(hasher.finish().prefix(16))
    }

    /// The fingerprint as 32 lowercase hex digits.
    public var fingerprintHex: String { fingerprint.map { String(format: "%02x", $0) }.joined() }
}

/// SHA-256 digests as lowercase hex (checksums of dataset shards, dataset identities).
public enum SHA256Digest {
    /// The digest of `bytes`.
    public static func hex(_ bytes: Data) -> String { hex([bytes]) }

    /// The digest of several pieces of data, one after the other.
    public static func hex(_ pieces: [Data]) -> String {
        var h = SHA256Stream()
        for p in pieces { p.withUnsafeBytes { h.update($0) } }
        return h.finish().map { String(format: "%02x", $0) }.joined()
    }

    /// The digest of a string's UTF-8 bytes.
    public static func hex(_ text: String) -> String { hex(Data(text.utf8)) }

    /// The digest of a file, read in 4 MiB pieces.
    public static func hex(fileAt url: URL) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: url.path) else { throw WallocError("\(url.path): cannot be opened") }
        defer { try? handle.close() }
        var h = SHA256Stream()
        do {
            while let piece = try handle.read(upToCount: 4 << 20), !piece.isEmpty { piece.withUnsafeBytes { h.update($0) } }
        } catch {
            throw WallocError("\(url.path): cannot be read (\(error.localizedDescription))")
        }
        return h.finish().map { String(format: "%02x", $0) }.joined()
    }
}

/// Incremental SHA-256 over OpenSSL's EVP interface (Linux) or CryptoKit (Apple platforms).
struct SHA256Stream {
    #if canImport(CryptoKit)
    private var state = SHA256()
    mutating func update(_ bytes: [UInt8]) { state.update(data: bytes) }
    mutating func update(_ raw: UnsafeRawBufferPointer) { state.update(bufferPointer: raw) }
    mutating func finish() -> [UInt8] { Array(state.finalize()) }
    #else
    private let context: OpaquePointer
    init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }
    mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }
    mutating func update(_ raw: UnsafeRawBufferPointer) {
        if raw.count > 0 { EVP_DigestUpdate(context, raw.baseAddress, raw.count) }
    }
    mutating func finish() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        EVP_MD_CTX_free(context)
        return digest
    }
    #endif
}
