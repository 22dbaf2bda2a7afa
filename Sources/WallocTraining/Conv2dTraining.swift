import Synchronization
import WallocNN
import WallocTensor

/// What `Conv2d.backward` needs: the layer's input.
public struct Conv2dTape: Sendable {
    let input: Tensor
}

/// Column matrices ("im2col") of a stride-1 convolution over `[N, C, H, W]`, built one tile
/// (a band of output rows of one sample) at a time:
/// `col[(c·kh + ky)·kw + kx, (y − y0)·Wo + x] = x[s, c, y − ph + d·ky, x − pw + d·kx]`, zero
/// outside the image. Row `(c, ky, kx)` lines up with column `(c·kh + ky)·kw + kx` of PyTorch's
/// `[out, in, kh, kw]` weights, so a tile of the convolution is one GEMM with `k = C·kh·kw`.
/// Tiles are at most about 2 MB, so a tile is still in cache when BLAS reads it. Negative padding
/// (a crop) is allowed: the input gradient uses it when `padding > d·(k − 1)`.
struct ColumnLayout {
    let n, c, h, w, kh, kw, d, ph, pw: Int
    var ho: Int { h + 2 * ph - d * (kh - 1) }
    var wo: Int { w + 2 * pw - d * (kw - 1) }
    /// Positions per sample.
    var positions: Int { ho * wo }
    /// Rows of the column matrix (the GEMM's `k`).
    var rows: Int { c * kh * kw }

    /// Tiles per sample: enough to keep tiles under 2^19 floats and to give a small batch four
    /// tasks. Depends on the shape only, so results do not depend on the thread count.
    var tilesPerSample: Int {
        let bySize = (rows * positions + (1 << 19) - 1) >> 19
        return max(1, min(ho, max(bySize, (4 + n - 1) / max(1, n))))
    }

    /// Output rows `y0..<y1` of tile `t` (of `tilesPerSample`).
    func tileRows(_ t: Int) -> Range<Int> {
        let tiles = tilesPerSample
        return (t * ho / tiles)..<((t + 1) * ho / tiles)
    }

    /// Writes the column matrix of sample `s`, output rows `band`, to `col` (row stride
    /// `band.count·Wo`). Each channel is first zero-padded into a small scratch plane, then every
    /// kernel offset copies rows of `Wo` values out of it.
    func fill(_ x: UnsafePointer<Float>, sample s: Int, rows band: Range<Int>, into col: UnsafeMutablePointer<Float>) {
        columns(x, sample: s, rows: band, into: col) { pad, _ in UnsafePointer(pad) }
    }

    /// `fill` in bfloat16: each zero-padded channel plane is rounded once, then copied out.
    func fill16(_ x: UnsafePointer<Float>, sample s: Int, rows band: Range<Int>, into col: UnsafeMutablePointer<UInt16>) {
        let planeSize = (band.count + d * (kh - 1)) * (wo + d * (kw - 1))
        withUnsafeTemporaryAllocation(of: UInt16.self, capacity: planeSize) { rounded in
            columns(x, sample: s, rows: band, into: col) { pad, count in
                BFloat16.convert(pad, rounded.baseAddress!, count: count)
                return UnsafePointer(rounded.baseAddress!)
            }
        }
    }

    /// The column matrix in `T`: `plane(pad, count)` turns each zero-padded float32 plane into the
    /// values copied out per kernel offset.
    private func columns<T>(_ x: UnsafePointer<Float>, sample s: Int, rows band: Range<Int>, into col: UnsafeMutablePointer<T>,
                            plane: (UnsafeMutablePointer<Float>, Int) -> UnsafePointer<T>) {
        let wo = wo, ld = band.count * wo
        let wp = wo + d * (kw - 1), rowsIn = band.count + d * (kh - 1)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rowsIn * wp) { scratch in
            let pad = scratch.baseAddress!
            for ch in 0..<c {
                padPlane(x + (s * c + ch) * h * w, rows: band, into: pad)
                let values = plane(pad, rowsIn * wp)
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let row = col + ((ch * kh + ky) * kw + kx) * ld
                        let origin = values + d * ky * wp + d * kx
                        for y in 0..<band.count { ColumnLayout.copy(row + y * wo, origin + y * wp, count: wo) }
                    }
                }
            }
        }
    }

    /// The input rows output rows `band` read from `plane` (`h x w`), zero-padded to
    /// `(band.count + d·(kh − 1)) x (Wo + d·(kw − 1))` in `pad`.
    private func padPlane(_ plane: UnsafePointer<Float>, rows band: Range<Int>, into pad: UnsafeMutablePointer<Float>) {
        let wp = wo + d * (kw - 1), rowsIn = band.count + d * (kh - 1)
        let q0 = min(wp, max(0, pw)), q1 = max(q0, min(wp, pw + w))
        for r in 0..<rowsIn {
            let dst = pad + r * wp, sy = band.lowerBound - ph + r
            if sy < 0 || sy >= h || q1 == q0 {
                dst.update(repeating: 0, count: wp)
                continue
            }
            for q in 0..<q0 { dst[q] = 0 }
            ColumnLayout.copy(dst + q0, plane + sy * w + (q0 - pw), count: q1 - q0)
            for q in q1..<wp { dst[q] = 0 }
        }
    }

    /// `count` values from `src` to `dst` (short rows: vector moves, no call).
    @inline(__always)
    static func copy<T>(_ dst: UnsafeMutablePointer<T>, _ src: UnsafePointer<T>, count: Int) {
        let d = UnsafeMutableRawPointer(dst), s = UnsafeRawPointer(src), bytes = count * MemoryLayout<T>.stride
        var i = 0
        while i + 64 <= bytes {
            (d + i).storeBytes(of: (s + i).loadUnaligned(as: SIMD64<UInt8>.self), as: SIMD64<UInt8>.self)
            i += 64
        }
        if i + 32 <= bytes {
            (d + i).storeBytes(of: (s + i).loadUnaligned(as: SIMD32<UInt8>.self), as: SIMD32<UInt8>.self)
            i += 32
        }
        if i + 16 <= bytes {
            (d + i).storeBytes(of: (s + i).loadUnaligned(as: SIMD16<UInt8>.self), as: SIMD16<UInt8>.self)
            i += 16
        }
        while i + 4 <= bytes { (d + i).storeBytes(of: (s + i).loadUnaligned(as: UInt32.self), as: UInt32.self); i += 4 }
        while i < bytes { (d + i).storeBytes(of: (s + i).load(as: UInt8.self), as: UInt8.self); i += 1 }
    }

    /// Tiles in the whole batch.
    var tileCount: Int { n * tilesPerSample }

    /// Whether tiles are `x` itself (1x1 kernel, no padding): no column matrix is built.
    var isPointwise: Bool { kh == 1 && kw == 1 && ph == 0 && pw == 0 }

    /// Floats a scratch buffer needs to hold any tile's column matrix.
    var tileCapacity: Int { rows * ((ho + tilesPerSample - 1) / tilesPerSample) * wo }

    /// Calls `body(sample, rows, col, ld)` with tile `t` (sample `t / tilesPerSample`): its column
    /// matrix, built in `scratch` (`tileCapacity` floats), or for a pointwise layout `x` itself;
    /// `ld` is the row stride of `col`.
    func withTile(_ x: UnsafePointer<Float>, _ t: Int, scratch: UnsafeMutablePointer<Float>?,
                  _ body: (_ sample: Int, _ rows: Range<Int>, _ col: UnsafePointer<Float>, _ ld: Int) -> Void) {
        let s = t / tilesPerSample, band = tileRows(t % tilesPerSample)
        guard let scratch, !isPointwise else {
            body(s, band, x + s * c * positions + band.lowerBound * wo, positions)
            return
        }
        fill(x, sample: s, rows: band, into: scratch)
        body(s, band, scratch, band.count * wo)
    }

    /// Runs `body(scratch)` with a scratch buffer for tiles (nil for a pointwise layout), so
    /// that a worker reuses one buffer, still in cache, for all its tiles.
    func withScratch(_ body: (UnsafeMutablePointer<Float>?) -> Void) {
        if isPointwise { body(nil); return }
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tileCapacity)
        defer { scratch.deallocate() }
        body(scratch)
    }

    /// Calls `body` for every tile, spread over the workers (each takes the next tile, so the
    /// result does not depend on which worker computes which tile).
    func forEachTile(_ x: UnsafePointer<Float>,
                     _ body: (_ sample: Int, _ rows: Range<Int>, _ col: UnsafePointer<Float>, _ ld: Int) -> Void) {
        let tiles = tileCount
        let next = TileCounter()
        parallelFor(min(tiles, Threading.count)) { _ in
            withScratch { scratch in
                while true {
                    let t = next.take()
                    if t >= tiles { break }
                    withTile(x, t, scratch: scratch, body)
                }
            }
        }
    }

    /// `forEachTile` with bfloat16 column matrices (`fill16`; pointwise layouts too).
    func forEachTile16(_ x: UnsafePointer<Float>,
                       _ body: (_ sample: Int, _ rows: Range<Int>, _ col: UnsafePointer<UInt16>, _ ld: Int) -> Void) {
        let tiles = tileCount
        let next = TileCounter()
        parallelFor(min(tiles, Threading.count)) { _ in
            let scratch = UnsafeMutablePointer<UInt16>.allocate(capacity: tileCapacity)
            defer { scratch.deallocate() }
            while true {
                let t = next.take()
                if t >= tiles { break }
                let s = t / tilesPerSample, band = tileRows(t % tilesPerSample)
                fill16(x, sample: s, rows: band, into: scratch)
                body(s, band, scratch, band.count * wo)
            }
        }
    }
}

/// A shared counter handing out tile indices.
final class TileCounter: Sendable {
    private let value = Atomic<Int>(0)
    func take() -> Int { value.add(1, ordering: .relaxed).oldValue }
}

extension Conv2d {
    func columnLayout(_ x: Tensor) -> ColumnLayout {
        ColumnLayout(n: x.shape[0], c: inChannels, h: x.shape[2], w: x.shape[3], kh: kernel.h, kw: kernel.w,
                     d: dilation, ph: padding.h, pw: padding.w)
    }

    /// `out[s] = A · col_s (+ bias)` for every tile of `layout` over `x`: `A` is `[m, layout.rows]`
    /// and `out` is `[N, m, Ho, Wo]`. In bfloat16 when the calling thread `trainsInBF16`.
    static func convolve(_ layout: ColumnLayout, _ x: UnsafePointer<Float>, a: UnsafePointer<Float>, m: Int,
                         bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>) {
        let p = layout.positions, wo = layout.wo, k = layout.rows
        func addBias(_ c: UnsafeMutablePointer<Float>, _ cols: Int) {
            guard let bias else { return }
            for o in 0..<m {
                let row = c + o * p, v = bias[o]
                for i in 0..<cols { row[i] += v }
            }
        }
        if Kernels.trainsInBF16 {
            let a16 = UnsafeMutablePointer<UInt16>.allocate(capacity: m * k)
            defer { a16.deallocate() }
            BFloat16.convert(a, a16, count: m * k)
            layout.forEachTile16(x) { s, band, col, ld in
                let c = out + s * m * p + band.lowerBound * wo, cols = band.count * wo
                Kernels.gemmBF16(m: m, n: cols, k: k, a: a16, lda: k, b: col, ldb: ld, accumulate: false, c: c, ldc: p)
                addBias(c, cols)
            }
            return
        }
        layout.forEachTile(x) { s, band, col, ld in
            let c = out + s * m * p + band.lowerBound * wo, cols = band.count * wo
            BLAS.gemm(m: m, n: cols, k: k, a: a, lda: k, b: col, ldb: ld, c: c, ldc: p)
            addBias(c, cols)
        }
    }
    /// Training forward pass: the same result as `callAsFunction`, computed as one GEMM per tile
    /// of the column matrix (`k = in·kh·kw`), plus the tape for `backward`.
    public func forward(training x: Tensor) -> (Tensor, Conv2dTape) {
        precondition(x.rank == 4 && x.shape[1] == inChannels, "Conv2d expects [N, \(inChannels), H, W], got \(x.shape)")
        let g = columnLayout(x)
        precondition(g.ho > 0 && g.wo > 0, "Conv2d input \(g.h)x\(g.w) too small")
        var out = Tensor(uninitialized: [g.n, outChannels, g.ho, g.wo])
        let biasValues = bias ?? Tensor(zeros: [1])
        x.withUnsafeBufferPointer { xb in
            weight.withUnsafeBufferPointer { wb in
                biasValues.withUnsafeBufferPointer { bb in
                    out.withUnsafeMutableBufferPointer { ob in
                        Conv2d.convolve(g, xb.baseAddress!, a: wb.baseAddress!, m: outChannels,
                                        bias: bias == nil ? nil : bb.baseAddress!, out: ob.baseAddress!)
                    }
                }
            }
        }
        return (out, Conv2dTape(input: x))
    }

    /// Backward pass: adds `weight` (and `bias`) gradients under `prefix` and returns the input
    /// gradient (an empty tensor when `inputGradient` is false).
    public func backward(_ tape: Conv2dTape, _ gradOutput: Tensor, prefix: String, into gradients: inout Gradients,
                         inputGradient: Bool = true) -> Tensor {
        let x = tape.input
        let g = columnLayout(x)
        let co = outChannels, ci = inChannels, p = g.positions
        precondition(gradOutput.shape == [g.n, co, g.ho, g.wo], "Conv2d gradient shape \(gradOutput.shape)")
        if bias != nil {
            var biasGrad = Tensor(zeros: [co])
            gradOutput.withUnsafeBufferPointer { gb in
                biasGrad.withUnsafeMutableBufferPointer { bb in
                    let src = gb.baseAddress!, dst = bb.baseAddress!
                    parallelFor(co) { o in
                        var sum: Float = 0
                        for s in 0..<g.n { sum += VectorMath.sum(src + (s * co + o) * p, count: p) }
                        dst[o] = sum
                    }
                }
            }
            gradients.accumulate(key(prefix, "bias"), biasGrad)
        }
        gradients.accumulate(key(prefix, "weight"), weightGradient(g, x, gradOutput))
        guard inputGradient else { return Tensor(zeros: [0]) }
        // Input gradient: the convolution of G with the flipped, transposed kernel
        // (`W'[i, o, ky, kx] = W[o, i, kh−1−ky, kw−1−kx]`) and padding `d·(k−1) − p`.
        let (kh, kw) = kernel, kk = kh * kw
        var flipped = Tensor(uninitialized: [ci, co * kk])
        weight.withUnsafeBufferPointer { wb in
            flipped.withUnsafeMutableBufferPointer { fb in
                let src = wb.baseAddress!, dst = fb.baseAddress!
                // 16 x 16 blocks of (in, out): reads and writes stay within a few KB.
                parallelFor((ci + 15) / 16) { block in
                    let i0 = block * 16, i1 = min(ci, i0 + 16)
                    for o0 in stride(from: 0, to: co, by: 16) {
                        for o in o0..<min(co, o0 + 16) {
                            for i in i0..<i1 {
                                let from = src + (o * ci + i) * kk, to = dst + (i * co + o) * kk + kk - 1
                                for k in 0..<kk { to[-k] = from[k] }
                            }
                        }
                    }
                }
            }
        }
        let gl = ColumnLayout(n: g.n, c: co, h: g.ho, w: g.wo, kh: kh, kw: kw, d: dilation,
                              ph: dilation * (kh - 1) - padding.h, pw: dilation * (kw - 1) - padding.w)
        var dx = Tensor(uninitialized: x.shape)
        gradOutput.withUnsafeBufferPointer { gb in
            flipped.withUnsafeBufferPointer { fb in
                dx.withUnsafeMutableBufferPointer { xb in
                    Conv2d.convolve(gl, gb.baseAddress!, a: fb.baseAddress!, m: ci, bias: nil, out: xb.baseAddress!)
                }
            }
        }
        return dx
    }

    /// `dW = Σ_tiles G_tile · col_tileᵀ` (`[out, in·kh·kw]`, PyTorch's weight layout). The tiles
    /// are split into at most four contiguous groups (by shape only, so the result does not depend
    /// on the thread count), each summed in order into its own buffer; the groups are added last.
    func weightGradient(_ g: ColumnLayout, _ x: Tensor, _ gradOutput: Tensor) -> Tensor {
        let co = outChannels, k = g.rows, p = g.positions, wo = g.wo
        let tiles = g.tileCount, groups = max(1, min(4, tiles)), size = co * k, bf16 = Kernels.trainsInBF16
        var partial = Tensor(uninitialized: [groups, co, k])
        // bfloat16: the output gradient rounded once (the column matrices per tile, by fill16).
        let grad16 = bf16 ? UnsafeMutablePointer<UInt16>.allocate(capacity: gradOutput.count) : nil
        defer { grad16?.deallocate() }
        if let grad16 { gradOutput.withUnsafeBufferPointer { BFloat16.convert($0.baseAddress!, grad16, count: $0.count) } }
        x.withUnsafeBufferPointer { xb in
            gradOutput.withUnsafeBufferPointer { gb in
                partial.withUnsafeMutableBufferPointer { pb in
                    let dw = pb.baseAddress!, grad = gb.baseAddress!
                    parallelFor(groups) { group in
                        let c = dw + group * size
                        let first = group * tiles / groups, end = (group + 1) * tiles / groups
                        if let grad16 {
                            let col = UnsafeMutablePointer<UInt16>.allocate(capacity: g.tileCapacity)
                            defer { col.deallocate() }
                            for t in first..<end {
                                let s = t / g.tilesPerSample, band = g.tileRows(t % g.tilesPerSample)
                                g.fill16(xb.baseAddress!, sample: s, rows: band, into: col)
                                Kernels.gemmBF16(transB: true, m: co, n: k, k: band.count * wo,
                                                 a: grad16 + s * co * p + band.lowerBound * wo, lda: p,
                                                 b: col, ldb: band.count * wo, accumulate: t != first, c: c, ldc: k)
                            }
                            return
                        }
                        g.withScratch { scratch in
                            for t in first..<end {
                                g.withTile(xb.baseAddress!, t, scratch: scratch) { s, band, col, ld in
                                    BLAS.gemm(transB: true, m: co, n: k, k: band.count * wo,
                                              a: grad + s * co * p + band.lowerBound * wo, lda: p,
                                              b: col, ldb: ld, beta: t == first ? 0 : 1, c: c, ldc: k)
                                }
                            }
                        }
                    }
                    for group in 1..<groups { VectorMath.add(dw + group * size, into: dw, count: size) }
                }
            }
        }
        if groups == 1 { return partial.reshaped(weight.shape) }
        var dWeight = Tensor(uninitialized: weight.shape)
        partial.withUnsafeBufferPointer { pb in
            dWeight.withUnsafeMutableBufferPointer { db in db.baseAddress!.update(from: pb.baseAddress!, count: size) }
        }
        return dWeight
    }
}
