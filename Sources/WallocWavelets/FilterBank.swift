import WallocTensor

/// One level of the periodised bior4.4 filter bank along one axis, vectorised with SIMD16.
///
/// "Row" kernels filter along the contiguous axis (polyphase split into even/odd samples, so the
/// inner loop reads contiguous memory); "column" kernels filter along a strided axis and are
/// vectorised across the contiguous axis. All indices wrap periodically, so any even length works.
@usableFromInline
enum FilterBank {
    typealias V = SIMD16<Float>

    @inline(__always)
    static func wrap(_ k: Int, _ n: Int) -> Int {
        let r = k % n
        return r < 0 ? r + n : r
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

    /// Scratch floats `analyzeRow` / `synthesizeRow` need for an output range of `count`.
    static func scratchCount(_ count: Int) -> Int { 4 * (count + 4) }

    // MARK: contiguous axis

    /// Analysis of the row `x` (length `n`, even) for outputs `m` in `range` (subset of `0..<n/2`).
    static func analyzeRow(
        _ x: UnsafePointer<Float>, n: Int, range: Range<Int>,
        lo: UnsafeMutablePointer<Float>, hi: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let count = range.count
        let e = scratch, o = scratch + count + 4
        // e[i] = x[2(m0+i) - 4], o[i] = x[2(m0+i) - 3], periodic.
        for i in 0..<(count + 4) {
            let k = 2 * (range.lowerBound + i) - 4
            if k >= 0 && k + 1 < n {
                e[i] = x[k]; o[i] = x[k + 1]
            } else {
                e[i] = x[wrap(k, n)]; o[i] = x[wrap(k + 1, n)]
            }
        }
        let h0 = Bior44.h0, h1 = Bior44.h1
        let a0 = h0[0], a1 = h0[1], a2 = h0[2], a3 = h0[3], a4 = h0[4], a5 = h0[5], a6 = h0[6], a7 = h0[7], a8 = h0[8], a9 = h0[9]
        let b2 = h1[2], b3 = h1[3], b4 = h1[4], b5 = h1[5], b6 = h1[6], b7 = h1[7], b8 = h1[8]
        let lo = lo + range.lowerBound, hi = hi + range.lowerBound
        var m = 0
        while m + 16 <= count {
            let e0 = load(e + m), e1 = load(e + m + 1), e2 = load(e + m + 2), e3 = load(e + m + 3), e4 = load(e + m + 4)
            let o0 = load(o + m), o1 = load(o + m + 1), o2 = load(o + m + 2), o3 = load(o + m + 3), o4 = load(o + m + 4)
            var l = V(repeating: a0) * e0
            l = l.addingProduct(V(repeating: a1), o0); l = l.addingProduct(V(repeating: a2), e1)
            l = l.addingProduct(V(repeating: a3), o1); l = l.addingProduct(V(repeating: a4), e2)
            l = l.addingProduct(V(repeating: a5), o2); l = l.addingProduct(V(repeating: a6), e3)
            l = l.addingProduct(V(repeating: a7), o3); l = l.addingProduct(V(repeating: a8), e4)
            l = l.addingProduct(V(repeating: a9), o4)
            var h = V(repeating: b2) * e1
            h = h.addingProduct(V(repeating: b3), o1); h = h.addingProduct(V(repeating: b4), e2)
            h = h.addingProduct(V(repeating: b5), o2); h = h.addingProduct(V(repeating: b6), e3)
            h = h.addingProduct(V(repeating: b7), o3); h = h.addingProduct(V(repeating: b8), e4)
            store(l, lo + m)
            store(h, hi + m)
            m += 16
        }
        while m < count {
            var l: Float = 0, h: Float = 0
            for t in 0..<5 {
                l += h0[2 * t] * e[m + t] + h0[2 * t + 1] * o[m + t]
                h += h1[2 * t] * e[m + t] + h1[2 * t + 1] * o[m + t]
            }
            lo[m] = l; hi[m] = h
            m += 1
        }
    }

    /// Synthesis of one row of length `2 * n2` from `lo` and `hi` (length `n2` each), for output
    /// pairs `p` in `range` (subset of `0..<n2`): writes `y[2p]` and `y[2p + 1]`.
    ///
    /// With `l[i] = lo[p0 + i − 2]` (periodic), `y[2p + r] = Σ_s g0[8 + r − 2s]·l[p + s] + g1[…]·h[p + s]`.
    /// Inputs are duplicated (`ld[j] = l[j / 2]`), so output `n = 2p + r` reads `ld[n + 2s]`: a
    /// contiguous vector loop whose coefficient vectors alternate between the two parities.
    static func synthesizeRow(
        lo: UnsafePointer<Float>, hi: UnsafePointer<Float>, n2: Int, range: Range<Int>,
        y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        let count = range.count
        let span = 2 * (count + 4)
        let ld = scratch, hd = scratch + span
        for i in 0..<(count + 4) {
            let k = range.lowerBound + i - 2
            let j = (k >= 0 && k < n2) ? k : wrap(k, n2)
            let a = lo[j], b = hi[j]
            ld[2 * i] = a; ld[2 * i + 1] = a
            hd[2 * i] = b; hd[2 * i + 1] = b
        }
        let g0 = Bior44.g0, g1 = Bior44.g1
        func alternating(_ f: [Float], _ s: Int) -> V {
            var v = V(repeating: f[8 - 2 * s])
            for lane in stride(from: 1, to: 16, by: 2) { v[lane] = f[9 - 2 * s] }
            return v
        }
        let c0 = alternating(g0, 0), c1 = alternating(g0, 1), c2 = alternating(g0, 2), c3 = alternating(g0, 3), c4 = alternating(g0, 4)
        let d0 = alternating(g1, 0), d1 = alternating(g1, 1), d2 = alternating(g1, 2), d3 = alternating(g1, 3), d4 = alternating(g1, 4)
        let y = y + 2 * range.lowerBound
        let total = 2 * count
        var n = 0
        while n + 16 <= total {
            var acc = c0 * load(ld + n)
            acc = acc.addingProduct(d0, load(hd + n))
            acc = acc.addingProduct(c1, load(ld + n + 2)); acc = acc.addingProduct(d1, load(hd + n + 2))
            acc = acc.addingProduct(c2, load(ld + n + 4)); acc = acc.addingProduct(d2, load(hd + n + 4))
            acc = acc.addingProduct(c3, load(ld + n + 6)); acc = acc.addingProduct(d3, load(hd + n + 6))
            acc = acc.addingProduct(c4, load(ld + n + 8)); acc = acc.addingProduct(d4, load(hd + n + 8))
            store(acc, y + n)
            n += 16
        }
        while n < total {
            let r = n & 1
            var acc: Float = 0
            for s in 0..<5 { acc += g0[8 + r - 2 * s] * ld[n + 2 * s] + g1[8 + r - 2 * s] * hd[n + 2 * s] }
            y[n] = acc
            n += 1
        }
    }

    // MARK: strided axis

    /// Analysis along the rows of a `[height, width]` plane for output rows `m` in `range`:
    /// `lo[m, :] = Σ_j h0[j] x[(2m + j − 4) mod height, :]`.
    static func analyzeColumns(
        _ x: UnsafePointer<Float>, height: Int, width: Int, range: Range<Int>,
        lo: UnsafeMutablePointer<Float>, hi: UnsafeMutablePointer<Float>
    ) {
        let h0 = Bior44.h0, h1 = Bior44.h1
        for m in range {
            let base = 2 * m - 4
            let r0 = x + wrap(base, height) * width, r1 = x + wrap(base + 1, height) * width
            let r2 = x + wrap(base + 2, height) * width, r3 = x + wrap(base + 3, height) * width
            let r4 = x + wrap(base + 4, height) * width, r5 = x + wrap(base + 5, height) * width
            let r6 = x + wrap(base + 6, height) * width, r7 = x + wrap(base + 7, height) * width
            let r8 = x + wrap(base + 8, height) * width
            let lrow = lo + m * width, hrow = hi + m * width
            var w = 0
            while w + 16 <= width {
                let v0 = load(r0 + w), v1 = load(r1 + w), v2 = load(r2 + w), v3 = load(r3 + w), v4 = load(r4 + w)
                let v5 = load(r5 + w), v6 = load(r6 + w), v7 = load(r7 + w), v8 = load(r8 + w)
                var l = h0[0] * v0 + h0[1] * v1
                l += h0[2] * v2 + h0[3] * v3
                l += h0[4] * v4 + h0[5] * v5
                l += h0[6] * v6 + h0[7] * v7
                l += h0[8] * v8
                var h = h1[2] * v2 + h1[3] * v3
                h += h1[4] * v4 + h1[5] * v5
                h += h1[6] * v6 + h1[7] * v7
                h += h1[8] * v8
                store(l, lrow + w)
                store(h, hrow + w)
                w += 16
            }
            while w < width {
                let v0 = r0[w], v1 = r1[w], v2 = r2[w], v3 = r3[w], v4 = r4[w], v5 = r5[w], v6 = r6[w], v7 = r7[w], v8 = r8[w]
                var l = h0[0] * v0 + h0[1] * v1
                l += h0[2] * v2 + h0[3] * v3
                l += h0[4] * v4 + h0[5] * v5
                l += h0[6] * v6 + h0[7] * v7
                l += h0[8] * v8
                var h = h1[2] * v2 + h1[3] * v3
                h += h1[4] * v4 + h1[5] * v5
                h += h1[6] * v6 + h1[7] * v7
                h += h1[8] * v8
                lrow[w] = l; hrow[w] = h
                w += 1
            }
        }
    }

    /// Synthesis along the rows: output rows `n = 2p + r` for `p` in `range`, from `lo` and `hi`
    /// planes of `height2` rows: `y[n, :] = Σ_s g0[8 + r − 2s] lo[(p + s − 2) mod height2, :] + …`.
    static func synthesizeColumns(
        lo: UnsafePointer<Float>, hi: UnsafePointer<Float>, height2: Int, width: Int, range: Range<Int>,
        y: UnsafeMutablePointer<Float>
    ) {
        let g0 = Bior44.g0, g1 = Bior44.g1
        for p in range {
            let k0 = wrap(p - 2, height2) * width, k1 = wrap(p - 1, height2) * width
            let k2 = wrap(p, height2) * width, k3 = wrap(p + 1, height2) * width
            let k4 = wrap(p + 2, height2) * width
            let l0 = lo + k0, l1 = lo + k1, l2 = lo + k2, l3 = lo + k3, l4 = lo + k4
            let h0 = hi + k0, h1 = hi + k1, h2 = hi + k2, h3 = hi + k3, h4 = hi + k4
            for r in 0..<2 {
                let out = y + (2 * p + r) * width
                let c0 = g0[8 + r], c1 = g0[6 + r], c2 = g0[4 + r], c3 = g0[2 + r], c4 = g0[r]
                let d0 = g1[8 + r], d1 = g1[6 + r], d2 = g1[4 + r], d3 = g1[2 + r], d4 = g1[r]
                var w = 0
                while w + 16 <= width {
                    var acc = c0 * load(l0 + w) + d0 * load(h0 + w)
                    acc += c1 * load(l1 + w) + d1 * load(h1 + w)
                    acc += c2 * load(l2 + w) + d2 * load(h2 + w)
                    acc += c3 * load(l3 + w) + d3 * load(h3 + w)
                    acc += c4 * load(l4 + w) + d4 * load(h4 + w)
                    store(acc, out + w)
                    w += 16
                }
                while w < width {
                    var acc = c0 * l0[w] + d0 * h0[w]
                    acc += c1 * l1[w] + d1 * h1[w]
                    acc += c2 * l2[w] + d2 * h2[w]
                    acc += c3 * l3[w] + d3 * h3[w]
                    acc += c4 * l4[w] + d4 * h4[w]
                    out[w] = acc
                    w += 1
                }
            }
        }
    }
}
