import WallocTensor

/// 3x3 convolutions (stride 1, padding 1) by Winograd's minimal filtering F(4x4, 3x3) (Lavin and
/// Gray, 2016), in float32: each 4x4 block of outputs comes from a 6x6 block of inputs through
/// 36 products per input and output channel instead of 144, so the multiplications are a quarter
/// of a direct convolution's.
///
/// The three transforms are ours; the products are 36 matrix products (one per point of the
/// transformed 6x6 block) run by BLAS:
///
///     V[ξ][c][t] = (Bᵀ d_{c,t} B)[ξ]       input block t of channel c
///     U[ξ][k][c] = (G g_{k,c} Gᵀ)[ξ]       filter of output k, input c
///     M[ξ]       = U[ξ] · V[ξ]             (K x C) · (C x T)
///     y_{k,t}    = Aᵀ M[·][k][t] A + bias
///
/// Transformed values are sums of up to 36 inputs with coefficients up to 25 (B) and 64 (A), so
/// results differ from a direct convolution by rounding (relative 1e-6 to 1e-5 of the outputs'
/// scale); `Kernels.Precision.fp32` keeps the direct path.
public enum Winograd {
    /// Whether `Winograd.convolve` computes a layer with this geometry.
    public static func applies(kernel: (h: Int, w: Int), padding: (h: Int, w: Int), dilation: Int) -> Bool {
        kernel == (3, 3) && padding == (1, 1) && dilation == 1
    }

    /// `y = conv(x, weight) + bias` for `x` `[N, C, H, W]`, `weight` `[K, C, 3, 3]`, padding 1;
    /// `transformed`: `transformWeights(weight)`, when the caller keeps it.
    public static func convolve(_ x: Tensor, weight: Tensor, bias: Tensor?, transformed: Tensor? = nil) -> Tensor {
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3], k = weight.shape[0]
        precondition(weight.shape == [k, c, 3, 3], "Winograd.convolve: weight \(weight.shape) for \(c) input channels")
        let rows = (h + 3) / 4, cols = ((w + 3) / 4 + 7) / 8 * 8
        let t = rows * cols
        let u = transformed ?? transformWeights(weight)
        var out = Tensor(uninitialized: [n, k, h, w])
        let v = UnsafeMutablePointer<Float>.allocate(capacity: 36 * c * t)
        let m = UnsafeMutablePointer<Float>.allocate(capacity: 36 * k * t)
        defer { v.deallocate(); m.deallocate() }
        let biases = bias?.scalars
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                u.withUnsafeBufferPointer { ub in
                    for s in 0..<n {
                        let src = xb.baseAddress! + s * c * h * w
                        parallelFor(c) { ch in
                            transformInput(src + ch * h * w, h: h, w: w, rows: rows, cols: cols, into: v + ch * t, pointStride: c * t)
                        }
                        // 36 products, each in blocks of at most 1024 columns.
                        let pieces = (t + 1023) / 1024, block = ((t + pieces - 1) / pieces + 7) / 8 * 8
                        parallelFor(36 * pieces) { job in
                            let xi = job / pieces, j = (job % pieces) * block, width = Swift.min(block, t - j)
                            BLAS.gemm(m: k, n: width, k: c, a: ub.baseAddress! + xi * k * c, lda: c,
                                      b: v + xi * c * t + j, ldb: t, c: m + xi * k * t + j, ldc: t)
                        }
                        let dst = ob.baseAddress! + s * k * h * w
                        parallelFor(k) { o in
                            transformOutput(m + o * t, pointStride: k * t, rows: rows, cols: cols, bias: biases?[o] ?? 0,
                                            into: dst + o * h * w, h: h, w: w)
                        }
                    }
                }
            }
        }
        return out
    }

    // MARK: the transforms

    /// Bᵀ z for a 6-vector z (eight blocks at a time).
    @inline(__always)
    static func inputRows(_ z: inout (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)) {
        let (z0, z1, z2, z3, z4, z5) = z
        let a = z4 - 4 * z2, b = z3 - 4 * z1, c2 = z4 - z2, d = 2 * (z3 - z1)
        z = (4 * z0 - 5 * z2 + z4, a + b, a - b, c2 + d, c2 - d, 4 * z1 - 5 * z3 + z5)
    }

    /// Aᵀ m for a 6-vector m: four outputs.
    @inline(__always)
    static func outputRows(_ m0: SIMD8<Float>, _ m1: SIMD8<Float>, _ m2: SIMD8<Float>, _ m3: SIMD8<Float>, _ m4: SIMD8<Float>,
                           _ m5: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let p = m1 + m2, q = m1 - m2, r = m3 + m4, s = m3 - m4
        return (m0 + p + r, q + 2 * s, p + 4 * r, q + 8 * s + m5)
    }

    /// The transformed input blocks of one channel plane: `v[ξ · pointStride + i · cols + j]` for
    /// block (i, j) (blocks past the plane's right edge are zeros).
    static func transformInput(_ x: UnsafePointer<Float>, h: Int, w: Int, rows: Int, cols: Int,
                               into v: UnsafeMutablePointer<Float>, pointStride: Int) {
        // Each input row split into its four phases: phase p, entry q holds x[4q + p − 1]
        // (zero outside the row), so column s of blocks j ..< j + 8 is one contiguous load.
        let span = cols + 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 6 * 4 * span) { buffer in
          withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 36) { scratch in
            let ph = buffer.baseAddress!, e = scratch.baseAddress!
            // Entries outside the row stay zero: every row writes the same entries.
            ph.update(repeating: 0, count: 6 * 4 * span)
            for i in 0..<rows {
                for r in 0..<6 {
                    let y = 4 * i + r - 1, base = ph + r * 4 * span
                    guard y >= 0 && y < h else { base.update(repeating: 0, count: 4 * span); continue }
                    let row = x + y * w
                    for xx in 0..<w {
                        let at = xx + 1  // x[at − 1] is phase at mod 4, entry at / 4
                        base[(at & 3) * span + (at >> 2)] = row[xx]
                    }
                }
                var j = 0
                while j < cols {
                    @inline(__always) func load(_ r: Int, _ s: Int) -> SIMD8<Float> {
                        UnsafeRawPointer(ph + (r * 4 + (s & 3)) * span + j + (s >> 2)).loadUnaligned(as: SIMD8<Float>.self)
                    }
                    // Columns first: e[a][s] = Σ_r Bᵀ[a][r] d[r][s].
                    for s in 0..<6 {
                        var z = (load(0, s), load(1, s), load(2, s), load(3, s), load(4, s), load(5, s))
                        inputRows(&z)
                        e[s] = z.0; e[6 + s] = z.1; e[12 + s] = z.2; e[18 + s] = z.3; e[24 + s] = z.4; e[30 + s] = z.5
                    }
                    let at = i * cols + j
                    for a in 0..<6 {
                        var z = (e[6 * a], e[6 * a + 1], e[6 * a + 2], e[6 * a + 3], e[6 * a + 4], e[6 * a + 5])
                        inputRows(&z)
                        let p = v + (6 * a) * pointStride + at
                        UnsafeMutableRawPointer(p).storeBytes(of: z.0, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(p + pointStride).storeBytes(of: z.1, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(p + 2 * pointStride).storeBytes(of: z.2, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(p + 3 * pointStride).storeBytes(of: z.3, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(p + 4 * pointStride).storeBytes(of: z.4, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(p + 5 * pointStride).storeBytes(of: z.5, as: SIMD8<Float>.self)
                    }
                    j += 8
                }
            }
          }
        }
    }

    /// One output channel's plane from its products `m[ξ · pointStride + i · cols + j]`.
    static func transformOutput(_ m: UnsafePointer<Float>, pointStride: Int, rows: Int, cols: Int, bias: Float,
                                into y: UnsafeMutablePointer<Float>, h: Int, w: Int) {
        // Output row a of a block row in phases: phase b, entry q is column 4q + b.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 * cols) { buffer in
          withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 24) { scratch in
            let ph = buffer.baseAddress!, f = scratch.baseAddress!
            let b8 = SIMD8<Float>(repeating: bias)
            for i in 0..<rows {
                var j = 0
                while j < cols {
                    @inline(__always) func load(_ xi: Int) -> SIMD8<Float> {
                        UnsafeRawPointer(m + xi * pointStride + i * cols + j).loadUnaligned(as: SIMD8<Float>.self)
                    }
                    // Rows of the 6x6 block first (over b), then columns (over a).
                    for a in 0..<6 {
                        let o = outputRows(load(6 * a), load(6 * a + 1), load(6 * a + 2), load(6 * a + 3), load(6 * a + 4), load(6 * a + 5))
                        f[a] = o.0; f[6 + a] = o.1; f[12 + a] = o.2; f[18 + a] = o.3
                    }
                    for b in 0..<4 {
                        let o = outputRows(f[6 * b], f[6 * b + 1], f[6 * b + 2], f[6 * b + 3], f[6 * b + 4], f[6 * b + 5])
                        UnsafeMutableRawPointer(ph + (0 * 4 + b) * cols + j).storeBytes(of: o.0 + b8, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(ph + (1 * 4 + b) * cols + j).storeBytes(of: o.1 + b8, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(ph + (2 * 4 + b) * cols + j).storeBytes(of: o.2 + b8, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(ph + (3 * 4 + b) * cols + j).storeBytes(of: o.3 + b8, as: SIMD8<Float>.self)
                    }
                    j += 8
                }
                for a in 0..<4 {
                    let yy = 4 * i + a
                    guard yy < h else { break }
                    let row = y + yy * w, base = ph + a * 4 * cols
                    for xx in 0..<w { row[xx] = base[(xx & 3) * cols + (xx >> 2)] }
                }
            }
          }
        }
    }

    /// `U[ξ][k][c] = (G g Gᵀ)[ξ]` for weights `[K, C, 3, 3]`: `[36, K, C]`.
    public static func transformWeights(_ weight: Tensor) -> Tensor {
        let k = weight.shape[0], c = weight.shape[1]
        return Tensor(uninitializedShape: [36, k, c]) { ub in
            weight.withUnsafeBufferPointer { wb in
                let u = ub.baseAddress!, g = wb.baseAddress!
                parallelChunks(k * c, minChunk: 256) { range in
                    for kc in range {
                        let f = g + kc * 9
                        // G (6x3) applied to the columns, then to the rows.
                        let c0 = gRows(f[0], f[3], f[6]), c1 = gRows(f[1], f[4], f[7]), c2 = gRows(f[2], f[5], f[8])
                        for a in 0..<6 {
                            let r = gRows(c0[a], c1[a], c2[a])
                            for b in 0..<6 { u[(a * 6 + b) * k * c + kc] = r[b] }
                        }
                    }
                }
            }
        }
    }

    /// G g for a 3-vector g.
    @inline(__always)
    static func gRows(_ g0: Float, _ g1: Float, _ g2: Float) -> SIMD8<Float> {
        SIMD8(g0 / 4, -(g0 + g1 + g2) / 6, -(g0 - g1 + g2) / 6, g0 / 24 + g1 / 12 + g2 / 6, g0 / 24 - g1 / 12 + g2 / 6, g2, 0, 0)
    }
}
