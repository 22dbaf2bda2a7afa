import WallocTensor
#if canImport(CDNNL)
import CDNNL
#endif

/// oneDNN's convolutions behind `Conv2d` (see `Kernels`).
///
/// A convolution runs as: reorder of the `NCHW` float32 input to channels-last (float32 or
/// bfloat16), oneDNN's convolution (its implementation chosen by oneDNN for this CPU), reorder of
/// the channels-last float32 output back to `NCHW`. Primitives and weights in oneDNN's layout are
/// made once per layer and input shape (`OneDNNConvolutionCache`). oneDNN's OpenMP team gets
/// `Threading.count` threads.
enum OneDNN {
    #if canImport(CDNNL)
    static let isAvailable = engine != nil

    /// The CPU engine, made once.
    nonisolated(unsafe) static let engine: dnnl_engine_t? = {
        var e: dnnl_engine_t?
        return dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success ? e : nil
    }()

    static let version: String = {
        guard let v = dnnl_version() else { return "?" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }()

    /// oneDNN's name for the implementation of a 64-channel 3x3 convolution at this precision
    /// ("brgconv:avx512_core_bf16", "jit:avx2", ...), or nil where it cannot make one.
    static func implementation(_ precision: Kernels.Precision) -> String {
        probe[precision == .bf16 ? 1 : 0] ?? "none"
    }

    /// Whether bf16 convolutions run on native instructions (not oneDNN's slow reference code).
    static let supportsBF16: Bool = {
        guard let name = probe[1] else { return false }
        return !name.hasPrefix("ref")
    }()

    /// Whether float32 convolutions run on optimised code (else `Conv2d` keeps its BLAS path).
    static let fastFP32: Bool = {
        guard let name = probe[0] else { return false }
        return !name.hasPrefix("ref")
    }()

    private static let probe: [String?] = [dnnl_f32, dnnl_bf16].map { type in
        guard let engine else { return nil }
        let d = ConvolutionShape(n: 1, c: 64, o: 64, h: 32, w: 32, kh: 3, kw: 3, ph: 1, pw: 1, dilation: 1, bias: true)
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
    static func implementation(_ precision: Kernels.Precision) -> String { "none" }
    #endif
}

#if canImport(CDNNL)
private let argSrc: Int32 = 1, argDst: Int32 = 17, argWeights: Int32 = 33, argBias: Int32 = 41
private var allocate: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: -1) }

/// The shape of one convolution call.
struct ConvolutionShape: Hashable {
    let n, c, o, h, w, kh, kw, ph, pw, dilation: Int
    let bias: Bool

    var ho: Int { h + 2 * ph - dilation * (kh - 1) }
    var wo: Int { w + 2 * pw - dilation * (kw - 1) }

    func descriptor(_ dims: [Int], _ type: dnnl_data_type_t, _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map(Int64.init)
        _ = dnnl_memory_desc_init_by_tag(&md, Int32(d.count), d, type, tag)
        return md
    }

    /// A forward-inference convolution with channels-last source (of `type`) and float32
    /// destination; weights in the layout oneDNN prefers.
    func primitiveDescriptor(type: dnnl_data_type_t, engine: dnnl_engine_t) -> dnnl_primitive_desc_t? {
        var src = descriptor([n, c, h, w], type, dnnl_nhwc)
        var dst = descriptor([n, o, ho, wo], dnnl_f32, dnnl_nhwc)
        var weights = descriptor([o, c, kh, kw], type, dnnl_format_tag_any)
        var biasMD = descriptor([o], dnnl_f32, dnnl_x)
        var cd = dnnl_convolution_desc_t()
        let strides: [Int64] = [1, 1], dilates = [Int64(dilation - 1), Int64(dilation - 1)]
        let left = [Int64(ph), Int64(pw)], right = [Int64(ph), Int64(pw)]
        let status = withUnsafeMutablePointer(to: &biasMD) { b in
            dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src, &weights,
                                                       bias ? b : nil, &dst, strides, dilates, left, right)
        }
        guard status == dnnl_success else { return nil }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, &cd, nil, engine, nil) == dnnl_success else { return nil }
        return pd
    }
}

/// A convolution layer's oneDNN primitives, one per input shape and precision, with its weights
/// reordered into each primitive's layout. Shared by copies of the layer; replaced when its
/// parameters change.
final class OneDNNConvolutionCache: @unchecked Sendable {
    struct Key: Hashable {
        let shape: ConvolutionShape
        let bf16: Bool
        let threads: Int
    }

    final class Entry {
        let convolution: dnnl_primitive_t
        let toChannelsLast: dnnl_primitive_t
        let fromChannelsLast: dnnl_primitive_t
        var source: dnnl_memory_desc_t
        var destination: dnnl_memory_desc_t
        var user: dnnl_memory_desc_t
        var userOut: dnnl_memory_desc_t
        let weights: dnnl_memory_t

        init?(_ key: Key, weight: Tensor, engine: dnnl_engine_t) {
            let s = key.shape, type = key.bf16 ? dnnl_bf16 : dnnl_f32
            guard let pd = s.primitiveDescriptor(type: type, engine: engine) else { return nil }
            defer { dnnl_primitive_desc_destroy(pd) }
            source = s.descriptor([s.n, s.c, s.h, s.w], type, dnnl_nhwc)
            destination = s.descriptor([s.n, s.o, s.ho, s.wo], dnnl_f32, dnnl_nhwc)
            user = s.descriptor([s.n, s.c, s.h, s.w], dnnl_f32, dnnl_nchw)
            userOut = s.descriptor([s.n, s.o, s.ho, s.wo], dnnl_f32, dnnl_nchw)
            var conv: dnnl_primitive_t?, inReorder: dnnl_primitive_t?, outReorder: dnnl_primitive_t?
            guard dnnl_primitive_create(&conv, pd) == dnnl_success, let conv else { return nil }
            guard let a = Entry.reorder(&user, &source, engine), let b = Entry.reorder(&destination, &userOut, engine) else {
                dnnl_primitive_destroy(conv); return nil
            }
            inReorder = a; outReorder = b
            // Weights: OIHW float32 -> the primitive's layout and type, once.
            var plain = s.descriptor([s.o, s.c, s.kh, s.kw], dnnl_f32, dnnl_oihw)
            var wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)!.pointee
            var packed: dnnl_memory_t?, plainMemory: dnnl_memory_t?
            let ok = weight.withUnsafeBufferPointer { wb -> Bool in
                guard dnnl_memory_create(&packed, &wmd, engine, allocate) == dnnl_success, packed != nil,
                      dnnl_memory_create(&plainMemory, &plain, engine, UnsafeMutableRawPointer(mutating: wb.baseAddress!)) == dnnl_success,
                      let plainMemory else { return false }
                defer { dnnl_memory_destroy(plainMemory) }
                guard let r = Entry.reorder(&plain, &wmd, engine) else { return false }
                defer { dnnl_primitive_destroy(r) }
                return OneDNNCall.run(r, [(argSrc, plainMemory), (argDst, packed!)], threads: key.threads)
            }
            guard ok, let packed else {
                if let packed { dnnl_memory_destroy(packed) }
                dnnl_primitive_destroy(conv); dnnl_primitive_destroy(a); dnnl_primitive_destroy(b)
                return nil
            }
            convolution = conv; toChannelsLast = inReorder!; fromChannelsLast = outReorder!; weights = packed
        }

        static func reorder(_ from: inout dnnl_memory_desc_t, _ to: inout dnnl_memory_desc_t, _ engine: dnnl_engine_t) -> dnnl_primitive_t? {
            var pd: dnnl_primitive_desc_t?, p: dnnl_primitive_t?
            guard dnnl_reorder_primitive_desc_create(&pd, &from, engine, &to, engine, nil) == dnnl_success, let pd else { return nil }
            defer { dnnl_primitive_desc_destroy(pd) }
            return dnnl_primitive_create(&p, pd) == dnnl_success ? p : nil
        }

        deinit {
            dnnl_primitive_destroy(convolution)
            dnnl_primitive_destroy(toChannelsLast)
            dnnl_primitive_destroy(fromChannelsLast)
            dnnl_memory_destroy(weights)
        }
    }

    private let entries = Locked<[Key: Entry?]>([:])

    /// The entry for `key`, made on first use (nil where oneDNN cannot run it).
    func entry(_ key: Key, weight: Tensor) -> Entry? {
        entries.withLock { table in
            if let e = table[key] { return e }
            let e = OneDNN.engine.flatMap { Entry(key, weight: weight, engine: $0) }
            table[key] = .some(e)
            return e
        }
    }
}

/// Executing primitives: a stream per call, OpenMP team of the given size.
enum OneDNNCall {
    static func run(_ primitive: dnnl_primitive_t, _ args: [(Int32, dnnl_memory_t)], threads: Int) -> Bool {
        guard let engine = OneDNN.engine else { return false }
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, UInt32(dnnl_stream_default_flags.rawValue)) == dnnl_success, let stream else { return false }
        defer { dnnl_stream_destroy(stream) }
        omp_set_num_threads(Int32(threads))
        let list = args.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1) }
        guard dnnl_primitive_execute(primitive, stream, Int32(list.count), list) == dnnl_success else { return false }
        return dnnl_stream_wait(stream) == dnnl_success
    }
}

extension Conv2d {
    /// The convolution through oneDNN, or nil where it cannot run (then the BLAS path runs).
    func oneDNNForward(_ x: Tensor, bf16: Bool) -> Tensor? {
        guard let engine = OneDNN.engine, OneDNN.fastFP32 else { return nil }
        let (kh, kw) = kernel
        let shape = ConvolutionShape(n: x.shape[0], c: inChannels, o: outChannels, h: x.shape[2], w: x.shape[3], kh: kh, kw: kw,
                                     ph: padding.h, pw: padding.w, dilation: dilation, bias: bias != nil)
        let threads = Threading.count
        guard let entry = oneDNNCache.entry(.init(shape: shape, bf16: bf16, threads: threads), weight: weight) else { return nil }
        var out = Tensor(uninitialized: [shape.n, shape.o, shape.ho, shape.wo])
        var source: dnnl_memory_t?, destination: dnnl_memory_t?
        guard dnnl_memory_create(&source, &entry.source, engine, allocate) == dnnl_success, let source else { return nil }
        defer { dnnl_memory_destroy(source) }
        guard dnnl_memory_create(&destination, &entry.destination, engine, allocate) == dnnl_success, let destination else { return nil }
        defer { dnnl_memory_destroy(destination) }
        let ok = x.withUnsafeBufferPointer { xb -> Bool in
            out.withUnsafeMutableBufferPointer { ob -> Bool in
                var input: dnnl_memory_t?, output: dnnl_memory_t?, biasMemory: dnnl_memory_t?
                guard dnnl_memory_create(&input, &entry.user, engine, UnsafeMutableRawPointer(mutating: xb.baseAddress!)) == dnnl_success,
                      let input else { return false }
                defer { dnnl_memory_destroy(input) }
                guard dnnl_memory_create(&output, &entry.userOut, engine, ob.baseAddress!) == dnnl_success, let output else { return false }
                defer { dnnl_memory_destroy(output) }
                var args: [(Int32, dnnl_memory_t)] = [(argSrc, source), (argWeights, entry.weights), (argDst, destination)]
                return withOptionalBias { bp -> Bool in
                    if let bp {
                        var md = shape.descriptor([shape.o], dnnl_f32, dnnl_x)
                        guard dnnl_memory_create(&biasMemory, &md, engine, UnsafeMutableRawPointer(mutating: bp)) == dnnl_success,
                              let biasMemory else { return false }
                        args.append((argBias, biasMemory))
                    }
                    defer { if let biasMemory { dnnl_memory_destroy(biasMemory) } }
                    return OneDNNCall.run(entry.toChannelsLast, [(argSrc, input), (argDst, source)], threads: threads)
                        && OneDNNCall.run(entry.convolution, args, threads: threads)
                        && OneDNNCall.run(entry.fromChannelsLast, [(argSrc, destination), (argDst, output)], threads: threads)
                }
            }
        }
        return ok ? out : nil
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
