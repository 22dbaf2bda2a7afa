/// Residual magnitudes as entropy-coded tokens plus raw low bits.
///
/// A residual `r` is folded to `u = zigzag(r)` (0, −1, 1, −2, … → 0, 1, 2, 3, …). Values below
/// 16 are their own token; above, the token holds the exponent and the two bits after the
/// leading one, and the `e − 2` bits below them are written raw (like JPEG XL's hybrid integers):
/// `u` in `[2^e, 2^(e+1))` is token `16 + 4(e − 4) + ((u >> (e − 2)) & 3)`. So the token alphabet
/// stays small (20 tokens for 5-bit latents, 32 for 8-bit, 64 for 16-bit) whatever `latent_bits`.
enum Tokens {
    /// Tokens below this are the value itself (no raw bits).
    static let direct: UInt32 = 16
    /// The largest token alphabet (16-bit latents).
    static let maximumCount = 64

    /// Number of tokens for `bits`-bit latents (residuals `u < 2^bits`).
    static func count(bits: Int) -> Int { bits <= 4 ? 1 << bits : 16 + 4 * (bits - 4) }

    /// Token, raw bit count and raw bits of `u`.
    @inline(__always)
    static func split(_ u: UInt32) -> (token: UInt32, rawBits: UInt32, raw: UInt32) {
        if u < direct { return (u, 0, 0) }
        let e = 31 &- UInt32(u.leadingZeroBitCount)
        let n = e &- 2
        return (16 &+ ((e &- 4) &<< 2) &+ ((u &>> n) & 3), n, u & ((1 &<< n) &- 1))
    }

    /// The token of `u`, without branches.
    @inline(__always)
    static func token(_ u: UInt32) -> UInt32 {
        let e = 31 &- UInt32((u | 1).leadingZeroBitCount)
        let large = (e &<< 2) &+ ((u &>> ((e &- 2) & 31)) & 3)
        return u < direct ? u : large
    }

    /// Raw bit count of a token (0 for direct tokens).
    @inline(__always)
    static func rawBits(_ token: UInt32) -> UInt32 { token < direct ? 0 : ((token &- 16) >> 2) &+ 2 }

    /// The value of a token with its raw bits.
    @inline(__always)
    static func join(_ token: UInt32, raw: UInt32) -> UInt32 {
        if token < direct { return token }
        let n = ((token &- 16) >> 2) &+ 2
        return ((4 | (token & 3)) &<< n) | raw
    }

    @inline(__always) static func zigzag(_ r: Int32) -> UInt32 { UInt32(bitPattern: (r &<< 1) ^ (r &>> 31)) }
    @inline(__always) static func unzigzag(_ u: UInt32) -> Int32 { Int32(bitPattern: u &>> 1) ^ (0 &- Int32(bitPattern: u & 1)) }
}
