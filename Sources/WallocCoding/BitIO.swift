import WallocTensor

/// LSB-first bit output (the coder's header and its raw bits).
struct BitWriter {
    private(set) var bytes = [UInt8]()
    private var acc: UInt64 = 0
    private var fill: UInt32 = 0

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    /// Appends the low `n` bits of `v` (`n` ≤ 32, `v < 2^n`).
    @inline(__always)
    mutating func write(_ v: UInt32, _ n: UInt32) {
        acc |= UInt64(v) &<< UInt64(fill)
        fill &+= n
        if fill >= 32 {
            let w = UInt32(truncatingIfNeeded: acc)
            bytes.append(UInt8(truncatingIfNeeded: w)); bytes.append(UInt8(truncatingIfNeeded: w >> 8))
            bytes.append(UInt8(truncatingIfNeeded: w >> 16)); bytes.append(UInt8(truncatingIfNeeded: w >> 24))
            acc >>= 32
            fill &-= 32
        }
    }

    mutating func bit(_ b: Bool) { write(b ? 1 : 0, 1) }

    /// Exp-Golomb code of order 0 for `v` ≥ 0 (`v` < 2^31).
    mutating func golomb(_ v: UInt32) {
        let x = v + 1
        let n = UInt32(31 - x.leadingZeroBitCount)
        write(0, n)
        write(1, 1)
        write(x & ((1 << n) - 1), n)
    }

    mutating func signedGolomb(_ v: Int32) { golomb(Tokens.zigzag(v)) }

    /// Total bits written so far.
    var bitCount: Int { bytes.count * 8 + Int(fill) }

    /// The bytes, the last one zero-padded.
    mutating func finish() -> [UInt8] {
        while fill > 0 {
            bytes.append(UInt8(truncatingIfNeeded: acc))
            acc >>= 8
            fill = fill > 8 ? fill - 8 : 0
        }
        return bytes
    }
}

/// LSB-first bit input over a buffer with at least 8 readable bytes past `limitBits / 8`, so reads
/// never check bounds; callers compare `position` with `limitBits` at checkpoints (reading past
/// the end yields zeros from the padding, and the checkpoint reports the stream as corrupt).
struct BitReader {
    let base: UnsafePointer<UInt8>
    private(set) var position: Int = 0
    let limitBits: Int

    init(_ base: UnsafePointer<UInt8>, limitBits: Int) {
        self.base = base
        self.limitBits = limitBits
    }

    /// Reads `n` ≤ 32 bits. The caller guarantees `position + n` stays within the padded buffer
    /// (at most `limitBits` + the padding checked at checkpoints).
    @inline(__always)
    mutating func read(_ n: UInt32) -> UInt32 {
        let word = UnsafeRawPointer(base + (position >> 3)).loadUnaligned(as: UInt64.self).littleEndian
        let v = UInt32(truncatingIfNeeded: (word &>> UInt64(position & 7)) & ((1 &<< UInt64(n)) &- 1))
        position &+= Int(n)
        return v
    }

    var overrun: Bool { position > limitBits }

    /// Reads a bit and fails on overrun (header fields).
    mutating func checkedRead(_ n: UInt32) throws -> UInt32 {
        guard position + Int(n) <= limitBits else { throw WallocError("corrupt stream: the coder header is truncated") }
        return read(n)
    }

    mutating func golomb(max: UInt32) throws -> UInt32 {
        var zeros: UInt32 = 0
        while try checkedRead(1) == 0 {
            zeros += 1
            guard zeros < 32 else { throw WallocError("corrupt stream: malformed code in the coder header") }
        }
        let rest = zeros == 0 ? 0 : try checkedRead(zeros)
        let v = (UInt64(1) << UInt64(zeros) | UInt64(rest)) - 1
        guard v <= UInt64(max) else { throw WallocError("corrupt stream: header value \(v) exceeds its limit \(max)") }
        return UInt32(v)
    }

    mutating func signedGolomb(max: Int32) throws -> Int32 {
        let v = Tokens.unzigzag(try golomb(max: UInt32(max) * 2 + 1))
        guard v.magnitude <= max.magnitude else { throw WallocError("corrupt stream: header value \(v) exceeds its limit \(max)") }
        return v
    }
}
