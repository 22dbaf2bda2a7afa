import WallocTensor
#if canImport(CDNNL)
import CDNNL

/// bfloat16 matrix products through oneDNN's matmul (float32 accumulation and output), for the
/// attention of `SpatialSelfAttention` when `Kernels.effectivePrecision` is `.bf16`. Matrices are
/// given by their strides, so transposed views need no copies. Runs on the calling thread.
enum OneDNNMatmul {
    /// A strided `rows x cols` matrix.
    struct Layout: Hashable {
        let rows, cols, rowStride, colStride: Int
    }

    private struct Key: Hashable {
        let a: Layout, b: Layout, c: Layout
    }

    private final class Primitive: @unchecked Sendable {
        let primitive: dnnl_primitive_t
        /// Read-only after creation (shared by threads); executions pass copies.
        let a: dnnl_memory_desc_t, b: dnnl_memory_desc_t, c: dnnl_memory_desc_t
        init?(_ key: Key, engine: dnnl_engine_t) {
            var a = OneDNNMatmul.descriptor(key.a, dnnl_bf16)
            var b = OneDNNMatmul.descriptor(key.b, dnnl_bf16)
            var c = OneDNNMatmul.descriptor(key.c, dnnl_f32)
            self.a = a; self.b = b; self.c = c
            var md = dnnl_matmul_desc_t()
            guard dnnl_matmul_desc_init(&md, &a, &b, nil, &c) == dnnl_success else { return nil }
            var pd: dnnl_primitive_desc_t?, p: dnnl_primitive_t?
            OneDNN.singleThreaded()
            guard dnnl_primitive_desc_create(&pd, &md, OneDNN.attributes, engine, nil) == dnnl_success, let pd else { return nil }
            defer { dnnl_primitive_desc_destroy(pd) }
            guard dnnl_primitive_create(&p, pd) == dnnl_success, let p else { return nil }
            primitive = p
        }
        deinit { dnnl_primitive_destroy(primitive) }
    }

    private static let cache = Locked<[Key: Primitive?]>([:])

    static func descriptor(_ l: Layout, _ type: dnnl_data_type_t) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        _ = dnnl_memory_desc_init_by_strides(&md, 2, [Int64(l.rows), Int64(l.cols)], type, [Int64(l.rowStride), Int64(l.colStride)])
        return md
    }

    /// `C (m x n, float32) = A (m x k) · B (k x n)`, A and B in bfloat16; false where oneDNN
    /// cannot run it.
    static func multiply(_ a: UnsafePointer<UInt16>, _ la: Layout, _ b: UnsafePointer<UInt16>, _ lb: Layout,
                         _ c: UnsafeMutablePointer<Float>, _ lc: Layout) -> Bool {
        guard let engine = OneDNN.engine else { return false }
        let key = Key(a: la, b: lb, c: lc)
        let made = cache.withLock { table -> Primitive? in
            if let p = table[key] { return p }
            let p = Primitive(key, engine: engine)
            table[key] = .some(p)
            return p
        }
        guard let made else { return false }
        var ma: dnnl_memory_t?, mb: dnnl_memory_t?, mc: dnnl_memory_t?
        defer { for m in [ma, mb, mc] { if let m { dnnl_memory_destroy(m) } } }
        var da = made.a, db = made.b, dc = made.c
        guard dnnl_memory_create(&ma, &da, engine, UnsafeMutableRawPointer(mutating: a)) == dnnl_success, let ma,
              dnnl_memory_create(&mb, &db, engine, UnsafeMutableRawPointer(mutating: b)) == dnnl_success, let mb,
              dnnl_memory_create(&mc, &dc, engine, c) == dnnl_success, let mc else { return false }
        return OneDNNCall.run(made.primitive, [(argSrc, ma), (argWeights, mb), (argDst, mc)])
    }
}
#endif

/// float32 <-> bfloat16 (to bfloat16: round to nearest even; NaN stays NaN).
public enum BFloat16 {
    @inline(__always) public static func from(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(bits >> 16) | 0x40 }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    /// bfloat16 -> float32 (exact).
    @inline(__always) public static func float(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// Converts `count` floats.
    public static func convert(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
        var i = 0
        while i + 16 <= count {
            let v = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<UInt32>.self)
            let r = (v &+ 0x7FFF &+ ((v &>> 16) & 1)) &>> 16
            UnsafeMutableRawPointer(dst + i).storeBytes(of: SIMD16<UInt16>(truncatingIfNeeded: r), as: SIMD16<UInt16>.self)
            i += 16
        }
        while i < count { dst[i] = from(src[i]); i += 1 }
    }
}

extension Kernels {
    /// `C = op(A) · op(B) + beta · C` for training passes (row-major; `op(A)` is `m x k`,
    /// `op(B)` is `k x n`; `lda`, `ldb`, `ldc` are row strides as stored; `beta` 0 or 1): float32
    /// BLAS, or, when `bf16` (the caller's `trainsInBF16`), `gemmBF16` on bfloat16 copies of `A`
    /// and `B`. Runs on the calling thread.
    public static func gemm(bf16: Bool, transB: Bool = false, m: Int, n: Int, k: Int,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard bf16, m > 0, n > 0, k > 0, beta == 0 || beta == 1 else {
            BLAS.gemm(transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        let (rowsB, lengthB) = transB ? (n, k) : (k, n)
        let halves = UnsafeMutablePointer<UInt16>.allocate(capacity: m * k + rowsB * lengthB)
        defer { halves.deallocate() }
        let a16 = halves, b16 = halves + m * k
        for i in 0..<m { BFloat16.convert(a + i * lda, a16 + i * k, count: k) }
        for i in 0..<rowsB { BFloat16.convert(b + i * ldb, b16 + i * lengthB, count: lengthB) }
        gemmBF16(transB: transB, m: m, n: n, k: k, a: a16, lda: k, b: b16, ldb: lengthB, accumulate: beta == 1, c: c, ldc: ldc)
    }

    /// `C = op(A) · op(B) (+ C when accumulate)` with bfloat16 `A` and `B` (strides as in `gemm`)
    /// and float32 accumulation and `C`: oneDNN's matmul, or where it cannot run, float32 BLAS on
    /// the same bfloat16 values (the same result up to summation order).
    public static func gemmBF16(transB: Bool = false, m: Int, n: Int, k: Int, a: UnsafePointer<UInt16>, lda: Int,
                                b: UnsafePointer<UInt16>, ldb: Int, accumulate: Bool,
                                c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        #if canImport(CDNNL)
        if k > 0 {
            let la = OneDNNMatmul.Layout(rows: m, cols: k, rowStride: lda, colStride: 1)
            let lb = transB ? OneDNNMatmul.Layout(rows: k, cols: n, rowStride: 1, colStride: ldb)
                            : OneDNNMatmul.Layout(rows: k, cols: n, rowStride: ldb, colStride: 1)
            if !accumulate, OneDNNMatmul.multiply(a, la, b, lb, c, OneDNNMatmul.Layout(rows: m, cols: n, rowStride: ldc, colStride: 1)) {
                return
            }
            if accumulate {
                let product = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
                defer { product.deallocate() }
                if OneDNNMatmul.multiply(a, la, b, lb, product, OneDNNMatmul.Layout(rows: m, cols: n, rowStride: n, colStride: 1)) {
                    for i in 0..<m { VectorMath.add(product + i * n, into: c + i * ldc, count: n) }
                    return
                }
            }
        }
        #endif
        // Fallback: the bfloat16 values widened to float32.
        let (rowsB, lengthB) = transB ? (n, k) : (k, n)
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: m * k + rowsB * lengthB)
        defer { floats.deallocate() }
        let af = floats, bf = floats + m * k
        for i in 0..<m { for j in 0..<k { af[i * k + j] = BFloat16.float(a[i * lda + j]) } }
        for i in 0..<rowsB { for j in 0..<lengthB { bf[i * lengthB + j] = BFloat16.float(b[i * ldb + j]) } }
        BLAS.gemm(transB: transB, m: m, n: n, k: k, a: af, lda: k, b: bf, ldb: lengthB, beta: accumulate ? 1 : 0, c: c, ldc: ldc)
    }
}
