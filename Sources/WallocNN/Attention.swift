import Synchronization
import WallocTensor

/// A fully connected layer, `y = W x + b` with `W` of shape `[out, in]`, applied to the channel
/// dimension of `[N, in, P]` data.
public struct Linear: Module {
    public var weight: Tensor
    public var bias: Tensor?

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true, initializer: inout ParameterInitializer) {
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = initializer.uniform([outFeatures, inFeatures], bound: bound)
        self.bias = bias ? initializer.uniform([outFeatures], bound: bound) : nil
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try body(key(prefix, "weight"), &weight)
        if bias != nil { try body(key(prefix, "bias"), &bias!) }
    }
}

/// Single-head self-attention over the spatial positions of `[N, C, H, W]`, as in the mid-block
/// of diffusers' VAE (`Attention` with `_from_deprecated_attn_block`, heads = 1): group norm,
/// query/key/value projections, softmax(QᵀK/√C), output projection, residual connection.
///
/// Queries are processed in blocks so that memory stays bounded (a block of scores is at most
/// about 32 MB) for any image size; every product runs in BLAS.
public struct SpatialSelfAttention: Module {
    public var groupNorm: GroupNorm
    public var toQ: Linear, toK: Linear, toV: Linear, toOut: Linear
    /// `[3C, C]` stacked projections with the 1/√C scale folded into the query rows, and biases.
    private var qkvWeight = Tensor(zeros: [0]), qkvBias = Tensor(zeros: [0])
    /// bfloat16 copies of the stacked and output projections, for decoding at bf16.
    private var qkvWeightBF16 = [UInt16](), outWeightBF16 = [UInt16]()

    public init(channels: Int, groups: Int, eps: Float = 1e-6, initializer: inout ParameterInitializer) {
        groupNorm = GroupNorm(groups: groups, channels: channels, eps: eps)
        toQ = Linear(inFeatures: channels, outFeatures: channels, initializer: &initializer)
        toK = Linear(inFeatures: channels, outFeatures: channels, initializer: &initializer)
        toV = Linear(inFeatures: channels, outFeatures: channels, initializer: &initializer)
        toOut = Linear(inFeatures: channels, outFeatures: channels, initializer: &initializer)
        parametersDidChange()
    }

    public var channels: Int { groupNorm.channels }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try groupNorm.visitParameters(prefix: key(prefix, "group_norm"), body)
        try toQ.visitParameters(prefix: key(prefix, "to_q"), body)
        try toK.visitParameters(prefix: key(prefix, "to_k"), body)
        try toV.visitParameters(prefix: key(prefix, "to_v"), body)
        try toOut.visitParameters(prefix: key(prefix, "to_out.0"), body)
    }

    public mutating func parametersDidChange() {
        let c = toQ.weight.shape[0]
        let scale = 1 / Float(c).squareRoot()
        qkvWeight = Tensor(shape: [3 * c, c], scalars: toQ.weight.scalars.map { $0 * scale } + toK.weight.scalars + toV.weight.scalars)
        qkvBias = Tensor(shape: [3 * c], scalars: (toQ.bias?.scalars.map { $0 * scale } ?? [Float](repeating: 0, count: c))
                         + (toK.bias?.scalars ?? [Float](repeating: 0, count: c))
                         + (toV.bias?.scalars ?? [Float](repeating: 0, count: c)))
        qkvWeightBF16 = qkvWeight.scalars.map(BFloat16.from)
        outWeightBF16 = toOut.weight.scalars.map(BFloat16.from)
    }

    /// `c (m x p) = w (m x k) · x (k x p)`, float32 `x` and `c` (row strides `p`): in bfloat16
    /// through oneDNN when `bf16` and `wBF16` holds `w` rounded (columns of `x` in pieces over
    /// the workers, cut by shape alone), else float32 BLAS.
    private static func project(_ w: Tensor, _ wBF16: [UInt16], bf16: Bool, m: Int, k: Int, p: Int,
                                x: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>) {
        #if canImport(CDNNL)
        if bf16 && wBF16.count == m * k {
            let half = UnsafeMutablePointer<UInt16>.allocate(capacity: k * p)
            defer { half.deallocate() }
            parallelChunks(k * p, minChunk: 1 << 14) { r in BFloat16.convert(x + r.lowerBound, half + r.lowerBound, count: r.count) }
            let block = Partition.block(p, minimum: 256), pieces = (p + block - 1) / block
            let failed = Atomic<Bool>(false)
            wBF16.withUnsafeBufferPointer { wb in
                parallelFor(pieces) { i in
                    let j = i * block, n = min(block, p - j)
                    let ok = OneDNNMatmul.multiply(wb.baseAddress!, .init(rows: m, cols: k, rowStride: k, colStride: 1),
                                                   half + j, .init(rows: k, cols: n, rowStride: p, colStride: 1),
                                                   c + j, .init(rows: m, cols: n, rowStride: p, colStride: 1))
                    if !ok { failed.store(true, ordering: .relaxed) }
                }
            }
            if !failed.load(ordering: .relaxed) { return }
        }
        #endif
        w.withUnsafeBufferPointer { wb in
            BLAS.parallelGemm(m: m, n: p, k: k, a: wb.baseAddress!, lda: k, b: x, ldb: p, c: c, ldc: p)
        }
    }

    /// Query rows per block: each block's scores (`rows x positions`) stay in one core's cache
    /// while a worker computes them, exponentiates them and multiplies them into the values.
    static func blockSize(_ positions: Int) -> Int { max(16, min(positions, 128)) }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let n = x.shape[0], c = channels, p = x.count / max(1, n * c)
        let h = groupNorm(x)
        var qkv = Tensor(uninitialized: [3 * c * p])
        var attended = Tensor(uninitialized: [c * p])
        var out = Tensor(uninitialized: x.shape)
        let bf16 = SpatialSelfAttention.bf16Products
        let useKeyBlocks = !bf16 && Kernels.winograd && p > SpatialSelfAttention.keyBlock
        h.withUnsafeBufferPointer { hb in
            qkv.withUnsafeMutableBufferPointer { qb in
                attended.withUnsafeMutableBufferPointer { ab in
                        out.withUnsafeMutableBufferPointer { ob in
                            let q = qb.baseAddress!, k = q + c * p, v = k + c * p
                            let att = ab.baseAddress!
                            for sample in 0..<n {
                                SpatialSelfAttention.project(qkvWeight, qkvWeightBF16, bf16: bf16, m: 3 * c, k: c, p: p,
                                                             x: hb.baseAddress! + sample * c * p, into: q)
                                addBias(qkvBias, q, samples: 1, channels: 3 * c, length: p)
                                // bfloat16 copies of Q, K, V for the two products, when decoding at bf16.
                                let half = bf16 ? UnsafeMutablePointer<UInt16>.allocate(capacity: 3 * c * p) : nil
                                defer { half?.deallocate() }
                                if let half {
                                    parallelChunks(3 * c * p, minChunk: 1 << 14) { r in
                                        BFloat16.convert(q + r.lowerBound, half + r.lowerBound, count: r.count)
                                    }
                                }
                                if useKeyBlocks {
                                    SpatialSelfAttention.keyBlocked(q: q, k: k, v: v, att: att, c: c, p: p)
                                } else {
                                    SpatialSelfAttention.queryBlocked(q: q, k: k, v: v, half: half, att: att, c: c, p: p)
                                }
                                let dst = ob.baseAddress! + sample * c * p
                                SpatialSelfAttention.project(toOut.weight, outWeightBF16, bf16: bf16, m: c, k: c, p: p,
                                                             x: att, into: dst)
                            }
                            addBias(toOut.bias, ob.baseAddress!, samples: n, channels: c, length: p)
                            x.withUnsafeBufferPointer { xb in
                                parallelChunks(x.count, minChunk: 1 << 14) { r in
                                    VectorMath.add(xb.baseAddress! + r.lowerBound, into: ob.baseAddress! + r.lowerBound, count: r.count)
                                }
                            }
                        }
                }
            }
        }
        return out
    }

    /// The attention of every query, `att (c x p) = V · softmax(QᵀK)ᵀ`, one block of queries per
    /// task against all keys, with single-threaded GEMMs (in bfloat16 from `half`, the bfloat16
    /// copy of `[Q; K; V]`, when given and oneDNN runs them).
    static func queryBlocked(q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                             half: UnsafeMutablePointer<UInt16>?, att: UnsafeMutablePointer<Float>, c: Int, p: Int) {
        let block = blockSize(p)
        parallelFor((p + block - 1) / block) { b in
            let p0 = b * block, rows = min(block, p - p0)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * p + rows) { buf in
                let s = buf.baseAddress!, sum = s + rows * p
                if !(half.map { scores(half: $0, c: c, p: p, p0: p0, rows: rows, s: s) } ?? false) {
                    BLAS.gemm(transA: true, m: rows, n: p, k: c, a: q + p0, lda: p, b: k, ldb: p, c: s, ldc: p)
                }
                for r in 0..<rows { sum[r] = 1 / VectorMath.expShiftedRow(s + r * p, count: p) }
                if !(half.map { weighted(half: $0, c: c, p: p, p0: p0, rows: rows, s: s, att: att) } ?? false) {
                    BLAS.gemm(transB: true, m: c, n: rows, k: p, a: v, lda: p, b: s, ldb: p, c: att + p0, ldc: p)
                }
                // softmax normalisation, applied to the C x rows result instead of the rows x P scores
                for ch in 0..<c {
                    let o = att + ch * p + p0
                    for r in 0..<rows { o[r] *= sum[r] }
                }
            }
        }
    }

    /// Keys per step of `keyBlocked`, and queries per task.
    static let keyBlock = 2048, queryBlock = 512

    /// The attention of every query, `att (c x p) = V · softmax(QᵀK)ᵀ`, with the keys taken in
    /// blocks and the softmax built up as it goes (running maximum and sum, earlier partial
    /// results rescaled when the maximum grows; as in FlashAttention). Each task holds 512
    /// queries, four times as many as the plain blocks, so BLAS packs K and V a quarter as often,
    /// while its scores stay at 512 x 2048. Used with `Kernels.winograd` (fast float32) above
    /// 2048 positions; the rounding differs from the plain blocks', so `.fp32` keeps those.
    static func keyBlocked(q: UnsafeMutablePointer<Float>, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                           att: UnsafeMutablePointer<Float>, c: Int, p: Int) {
        let blocks = (p + queryBlock - 1) / queryBlock
        parallelFor(blocks) { b in
            let p0 = b * queryBlock, rows = min(queryBlock, p - p0)
            let scratch = rows * keyBlock + c * rows + 3 * rows
            withUnsafeTemporaryAllocation(of: Float.self, capacity: scratch) { buf in
                let s = buf.baseAddress!, acc = s + rows * keyBlock
                let runMax = acc + c * rows, runSum = runMax + rows, rescale = runSum + rows
                runMax.update(repeating: -.infinity, count: rows)
                runSum.update(repeating: 0, count: rows)
                var k0 = 0
                while k0 < p {
                    let kb = min(keyBlock, p - k0)
                    BLAS.gemm(transA: true, m: rows, n: kb, k: c, a: q + p0, lda: p, b: k + k0, ldb: p, c: s, ldc: kb)
                    for r in 0..<rows {
                        let row = s + r * kb
                        let m = max(runMax[r], VectorMath.maximum(row, count: kb))
                        let sum = VectorMath.expRow(row, count: kb, shift: m)
                        rescale[r] = k0 == 0 ? 0 : VectorMath.exp(runMax[r] - m)
                        runSum[r] = runSum[r] * rescale[r] + sum
                        runMax[r] = m
                    }
                    if k0 > 0 {
                        for ch in 0..<c {
                            let o = acc + ch * rows
                            for r in 0..<rows { o[r] *= rescale[r] }
                        }
                    }
                    BLAS.gemm(transB: true, m: c, n: rows, k: kb, a: v + k0, lda: p, b: s, ldb: kb,
                              beta: k0 == 0 ? 0 : 1, c: acc, ldc: rows)
                    k0 += kb
                }
                for r in 0..<rows { rescale[r] = 1 / runSum[r] }
                for ch in 0..<c {
                    let o = att + ch * p + p0, a = acc + ch * rows
                    for r in 0..<rows { o[r] = a[r] * rescale[r] }
                }
            }
        }
    }

    /// Whether the attention products run in bfloat16 (`Kernels.effectivePrecision`, with oneDNN).
    static var bf16Products: Bool {
        #if canImport(CDNNL)
        return Kernels.active && Kernels.effectivePrecision == .bf16
        #else
        return false
        #endif
    }

    /// Scores of one block of queries, `s (rows x p) = Qᵀ[p0 ..< p0 + rows] · K`, from the bfloat16
    /// copy of `[Q; K; V]` (`3c x p`); false where oneDNN cannot run it.
    static func scores(half: UnsafeMutablePointer<UInt16>, c: Int, p: Int, p0: Int, rows: Int, s: UnsafeMutablePointer<Float>) -> Bool {
        #if canImport(CDNNL)
        return OneDNNMatmul.multiply(half + p0, .init(rows: rows, cols: c, rowStride: 1, colStride: p),
                                     half + c * p, .init(rows: c, cols: p, rowStride: p, colStride: 1),
                                     s, .init(rows: rows, cols: p, rowStride: p, colStride: 1))
        #else
        return false
        #endif
    }

    /// `att[:, p0 ..< p0 + rows] = V · Pᵀ` for the block's exponentiated scores `s` (rounded to
    /// bfloat16 in a temporary buffer); false where oneDNN cannot run it.
    static func weighted(half: UnsafeMutablePointer<UInt16>, c: Int, p: Int, p0: Int, rows: Int, s: UnsafeMutablePointer<Float>,
                         att: UnsafeMutablePointer<Float>) -> Bool {
        #if canImport(CDNNL)
        return withUnsafeTemporaryAllocation(of: UInt16.self, capacity: rows * p) { pb in
            BFloat16.convert(s, pb.baseAddress!, count: rows * p)
            return OneDNNMatmul.multiply(half + 2 * c * p, .init(rows: c, cols: p, rowStride: p, colStride: 1),
                                         pb.baseAddress!, .init(rows: p, cols: rows, rowStride: 1, colStride: p),
                                         att + p0, .init(rows: c, cols: rows, rowStride: p, colStride: 1))
        }
        #else
        return false
        #endif
    }
}
