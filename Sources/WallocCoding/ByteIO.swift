import Foundation
import WallocTensor

/// Little-endian byte output with LEB128 varints.
struct ByteWriter {
    var bytes = [UInt8]()

    mutating func byte(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v & 0xFF)); bytes.append(UInt8(v >> 8)) }
    mutating func u32(_ v: UInt32) { for k in 0..<4 { bytes.append(UInt8((v >> (8 * k)) & 0xFF)) } }
    mutating func u64(_ v: UInt64) { for k in 0..<8 { bytes.append(UInt8((v >> (8 * k)) & 0xFF)) } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func signedVarint(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
    mutating func string(_ s: String) { let u = Array(s.utf8); varint(UInt64(u.count)); bytes.append(contentsOf: u) }
    mutating func append(_ b: [UInt8]) { bytes.append(contentsOf: b) }
}

/// Bounds-checked reading; every failure is a `WallocError` saying the stream is corrupt.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var position: Int
    let end: Int

    init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        position = start
        self.end = end ?? bytes.count
    }

    var remaining: Int { end - position }

    mutating func need(_ n: Int) throws {
        guard n >= 0, n <= remaining else {
            throw WallocError("corrupt or truncated stream: needed \(n) more bytes at offset \(position), \(remaining) left")
        }
    }
    mutating func byte() throws -> UInt8 { try need(1); defer { position += 1 }; return bytes[position] }
    mutating func u16() throws -> UInt16 { try need(2); defer { position += 2 }; return UInt16(bytes[position]) | UInt16(bytes[position + 1]) << 8 }
    mutating func u32() throws -> UInt32 {
        try need(4); defer { position += 4 }
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[position + $1]) << (8 * UInt32($1)) }
    }
    mutating func u64() throws -> UInt64 {
        try need(8); defer { position += 8 }
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[position + $1]) << (8 * UInt64($1)) }
    }
    mutating func f32() throws -> Float { Float(bitPattern: try u32()) }
    /// A varint no larger than `max`.
    mutating func varint(max: UInt64 = UInt64(Int.max)) throws -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            let b = try byte()
            guard shift < 64 else { throw WallocError("corrupt stream: varint too long at offset \(position)") }
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { break }
            shift += 7
        }
        guard v <= max else { throw WallocError("corrupt stream: value \(v) at offset \(position) exceeds its limit \(max)") }
        return v
    }
    mutating func signedVarint(max: Int64 = Int64.max) throws -> Int64 {
        let u = try varint()
        let v = Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1)
        guard v.magnitude <= max.magnitude else { throw WallocError("corrupt stream: value \(v) exceeds its limit \(max)") }
        return v
    }
    mutating func string(maxLength: Int = 4096) throws -> String {
        let n = Int(try varint(max: UInt64(maxLength)))
        try need(n)
        defer { position += n }
        guard let s = String(bytes: bytes[position..<(position + n)], encoding: .utf8) else {
            throw WallocError("corrupt stream: a text field is not UTF-8")
        }
        return s
    }
    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        try need(n); defer { position += n }
        return bytes[position..<(position + n)]
    }
}
