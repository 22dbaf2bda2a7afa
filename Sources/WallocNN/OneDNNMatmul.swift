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

/// float32 -> bfloat16 (round to nearest even; NaN stays NaN).
enum BFloat16 {
    @inline(__always) static func from(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(bits >> 16) | 0x40 }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    /// Converts `count` floats.
    static func convert(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
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
