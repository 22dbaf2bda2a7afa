import Synchronization
import WallocTensor
#if canImport(CDNNL)
import CDNNL
#endif

/// oneDNN's convolutions behind `Conv2d` (see `Kernels`).
///
/// A convolution runs as: transpose of the `NCHW` float32 input to channels-last (float32 or
/// bfloat16), oneDNN's convolution (its implementation chosen by oneDNN for this CPU), transpose
/// of the channels-last float32 output back to `NCHW`. Primitives are made once per layer and
/// piece shape, weights in oneDNN's layout once per layer and layout (`OneDNNConvolutionCache`).
/// Every execution is single-threaded on the calling thread; Walloc's workers run the pieces.
enum OneDNN {
    #if canImport(CDNNL)
    /// oneDNN is used only where both the engine and the per-execution scratchpad attribute exist.
    static let isAvailable = engine != nil && attributes != nil

    /// The CPU engine, made once.
    nonisolated(unsafe) static let engine: dnnl_engine_t? = {
        var e: dnnl_engine_t?
        singleThreaded()
        return dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success ? e : nil
    }()

    /// Attributes of every primitive Walloc makes: a scratchpad passed with each execution
    /// (`OneDNNCall`), so one primitive can run on several threads at once. (Debian's oneDNN keeps
    /// the library's scratchpad global otherwise: concurrent executions would share it.)
    nonisolated(unsafe) static let attributes: dnnl_primitive_attr_t? = {
        var a: dnnl_primitive_attr_t?
        guard dnnl_primitive_attr_create(&a) == dnnl_success, let a else { return nil }
        guard dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user) == dnnl_success else { return nil }
        return a
    }()

    /// Keeps oneDNN on the calling thread, for creating primitives as for running them: an
    /// OpenMP team it opened would spin after each parallel region on the cores Walloc's workers
    /// use (the first decode of a process lost about 4 ms to it; OpenMP's settings are per
    /// thread, so every thread that calls oneDNN sets this first).
    static func singleThreaded() { omp_set_num_threads(1) }

    static let version: String = {
        guard let v = dnnl_version() else { return "?" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }()

    /// oneDNN's name for the implementation of a 64-channel 3x3 convolution of this type
    /// ("brgconv:avx512_core_bf16", "jit:avx2", "jit_int8:avx512_core_vnni", ...), or "none"
    /// where it cannot make one.
    static func implementation(_ type: ConvolutionType) -> String {
        probe[ConvolutionType.allCases.firstIndex(of: type)!] ?? "none"
    }

    /// Whether bf16 convolutions run on native instructions (not oneDNN's slow reference code).
    static let supportsBF16: Bool = {
        guard let name = probe[1] else { return false }
        return !name.hasPrefix("ref")
    }()

    /// Whether int8 convolutions run on int8 dot products that do not saturate (AVX-512 VNNI or
    /// AMX; AVX2's `vpmaddubsw` sums pairs into 16 bits and oneDNN then narrows the weights).
    static let supportsInt8: Bool = {
        guard let name = probe[2] else { return false }
        return name.contains("vnni") || name.contains("amx")
    }()

    /// Whether float32 convolutions run on optimised code (else `Conv2d` keeps its BLAS path).
    static let fastFP32: Bool = {
        guard let name = probe[0] else { return false }
        return !name.hasPrefix("ref")
    }()

    private static let probe: [String?] = ConvolutionType.allCases.map { type in
        guard let engine else { return nil }
        let d = ConvolutionShape(n: 1, c: 64, o: 64, h: 32, w: 32, kh: 3, kw: 3, top: 1, bottom: 1, pw: 1, dilation: 1, bias: true)
        guard let pd = d.primitiveDescriptor(type: type, engine: engine) else { return nil }
        defer { dnnl_primitive_desc_destroy(pd) }
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success, let name else { return nil }
        return String(cString: name)
    }
    #else
    static let isAvailable = false
    static let version = "none"
    static let supportsBF16 = false
    static let fastFP32 = false
    static let supportsInt8 = false
    static func implementation(_ type: ConvolutionType) -> String { "none" }
    #endif
}

/// The element type of a convolution's input and weights on oneDNN (its output is float32):
/// float32, bfloat16, or int8 (per-piece input scale, per-output-channel weight scales, the sums
/// scaled back to float32 by Walloc as it transposes the output).
enum ConvolutionType: CaseIterable, Hashable {
    case f32, bf16, s8
}

#if canImport(CDNNL)
extension ConvolutionType {
    var dataType: dnnl_data_type_t {
        switch self {
        case .f32: return dnnl_f32
        case .bf16: return dnnl_bf16
        case .s8: return dnnl_s8
        }
    }
}

/// oneDNN's execution argument numbers (`DNNL_ARG_SRC`, ... in dnnl_types.h; macros Swift does not import).
let argSrc: Int32 = 1, argDst: Int32 = 17, argWeights: Int32 = 33, argBias: Int32 = 41, argScratchpad: Int32 = 80
private var allocate: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: -1) }

/// The shape of one convolution call: `h` input rows with `top` and `bottom` rows of zero padding.
struct ConvolutionShape: Hashable {
    let n, c, o, h, w, kh, kw, top, bottom, pw, dilation: Int
    let bias: Bool

    var ho: Int { h + top + bottom - dilation * (kh - 1) }
    var wo: Int { w + 2 * pw - dilation * (kw - 1) }

    func descriptor(_ dims: [Int], _ type: dnnl_data_type_t, _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map(Int64.init)
        _ = dnnl_memory_desc_init_by_tag(&md, Int32(d.count), d, type, tag)
        return md
    }

    /// A forward-inference convolution with channels-last source (of `type`) and float32
    /// destination; weights in the layout oneDNN prefers. int8 convolutions take no bias (their
    /// sums are scaled, then biased, as they are transposed back).
    func primitiveDescriptor(type convolution: ConvolutionType, engine: dnnl_engine_t) -> dnnl_primitive_desc_t? {
        let type = convolution.dataType, bias = bias && convolution != .s8
        var src = descriptor([n, c, h, w], type, dnnl_nhwc)
        var dst = descriptor([n, o, ho, wo], dnnl_f32, dnnl_nhwc)
        var weights = descriptor([o, c, kh, kw], type, dnnl_format_tag_any)
        var biasMD = descriptor([o], dnnl_f32, dnnl_x)
        var cd = dnnl_convolution_desc_t()
        let strides: [Int64] = [1, 1], dilates = [Int64(dilation - 1), Int64(dilation - 1)]
        let left = [Int64(top), Int64(pw)], right = [Int64(bottom), Int64(pw)]
        let status = withUnsafeMutablePointer(to: &biasMD) { b in
            dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &weights,
                                                       bias ? b : nil, &dst, strides, dilates, left, right)
        }
        guard status == dnnl_success else { return nil }
        var pd: dnnl_primitive_desc_t?
        OneDNN.singleThreaded()
        guard dnnl_primitive_desc_create(&pd, &cd, OneDNN.attributes, engine, nil) == dnnl_success else { return nil }
        return pd
    }
}

/// A convolution layer's oneDNN primitives, one per piece shape and precision, and its weights in
/// oneDNN's layout, one copy per layout the primitives want. Shared by copies of the layer;
/// replaced when its parameters change.
final class OneDNNConvolutionCache: @unchecked Sendable {
    struct Key: Hashable {
        /// One piece of rows: its input rows and padding.
        let shape: ConvolutionShape
        /// Rows per plane of the whole input and output tensors the piece is a window of.
        let inputRows: Int, outputRows: Int
        let type: ConvolutionType
    }

    final class Entry {
        let convolution: dnnl_primitive_t
        let key: Key
        /// Read-only after creation: pieces with this entry run on several threads at once, so
        /// each execution passes its own copies to oneDNN (an `inout` of the stored value was a
        /// data race under ThreadSanitizer).
        let source: dnnl_memory_desc_t
        let destination: dnnl_memory_desc_t
        let packed: PackedWeights
        var weights: dnnl_memory_t { packed.memory }

        init?(_ key: Key, engine: dnnl_engine_t, weights: (inout dnnl_memory_desc_t) -> PackedWeights?) {
            let s = key.shape, type = key.type.dataType
            self.key = key
            guard let pd = s.primitiveDescriptor(type: key.type, engine: engine) else { return nil }
            defer { dnnl_primitive_desc_destroy(pd) }
            source = s.descriptor([s.n, s.c, s.h, s.w], type, dnnl_nhwc)
            destination = s.descriptor([s.n, s.o, s.ho, s.wo], dnnl_f32, dnnl_nhwc)
            var conv: dnnl_primitive_t?
            guard dnnl_primitive_create(&conv, pd) == dnnl_success, let conv else { return nil }
            // Weights in the primitive's layout and type: shared by every entry that wants that layout.
            var wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)!.pointee
            guard let shared = weights(&wmd) else {
                dnnl_primitive_destroy(conv)
                return nil
            }
            packed = shared
            convolution = conv
        }

        /// Runs the piece: input rows from `input`, output rows to `output` (windows of NCHW
        /// tensors). The layout changes are plain transposes (one oneDNN reorder primitive per
        /// piece shape and direction held 56 MB more on an 8000x6000 decode).
        func run(_ engine: dnnl_engine_t, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                 bias: UnsafePointer<Float>?) -> Bool {
            let s = key.shape
            let element: Transpose.Element
            var inputScale: Float = 1
            switch key.type {
            case .f32: element = .float32
            case .bf16: element = .bfloat16
            case .s8:
                // One scale for the piece: its largest input magnitude maps to 127.
                let m = Transpose.maximumMagnitude(input, samples: s.n, channels: s.c, rows: s.h, cols: s.w, planeRows: key.inputRows)
                if m > 0 && m.isFinite { inputScale = m / 127 }
                element = .int8(inverseScale: 1 / inputScale)
            }
            let sourceBuffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, s.n * s.h * s.w * s.c * element.bytes), alignment: 64)
            let destinationBuffer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, s.n * s.ho * s.wo * s.o))
            defer { sourceBuffer.deallocate(); destinationBuffer.deallocate() }
            Transpose.toChannelsLast(input, samples: s.n, channels: s.c, rows: s.h, cols: s.w, planeRows: key.inputRows,
                                     into: sourceBuffer, element: element)
            var memories = [dnnl_memory_t]()
            defer { for m in memories { dnnl_memory_destroy(m) } }
            func make(_ md: inout dnnl_memory_desc_t, _ handle: UnsafeMutableRawPointer?) -> dnnl_memory_t? {
                var m: dnnl_memory_t?
                guard dnnl_memory_create(&m, &md, engine, handle) == dnnl_success, let m else { return nil }
                memories.append(m)
                return m
            }
            var sourceMD = source, destinationMD = destination
            guard let source = make(&sourceMD, sourceBuffer),
                  let destination = make(&destinationMD, UnsafeMutableRawPointer(destinationBuffer)) else { return false }
            var args: [(Int32, dnnl_memory_t)] = [(argSrc, source), (argWeights, weights), (argDst, destination)]
            if let bias, key.type != .s8 {
                var md = s.descriptor([s.o], dnnl_f32, dnnl_x)
                guard let b = make(&md, UnsafeMutableRawPointer(mutating: bias)) else { return false }
                args.append((argBias, b))
            }
            guard OneDNNCall.run(convolution, args) else { return false }
            guard key.type == .s8, let weightScales = packed.scales else {
                Transpose.fromChannelsLast(destinationBuffer, samples: s.n, channels: s.o, rows: s.ho, cols: s.wo,
                                           planeRows: key.outputRows, into: output)
                return true
            }
            // int8: the sums times the input's and each output channel's weight scale, plus the bias.
            let multipliers = weightScales.map { $0 * inputScale }
            multipliers.withUnsafeBufferPointer { m in
                Transpose.fromChannelsLast(destinationBuffer, samples: s.n, channels: s.o, rows: s.ho, cols: s.wo,
                                           planeRows: key.outputRows, into: output, multipliers: m.baseAddress!, bias: bias)
            }
            return true
        }

        deinit {
            dnnl_primitive_destroy(convolution)
        }
    }

    /// The layer's weights in one oneDNN layout and type.
    final class PackedWeights {
        var descriptor: dnnl_memory_desc_t
        let memory: dnnl_memory_t
        /// int8 weights: each output channel's scale (its largest magnitude / 127).
        let scales: [Float]?

        /// Reorders OIHW float32 `weight` into `descriptor`'s layout and type; int8 weights are
        /// first rounded per output channel to `round(w / scale)`.
        init?(_ weight: Tensor, shape s: ConvolutionShape, descriptor wanted: dnnl_memory_desc_t, engine: dnnl_engine_t) {
            descriptor = wanted
            let int8 = wanted.data_type == dnnl_s8
            var plain = s.descriptor([s.o, s.c, s.kh, s.kw], int8 ? dnnl_s8 : dnnl_f32, dnnl_oihw)
            var source: [Int8]? = nil
            if int8 {
                let per = weight.count / max(1, s.o)
                var q = [Int8](repeating: 0, count: weight.count), sc = [Float](repeating: 1, count: s.o)
                // Eight lanes at a time, as the inputs are (`Transpose.quantized`); the scalar
                // loop took about 6 ms of the first decode of a process.
                weight.withUnsafeBufferPointer { w in
                    q.withUnsafeMutableBufferPointer { qb in
                        for o in 0..<s.o {
                            let row = w.baseAddress! + o * per
                            let m = Transpose.maximumMagnitude(row, samples: 1, channels: 1, rows: 1, cols: per, planeRows: 1)
                            if m > 0 && m.isFinite { sc[o] = m / 127 }
                            let inverse = 1 / sc[o], out = qb.baseAddress! + o * per
                            var i = 0
                            while i + 8 <= per {
                                UnsafeMutableRawPointer(out + i).storeBytes(
                                    of: Transpose.quantized(UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self), inverse), as: SIMD8<Int8>.self)
                                i += 8
                            }
                            while i < per { out[i] = Transpose.quantized(SIMD8(repeating: row[i]), inverse)[0]; i += 1 }
                        }
                    }
                }
                source = q
                scales = sc
            } else {
                scales = nil
            }
            var packed: dnnl_memory_t?
            func reorder(from handle: UnsafeMutableRawPointer) -> Bool {
                var wmd = wanted, plainMemory: dnnl_memory_t?
                guard dnnl_memory_create(&packed, &wmd, engine, allocate) == dnnl_success, packed != nil,
                      dnnl_memory_create(&plainMemory, &plain, engine, handle) == dnnl_success,
                      let plainMemory else { return false }
                defer { dnnl_memory_destroy(plainMemory) }
                // Zeroed first: for int8 weights the buffer ends in the per-channel compensation
                // sums, which the reorder adds to rather than sets (reused, unzeroed memory gave
                // a layer wrong sums now and then, and whole images decoded to noise).
                var handle: UnsafeMutableRawPointer?
                guard dnnl_memory_get_data_handle(packed, &handle) == dnnl_success, let handle else { return false }
                handle.initializeMemory(as: UInt8.self, repeating: 0, count: dnnl_memory_desc_get_size(&wmd))
                guard let r = PackedWeights.reorder(&plain, &wmd, engine) else { return false }
                defer { dnnl_primitive_destroy(r) }
                return OneDNNCall.run(r, [(argSrc, plainMemory), (argDst, packed!)])
            }
            let ok = source.map { q in q.withUnsafeBytes { reorder(from: UnsafeMutableRawPointer(mutating: $0.baseAddress!)) } }
                ?? weight.withUnsafeBufferPointer { reorder(from: UnsafeMutableRawPointer(mutating: $0.baseAddress!)) }
            guard ok, let packed else {
                if let packed { dnnl_memory_destroy(packed) }
                return nil
            }
            memory = packed
        }

        private static func reorder(_ from: inout dnnl_memory_desc_t, _ to: inout dnnl_memory_desc_t,
                                    _ engine: dnnl_engine_t) -> dnnl_primitive_t? {
            var pd: dnnl_primitive_desc_t?, p: dnnl_primitive_t?
            OneDNN.singleThreaded()
            guard dnnl_reorder_primitive_desc_create(&pd, &from, engine, &to, engine, OneDNN.attributes) == dnnl_success, let pd else { return nil }
            defer { dnnl_primitive_desc_destroy(pd) }
            return dnnl_primitive_create(&p, pd) == dnnl_success ? p : nil
        }

        deinit { dnnl_memory_destroy(memory) }
    }

    private struct State {
        var entries: [Key: Entry?] = [:]
        /// Weights by layout: entries for different input shapes mostly want the same one, and
        /// one copy per shape cost 190 MB on an 8000x6000 decode (many edge-tile shapes).
        var weights: [PackedWeights] = []
    }

    private let state = Locked(State())

    /// The entry for `key`, made on first use (nil where oneDNN cannot run it).
    func entry(_ key: Key, weight: Tensor) -> Entry? {
        state.withLock { st in
            if let e = st.entries[key] { return e }
            let e = OneDNN.engine.flatMap { engine in
                Entry(key, engine: engine) { wmd in
                    if let w = st.weights.first(where: { dnnl_memory_desc_equal(&$0.descriptor, &wmd) != 0 }) { return w }
                    let w = PackedWeights(weight, shape: key.shape, descriptor: wmd, engine: engine)
                    if let w { st.weights.append(w) }
                    return w
                }
            }
            st.entries[key] = .some(e)
            return e
        }
    }
}

/// Executing primitives on the calling thread: a stream per call, an OpenMP team of one (Walloc's
/// workers supply the parallelism, so no OpenMP threads spin beside them).
enum OneDNNCall {
    static func run(_ primitive: dnnl_primitive_t, _ args: [(Int32, dnnl_memory_t)]) -> Bool {
        guard let engine = OneDNN.engine else { return false }
        // This execution's own scratchpad (primitives are made with a user-managed one).
        var pd: const_dnnl_primitive_desc_t?
        guard dnnl_primitive_get_primitive_desc(primitive, &pd) == dnnl_success, let pd,
              let scratchMD = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) else { return false }
        var args = args
        var scratch: dnnl_memory_t?
        if dnnl_memory_desc_get_size(scratchMD) > 0 {
            guard dnnl_memory_create(&scratch, scratchMD, engine, UnsafeMutableRawPointer(bitPattern: -1)) == dnnl_success,
                  let scratch else { return false }
            args.append((argScratchpad, scratch))
        }
        defer { if let scratch { dnnl_memory_destroy(scratch) } }
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, UInt32(dnnl_stream_default_flags.rawValue)) == dnnl_success, let stream else { return false }
        defer { dnnl_stream_destroy(stream) }
        OneDNN.singleThreaded()
        let list = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1) }
        guard dnnl_primitive_execute(primitive, stream, Int32(list.count), list) == dnnl_success else { return false }
        return dnnl_stream_wait(stream) == dnnl_success
    }
}

extension Conv2d {
    /// The convolution through oneDNN, or nil where it cannot run (then the BLAS path runs).
    ///
    /// The output rows are cut into pieces by shape alone (`Partition`), each computed by a
    /// single-threaded oneDNN convolution of the input rows it needs, on Walloc's workers: the
    /// result does not depend on the thread count. Inside `Threading.serially` it is one piece.
    func oneDNNForward(_ x: Tensor, type: ConvolutionType) -> Tensor? {
        guard let engine = OneDNN.engine, OneDNN.fastFP32 else { return nil }
        let (kh, kw) = kernel
        let n = x.shape[0], h = x.shape[2], w = x.shape[3], d = dilation, ph = padding.h
        let (ho, wo) = outputSize(h, w)
        // Inside `Threading.serially` (decoder tiles) the pieces would run one after another on
        // this thread: one piece then, with fewer primitives to make and no rows read twice.
        let block = Threading.isSerial ? ho : Partition.block(ho, minimum: 8)
        let pieces = (ho + block - 1) / block
        // Input rows [r0 - ph, r1 - ph + d(kh - 1)) give output rows [r0, r1); rows outside the
        // image are the padding.
        let plans: [(key: OneDNNConvolutionCache.Key, r0: Int, first: Int)] = (0..<pieces).map { piece in
            let r0 = piece * block, r1 = min(ho, r0 + block)
            let lo = r0 - ph, hi = r1 - ph + d * (kh - 1)
            let first = max(0, lo), last = min(h, hi)
            let shape = ConvolutionShape(n: n, c: inChannels, o: outChannels, h: last - first, w: w, kh: kh, kw: kw,
                                         top: first - lo, bottom: hi - last, pw: padding.w, dilation: d, bias: bias != nil)
            return (.init(shape: shape, inputRows: h, outputRows: ho, type: type), r0, first)
        }
        var entries = [OneDNNConvolutionCache.Entry]()
        for plan in plans {
            guard let e = oneDNNCache.entry(plan.key, weight: weight) else { return nil }
            entries.append(e)
        }
        var out = Tensor(uninitialized: [n, outChannels, ho, wo])
        let failed = Atomic<Bool>(false)
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                withOptionalBias { bp in
                    parallelFor(pieces) { i in
                        let ok = entries[i].run(engine, input: xb.baseAddress! + plans[i].first * w,
                                                output: ob.baseAddress! + plans[i].r0 * wo, bias: bp)
                        if !ok { failed.store(true, ordering: .relaxed) }
                    }
                }
            }
        }
        return failed.load(ordering: .relaxed) ? nil : out
    }

    private func withOptionalBias<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let bias else { return body(nil) }
        return bias.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

#else
/// Without oneDNN: nothing to cache.
final class OneDNNConvolutionCache: Sendable {}
#endif
