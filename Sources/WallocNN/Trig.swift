/// 16-lane sine and cosine for the Snake activation (inference and training passes).
public enum Trig {
    public typealias V = SIMD16<Float>
    /// Beyond this magnitude the three-constant reduction loses accuracy: those lanes take the
    /// scalar library functions.
    public static let reductionLimit: Float = 8192

    /// `|x|` lane-wise.
    @inline(__always)
    public static func magnitude(_ x: V) -> V {
        unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: V.self)
    }

    /// `(sin x, cos x)` for |x| ≤ `reductionLimit` (callers check and fall back to the library
    /// functions): reduction by π/2 (Cody-Waite, three constants), Cephes' minimax polynomials on
    /// [-π/4, π/4], quadrant selection; about 1e-7 absolute error.
    @inline(__always)
    public static func sincos(_ x: V) -> (V, V) {
        let magic = V(repeating: 12_582_912)
        let t = x * 0.636619772367581343 + magic
        let n = t - magic
        let q = unsafeBitCast(t, to: SIMD16<UInt32>.self) &- unsafeBitCast(magic, to: SIMD16<UInt32>.self)
        var r = x.addingProduct(n, V(repeating: -1.5703125))
        r = r.addingProduct(n, V(repeating: -4.837512969970703125e-4))
        r = r.addingProduct(n, V(repeating: -7.54978995489188216e-8))
        let z = r * r
        var ps = V(repeating: 8.3321608736e-3).addingProduct(V(repeating: -1.9515295891e-4), z)
        ps = V(repeating: -1.6666654611e-1).addingProduct(ps, z)
        let sinR = r.addingProduct(ps * z, r)
        var pc = V(repeating: -1.388731625493765e-3).addingProduct(V(repeating: 2.443315711809948e-5), z)
        pc = V(repeating: 4.166664568298827e-2).addingProduct(pc, z)
        let cosR = (V(repeating: 1) - 0.5 * z).addingProduct(pc, z * z)
        // Quadrant selection with bit operations (masked `replace` on integer masks is scalarised).
        typealias U = SIMD16<UInt32>
        let swap = U(repeating: 0) &- (q & 1)  // all ones where q is odd
        let sr = unsafeBitCast(sinR, to: U.self), cr = unsafeBitCast(cosR, to: U.self)
        let sinSign = (q & 2) &<< 30, cosSign = ((q &+ 1) & 2) &<< 30
        let s = unsafeBitCast(((sr & ~swap) | (cr & swap)) ^ sinSign, to: V.self)
        let c = unsafeBitCast(((cr & ~swap) | (sr & swap)) ^ cosSign, to: V.self)
        return (s, c)
    }
}
