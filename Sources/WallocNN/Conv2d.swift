import WallocTensor

/// 2D convolution (stride 1, zero padding, optional dilation) on `[N, C, H, W]` tensors,
/// weights `[out, in, kh, kw]` as in PyTorch.
///
/// Computed as `kh·kw` shifted GEMMs over a zero-padded copy of the input: for kernel offset
/// `(ky, kx)` the input matrix is the padded image viewed at offset `ky·d·Wp + kx·d` with row stride
/// `Hp·Wp`, and the products accumulate into a "wide" output with `Wp` columns per row, of which
/// the last `d·(kw−1)` are discarded. No im2col buffer; every multiply runs inside BLAS.
public struct Conv2d: Module {
    public var weight: Tensor
    public var bias: Tensor?
    public let padding: (h: Int, w: Int)
    public let dilation: Int
    /// Weights reordered to `[kh·kw, out, in]`, one GEMM-ready matrix per kernel offset, made on
    /// first use (decoders on oneDNN never need them).
    public var packed: Tensor { packedCache.tensor { Conv2d.pack(weight) } }
    private var packedCache = PackedWeightCache()
    /// Winograd-transformed weights (`Winograd.transformWeights`), made on first use.
    private var winogradCache = PackedWeightCache()
    /// oneDNN primitives and weights for this layer's input shapes (`Kernels`), made on first use.
    var oneDNNCache = OneDNNConvolutionCache()

    public var outChannels: Int { weight.shape[0] }
    public var inChannels: Int { weight.shape[1] }
    public var kernel: (h: Int, w: Int) { (weight.shape[2], weight.shape[3]) }

    public init(inChannels: Int, outChannels: Int, kernelSize: Int, padding: Int = 0, dilation: Int = 1,
                bias: Bool = true, initializer: inout ParameterInitializer) {
        let fanIn = Float(inChannels * kernelSize * kernelSize)
        let bound = 1 / fanIn.squareRoot()
        weight = initializer.uniform([outChannels, inChannels, kernelSize, kernelSize], bound: bound)
        self.bias = bias ? initializer.uniform([outChannels], bound: bound) : nil
        self.padding = (padding, padding)
        self.dilation = dilation
        parametersDidChange()
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try body(key(prefix, "weight"), &weight)
        if bias != nil { try body(key(prefix, "bias"), &bias!) }
    }

    public mutating func parametersDidChange() {
        oneDNNCache = OneDNNConvolutionCache()
        packedCache = PackedWeightCache()
        winogradCache = PackedWeightCache()
    }

    private static func pack(_ weight: Tensor) -> Tensor {
        let co = weight.shape[0], ci = weight.shape[1], kk = weight.shape[2] * weight.shape[3]
        return Tensor(uninitializedShape: [kk, co, ci]) { p in
            weight.withUnsafeBufferPointer { w in
                guard let dst = p.baseAddress, let src = w.baseAddress else { return }
                parallelFor((co + 15) / 16) { block in
                    for o in (block * 16)..<min(co, block * 16 + 16) {
                        for k in 0..<kk {
                            let to = dst + (k * co + o) * ci, from = src + o * ci * kk + k
                            for i in 0..<ci { to[i] = from[i * kk] }
                        }
                    }
                }
            }
        }
    }

    /// Columns per tile of the wide output: wide enough that BLAS's packing of the weights is
    /// amortised (at least 1024 columns unless C tiles stay under 256 KB anyway), narrow enough
    /// to give threads several tiles. Measured at Nd=768: 80-column tiles 5.19 s, 512: 4.67 s.
    /// The tile depends on the shape alone (`Partition`), so results do not depend on the
    /// thread count.
    static func columnTile(rows: Int, columns: Int) -> Int {
        let byCache = max(1024, (65_536 / max(1, rows)) / 16 * 16)
        return min(byCache, Partition.block(columns))
    }

    /// Output spatial size for an input of `h x w`.
    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        (h + 2 * padding.h - dilation * (kernel.h - 1), w + 2 * padding.w - dilation * (kernel.w - 1))
    }

    /// The element type of this layer's oneDNN products on the calling thread: int8 for
    /// width-to-width 3x3 convolutions when `Kernels.int8Convolutions`, else bf16 or float32.
    var oneDNNType: ConvolutionType {
        if Kernels.int8Convolutions && kernel == (3, 3) && dilation == 1 && inChannels == outChannels { return .s8 }
        return Kernels.effectivePrecision == .bf16 ? .bf16 : .f32
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == inChannels, "Conv2d expects [N, \(inChannels), H, W], got \(x.shape)")
        let n = x.shape[0], ci = inChannels, h = x.shape[2], w = x.shape[3], co = outChannels
        let (kh, kw) = kernel, d = dilation
        let (ho, wo) = outputSize(h, w)
        precondition(ho > 0 && wo > 0, "Conv2d input \(h)x\(w) too small")
        if Kernels.winograd && Winograd.applies(kernel: kernel, padding: padding, dilation: dilation) {
            // Transformed weights are 4x the weights: kept for layers up to 16 MB of them (such
            // as the default models' 128-channel decoders), made per call for wider ones.
            let keep = 36 * ci * co * MemoryLayout<Float>.size <= 16 << 20
            return Winograd.convolve(x, weight: weight, bias: bias,
                                     transformed: keep ? winogradCache.tensor { Winograd.transformWeights(weight) } : nil)
        }
        #if canImport(CDNNL)
        if Kernels.active, let y = oneDNNForward(x, type: oneDNNType) { return y }
        #endif
        var out = Tensor(uninitialized: [n, co, ho, wo])
        if kh == 1 && kw == 1 && padding.h == 0 && padding.w == 0 {
            // Pointwise: one GEMM per sample.
            x.withUnsafeBufferPointer { xb in
                out.withUnsafeMutableBufferPointer { ob in
                    packed.withUnsafeBufferPointer { wb in
                        for s in 0..<n {
                            BLAS.parallelGemm(m: co, n: h * w, k: ci, a: wb.baseAddress!, lda: ci,
                                      b: xb.baseAddress! + s * ci * h * w, ldb: h * w,
                                      c: ob.baseAddress! + s * co * h * w, ldc: h * w)
                        }
                    }
                    addBias(bias, ob.baseAddress!, samples: n, channels: co, length: h * w)
                }
            }
            return out
        }
        let hp = h + 2 * padding.h, wp = w + 2 * padding.w
        let slack = d * (kw - 1)
        var padded = Tensor(zeros: [ci * hp * wp + slack])
        var wide = Tensor(uninitialized: [co * ho * wp])
        x.withUnsafeBufferPointer { xb in
            padded.withUnsafeMutableBufferPointer { pb in
                wide.withUnsafeMutableBufferPointer { wb in
                    out.withUnsafeMutableBufferPointer { ob in
                        packed.withUnsafeBufferPointer { kb in
                            let pad = pb.baseAddress!, wideP = wb.baseAddress!, outP = ob.baseAddress!
                            for s in 0..<n {
                                let src = xb.baseAddress! + s * ci * h * w
                                parallelFor(ci) { c in
                                    for y in 0..<h {
                                        (pad + c * hp * wp + (y + padding.h) * wp + padding.w)
                                            .update(from: src + (c * h + y) * w, count: w)
                                    }
                                }
                                // Column tiles of the wide output, each accumulating all kernel
                                // offsets while its block of C stays in cache.
                                let columns = ho * wp
                                let tile = Conv2d.columnTile(rows: co, columns: columns)
                                parallelFor((columns + tile - 1) / tile) { t in
                                    let j = t * tile, width = min(tile, columns - j)
                                    for ky in 0..<kh {
                                        for kx in 0..<kw {
                                            BLAS.gemm(m: co, n: width, k: ci,
                                                      a: kb.baseAddress! + (ky * kw + kx) * co * ci, lda: ci,
                                                      b: pad + ky * d * wp + kx * d + j, ldb: hp * wp,
                                                      beta: (ky == 0 && kx == 0) ? 0 : 1,
                                                      c: wideP + j, ldc: columns)
                                        }
                                    }
                                }
                                let dst = outP + s * co * ho * wo
                                parallelFor(co) { o in
                                    for y in 0..<ho {
                                        (dst + (o * ho + y) * wo).update(from: wideP + (o * ho + y) * wp, count: wo)
                                    }
                                }
                            }
                            addBias(bias, outP, samples: n, channels: co, length: ho * wo)
                        }
                    }
                }
            }
        }
        return out
    }
}

/// A layer's BLAS-ready weights, made on first use and shared by the layer's copies until its
/// parameters change (the layer then starts a new cache). Packing runs outside the lock; two
/// threads packing at once store the same values.
final class PackedWeightCache: Sendable {
    private let value = Locked<Tensor?>(nil)

    /// The cached tensor, or `make()`'s, cached.
    func tensor(_ make: () -> Tensor) -> Tensor {
        if let t = value.withLock({ $0 }) { return t }
        let t = make()
        value.withLock { $0 = t }
        return t
    }
}
