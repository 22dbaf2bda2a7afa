import WallocTensor

/// Weight normalisation as `torch.nn.utils.weight_norm` (dim 0): `w = g · v / ‖v‖`, the norm taken
/// over every dimension but the first. The reference stores `weight_g` and `weight_v`; the folded
/// weight is computed once when parameters change.
public struct WeightNorm: Sendable {
    public var g: Tensor
    public var v: Tensor

    public init(weight: Tensor) {
        v = weight
        let rows = weight.shape[0], inner = weight.count / max(1, rows)
        var gs = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            var s: Double = 0
            for i in 0..<inner { let x = Double(weight.scalars[r * inner + i]); s += x * x }
            gs[r] = Float(s.squareRoot())
        }
        g = Tensor(shape: [rows] + Array(repeating: 1, count: weight.rank - 1), scalars: gs)
    }

    /// `g · v / ‖v‖` row by row.
    public func folded() -> Tensor {
        let rows = v.shape[0], inner = v.count / max(1, rows)
        var w = v
        w.withUnsafeMutableBufferPointer { wb in
            g.withUnsafeBufferPointer { gb in
                for r in 0..<rows {
                    let row = wb.baseAddress! + r * inner
                    var s: Double = 0
                    for i in 0..<inner { let x = Double(row[i]); s += x * x }
                    let f = s > 0 ? Float(Double(gb[r]) / s.squareRoot()) : 0
                    for i in 0..<inner { row[i] *= f }
                }
            }
        }
        return w
    }
}

/// 1D convolution on `[N, C, L]`, weights `[out, in, k]`, with padding, dilation and stride, and
/// optional weight normalisation. Stride 1 runs as `k` shifted GEMMs over a zero-padded copy of
/// the input; other strides go through im2col.
public struct Conv1d: Module {
    /// The effective weight `[out, in, k]` (folded from `weightNorm` when that is set).
    public private(set) var weight: Tensor
    public var weightNorm: WeightNorm?
    public var bias: Tensor?
    public let stride: Int, padding: Int, dilation: Int
    /// The weight as `[k, out, in]` (one `[out, in]` matrix per kernel tap), made on first use:
    /// a model being loaded changes its parameters twice (initial, then loaded values).
    public var packed: Tensor { packedCache.tensor { Conv1d.pack(weight) } }
    private var packedCache = PackedWeightCache()

    public var outChannels: Int { weight.shape[0] }
    public var inChannels: Int { weight.shape[1] }
    public var kernelSize: Int { weight.shape[2] }

    public init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, bias: Bool = true, weightNormalized: Bool = false,
                initializer: inout ParameterInitializer) {
        let bound = 1 / Float(inChannels * kernelSize).squareRoot()
        weight = initializer.uniform([outChannels, inChannels, kernelSize], bound: bound)
        weightNorm = weightNormalized ? WeightNorm(weight: weight) : nil
        self.bias = bias ? initializer.uniform([outChannels], bound: bound) : nil
        self.stride = stride; self.padding = padding; self.dilation = dilation
        parametersDidChange()
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        if weightNorm != nil {
            try body(key(prefix, "weight_g"), &weightNorm!.g)
            try body(key(prefix, "weight_v"), &weightNorm!.v)
        } else {
            try body(key(prefix, "weight"), &weight)
        }
        if bias != nil { try body(key(prefix, "bias"), &bias!) }
    }

    public mutating func parametersDidChange() {
        if let weightNorm { weight = weightNorm.folded() }
        packedCache = PackedWeightCache()
    }

    /// `[out, in, k]` -> `[k, out, in]`, written row by row.
    private static func pack(_ weight: Tensor) -> Tensor {
        let co = weight.shape[0], ci = weight.shape[1], k = weight.shape[2]
        return Tensor(uninitializedShape: [k, co, ci]) { pb in
            weight.withUnsafeBufferPointer { wb in
                guard let dst = pb.baseAddress, let src = wb.baseAddress else { return }
                parallelFor(co) { o in
                    for j in 0..<k {
                        let to = dst + (j * co + o) * ci, from = src + o * ci * k + j
                        for i in 0..<ci { to[i] = from[i * k] }
                    }
                }
            }
        }
    }

    /// Output length for an input of length `l`.
    public func outputLength(_ l: Int) -> Int {
        (l + 2 * padding - dilation * (kernelSize - 1) - 1) / stride + 1
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3 && x.shape[1] == inChannels, "Conv1d expects [N, \(inChannels), L], got \(x.shape)")
        let n = x.shape[0], ci = inChannels, l = x.shape[2], co = outChannels, k = kernelSize, d = dilation
        let lo = outputLength(l), lp = l + 2 * padding
        precondition(lo > 0, "Conv1d input length \(l) too short")
        var out = Tensor(uninitialized: [n, co, lo])
        var padded = Tensor(zeros: [ci * lp])
        var cols = Tensor(uninitialized: stride == 1 ? [0] : [ci * k * lo])
        x.withUnsafeBufferPointer { xb in
            padded.withUnsafeMutableBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { ob in
                    let pad = pb.baseAddress!
                    for s in 0..<n {
                        let src = xb.baseAddress! + s * ci * l
                        let dst = ob.baseAddress! + s * co * lo
                        parallelFor(ci) { c in (pad + c * lp + padding).update(from: src + c * l, count: l) }
                        if stride == 1 {
                            packed.withUnsafeBufferPointer { kb in
                                // Column tiles accumulate all taps while their block of C stays in cache.
                                let tile = Conv2d.columnTile(rows: co, columns: lo)
                                parallelFor((lo + tile - 1) / tile) { t in
                                    let c0 = t * tile, width = min(tile, lo - c0)
                                    for j in 0..<k {
                                        BLAS.gemm(m: co, n: width, k: ci, a: kb.baseAddress! + j * co * ci, lda: ci,
                                                  b: pad + j * d + c0, ldb: lp, beta: j == 0 ? 0 : 1, c: dst + c0, ldc: lo)
                                    }
                                }
                            }
                        } else {
                            cols.withUnsafeMutableBufferPointer { cb in
                                let colP = cb.baseAddress!
                                parallelFor(ci * k) { r in
                                    let c = r / k, j = r % k
                                    for t in 0..<lo { colP[r * lo + t] = pad[c * lp + t * stride + j * d] }
                                }
                                weight.withUnsafeBufferPointer { wb in
                                    BLAS.parallelGemm(m: co, n: lo, k: ci * k, a: wb.baseAddress!, lda: ci * k,
                                              b: colP, ldb: lo, c: dst, ldc: lo)
                                }
                            }
                        }
                    }
                    addBias(bias, ob.baseAddress!, samples: n, channels: co, length: lo)
                }
            }
        }
        return out
    }
}

/// Transposed 1D convolution on `[N, C, L]`, weights `[in, out, k]` as in PyTorch, with stride and
/// padding (no output padding), optional weight normalisation (over the first, input dimension).
/// One GEMM per sample into columns, then an overlap-add.
public struct ConvTranspose1d: Module {
    public private(set) var weight: Tensor
    public var weightNorm: WeightNorm?
    public var bias: Tensor?
    public let stride: Int, padding: Int

    public var inChannels: Int { weight.shape[0] }
    public var outChannels: Int { weight.shape[1] }
    public var kernelSize: Int { weight.shape[2] }

    public init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, weightNormalized: Bool = false, initializer: inout ParameterInitializer) {
        let bound = 1 / Float(outChannels * kernelSize).squareRoot()
        weight = initializer.uniform([inChannels, outChannels, kernelSize], bound: bound)
        weightNorm = weightNormalized ? WeightNorm(weight: weight) : nil
        self.bias = bias ? initializer.uniform([outChannels], bound: bound) : nil
        self.stride = stride; self.padding = padding
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        if weightNorm != nil {
            try body(key(prefix, "weight_g"), &weightNorm!.g)
            try body(key(prefix, "weight_v"), &weightNorm!.v)
        } else {
            try body(key(prefix, "weight"), &weight)
        }
        if bias != nil { try body(key(prefix, "bias"), &bias!) }
    }

    public mutating func parametersDidChange() {
        if let weightNorm { weight = weightNorm.folded() }
    }

    public func outputLength(_ l: Int) -> Int { (l - 1) * stride - 2 * padding + kernelSize }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3 && x.shape[1] == inChannels, "ConvTranspose1d expects [N, \(inChannels), L], got \(x.shape)")
        let n = x.shape[0], ci = inChannels, l = x.shape[2], co = outChannels, k = kernelSize
        let lo = outputLength(l)
        precondition(lo > 0, "ConvTranspose1d input length \(l) too short")
        var out = Tensor(zeros: [n, co, lo])
        var cols = Tensor(zeros: [co * k * l])
        x.withUnsafeBufferPointer { xb in
            cols.withUnsafeMutableBufferPointer { cb in
                out.withUnsafeMutableBufferPointer { ob in
                    weight.withUnsafeBufferPointer { wb in
                        let colP = cb.baseAddress!
                        for s in 0..<n {
                            BLAS.parallelGemm(transA: true, m: co * k, n: l, k: ci, a: wb.baseAddress!, lda: co * k,
                                      b: xb.baseAddress! + s * ci * l, ldb: l, c: colP, ldc: l)
                            let dst = ob.baseAddress! + s * co * lo
                            parallelFor(co) { o in
                                let row = dst + o * lo
                                for j in 0..<k {
                                    let src = colP + (o * k + j) * l
                                    // t = i * stride + j - padding
                                    for i in 0..<l {
                                        let t = i * stride + j - padding
                                        if t >= 0 && t < lo { row[t] += src[i] }
                                    }
                                }
                            }
                        }
                    }
                    addBias(bias, ob.baseAddress!, samples: n, channels: co, length: lo)
                }
            }
        }
        return out
    }
}

/// Adds a per-channel bias to `[samples, channels, length]` data in place.
func addBias(_ bias: Tensor?, _ p: UnsafeMutablePointer<Float>, samples: Int, channels: Int, length: Int) {
    guard let bias else { return }
    bias.withUnsafeBufferPointer { bb in
        parallelFor(samples * channels) { i in
            let b = bb[i % channels]
            VectorMath.map(p + i * length, count: length) { $0 + b }
        }
    }
}
