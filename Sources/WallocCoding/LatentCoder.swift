import Foundation
import WallocTensor

/// Lossless coding of integer latent tensors `[C, H, W]` (images) or `[C, L]` (audio) with
/// context-modelled rANS. docs/entropy-coding.md describes the model and the payload layout.
public enum LatentCoder {
    /// First byte of every payload.
    public static let formatVersion: UInt8 = 4
    /// Symbols in a context below which the encoder does not consider sending its own table
    /// (a table costs 40-100 bytes; the parametric ones fit within a few percent).
    static let ownTableMinimum: UInt32 = 16384

    /// The most latents a payload of `payloadBytes` may declare (the `.wlc` container's bound:
    /// a small corrupt stream can never make a decoder allocate much).
    public static func maximumLatents(payloadBytes: Int) -> Int {
        WLCFile.baseLatentLimit + payloadBytes * WLCFile.latentsPerPayloadByte
    }

    static func alphabet(bits: Int) throws -> Int {
        guard (1...16).contains(bits) else { throw WallocError("latent_bits must be 1...16, got \(bits)") }
        return 1 << bits
    }

    static func layout(_ shape: [Int]) throws -> Layout {
        guard shape.count == 2 || shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw WallocError("latents must be [C, H, W] or [C, L] with non-zero sizes, got \(shape)")
        }
        var total = 1
        for d in shape {
            let (t, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, t <= 1 << 40 else { throw WallocError("latent shape \(shape) is too large") }
            total = t
        }
        return shape.count == 3 ? Layout(channels: shape[0], rows: shape[1], cols: shape[2], oneD: false)
                                : Layout(channels: shape[0], rows: 1, cols: shape[1], oneD: true)
    }

    /// The latents as integers, checking they are integers in the `bits`-bit range, and which
    /// channels are constant.
    static func integers(_ y: Tensor, bits: Int) throws -> (values: [Int32], constant: [Bool]) {
        let half = 1 << (bits - 1)
        let lo = Float(-half), hi = Float(half - 1)
        let channels = y.shape[0], n = y.count / channels
        var constant = [Bool](repeating: false, count: channels)
        var valid = true
        let values = y.count == 0 ? [] : [Int32](unsafeUninitializedCapacity: y.count) { out, initialized in
            y.withUnsafeBufferPointer { src in
                for c in 0..<channels {
                    let s = src.baseAddress! + c * n, d = out.baseAddress! + c * n
                    // Branch-free: clamp, convert, and check the conversion gave the value back
                    // (false for NaN, out-of-range and fractional values).
                    var bad: Int32 = 0
                    var mn = Int32.max, mx = Int32.min
                    for i in 0..<n {
                        let v = s[i]
                        // Adding 1.5 · 2^23 leaves round(c) in the low mantissa bits (|c| ≤ 2^15).
                        let c = v > hi ? hi : (v >= lo ? v : lo)
                        let q = Int32(bitPattern: (c + 12_582_912).bitPattern) &- 0x4B40_0000
                        bad |= Float(q) == v ? 0 : 1
                        d[i] = q
                        mn = Swift.min(mn, q); mx = Swift.max(mx, q)
                    }
                    constant[c] = mn == mx
                    valid = valid && bad == 0
                }
            }
            initialized = y.count
        }
        if !valid {
            let i = y.scalars.firstIndex { !($0 >= lo && $0 <= hi && $0.rounded(.towardZero) == $0) } ?? 0
            throw WallocError("latent value \(y.scalars[i]) (channel \(i / n), index \(i % n)) is not an integer in the \(bits)-bit range \(-half)...\(half - 1)")
        }
        return (values, constant)
    }

    // MARK: the tokenising pass

    /// Runs the tokenising pass over every channel of one segment: symbols and histograms for
    /// channels that have `syms`, spatial residuals for channels with an `ePlanes` entry.
    static func tokenizeSegment(layout: Layout, segment: (start: Int, count: Int), plans: [ChannelPlan],
                                values: UnsafePointer<Int32>, syms: UnsafeMutablePointer<UInt32>?,
                                hist: UnsafeMutablePointer<UInt32>?, ePlanes: [UnsafeMutablePointer<Int32>?], bits: Int) {
        let geo = layout.geometry(segment.count)
        let off = layout.offset(segment.start), n = layout.plane
        let planes = WorkPlanes(geo)
        defer { planes.free() }
        let activity = UnsafeMutablePointer<UInt16>.allocate(capacity: geo.cols)
        defer { activity.deallocate() }
        Buckets.lookup.withUnsafeBufferPointer { lut in
            for c in 0..<layout.channels {
                planes.swapTokens()
                let plan = plans[c]
                let coded = plan.kind != .constant && syms != nil
                let pass = Kernels.TokenizePass(
                    geo: geo, src: values + c * n + off, srcStride: layout.cols, vals: planes.vals, tok: planes.current,
                    prevTok: planes.previous,
                    cross: plan.reference >= 0 ? CrossTerm(reference: ePlanes[plan.reference]! + off, coefficient: plan.coefficient) : nil,
                    eOut: ePlanes[c].map { $0 + off }, syms: coded ? syms! + c * n + off : nil,
                    hist: coded ? hist! + c * LatentCoder.histogramSize : nil, activity: activity, lut: lut.baseAddress!,
                    half: Int32(1 << (bits - 1)), mask: Int32((1 << bits) - 1))
                Kernels.tokenize(predictor: plan.kind == .constant ? 0 : plan.predictor, pass)
            }
        }
    }

    /// Counters per channel in the tokenising pass: two histograms of 16 buckets × 64 tokens.
    static let histogramSize = 2 * Kernels.histogramStride

    /// Adds each channel's two histograms into its first: `hist` then holds
    /// `channel · histogramSize + bucket · 64 + token` counts.
    static func foldHistograms(_ hist: UnsafeMutablePointer<UInt32>, channels: Int) {
        let q = Kernels.histogramStride
        for c in 0..<channels {
            let h = hist + c * histogramSize
            for i in 0..<(Buckets.count * 64) { h[i] = h[i] &+ h[i + q] }
        }
    }

    /// Token histograms (`channel · 2048 + bucket · 64 + token`, see `foldHistograms`) of one
    /// input, coded as one segment.
    static func histograms(values: UnsafePointer<Int32>, layout: Layout, plans: [ChannelPlan], bits: Int) -> [UInt32] {
        var hist = [UInt32](repeating: 0, count: layout.channels * histogramSize)
        let syms = UnsafeMutablePointer<UInt32>.allocate(capacity: layout.channels * layout.plane)
        defer { syms.deallocate() }
        hist.withUnsafeMutableBufferPointer { h in
            tokenizeSegment(layout: layout, segment: (0, layout.extent), plans: plans, values: values, syms: syms,
                            hist: h.baseAddress!, ePlanes: [UnsafeMutablePointer<Int32>?](repeating: nil, count: layout.channels), bits: bits)
            foldHistograms(h.baseAddress!, channels: layout.channels)
        }
        return hist
    }

    // MARK: encoding

    /// Codes integer latents `[C, H, W]` or `[C, L]` (float32 holding integers in the `bits`-bit
    /// range). With `defaults`, each context uses the model's table when that is cheapest.
    /// `format` 2 or 3 (earlier layouts, for tests of old streams) or 4 (the current one).
    public static func encode(_ latents: Tensor, bits: Int, defaults: LatentModel? = nil, format: UInt8 = formatVersion) throws -> Data {
        precondition((2...formatVersion).contains(format), "unknown latent payload format \(format)")
        _ = try alphabet(bits: bits)
        let layout = try self.layout(latents.shape)
        let channels = layout.channels, n = layout.plane
        if let d = defaults {
            guard d.bits == bits, d.channels == channels else {
                throw WallocError("the default entropy model is for \(d.channels) channels of \(d.bits) bits, the latents have \(channels) of \(bits)")
            }
        }
        let (values, constant) = try integers(latents, bits: bits)
        var plans = [ChannelPlan](repeating: ChannelPlan(), count: channels)
        let choices = values.withUnsafeBufferPointer {
            Analysis.choose(values: $0.baseAddress!, layout: layout, bits: bits, skip: constant, preferred: defaults?.predictors)
        }
        for c in 0..<channels {
            if constant[c] {
                plans[c].kind = .constant
                plans[c].constant = values[c * n]
            } else {
                plans[c].predictor = choices[c].predictor
                plans[c].reference = choices[c].reference
                plans[c].coefficient = choices[c].coefficient
            }
        }
        let span = layout.defaultSpan()
        let segments = layout.segments(span: span)
        let histSize = channels * histogramSize
        let syms = UnsafeMutablePointer<UInt32>.allocate(capacity: channels * n)
        let hists = UnsafeMutablePointer<UInt32>.allocate(capacity: segments.count * histSize)
        hists.initialize(repeating: 0, count: segments.count * histSize)
        var ePlanes = [UnsafeMutablePointer<Int32>?](repeating: nil, count: channels)
        for p in plans where p.reference >= 0 && ePlanes[p.reference] == nil { ePlanes[p.reference] = .allocate(capacity: n) }
        defer {
            syms.deallocate()
            hists.deallocate()
            for p in ePlanes { p?.deallocate() }
        }
        values.withUnsafeBufferPointer { v in
            let planes = ePlanes, plansNow = plans
            parallelFor(segments.count) { s in
                tokenizeSegment(layout: layout, segment: segments[s], plans: plansNow, values: v.baseAddress!, syms: syms,
                                hist: hists + s * histSize, ePlanes: planes, bits: bits)
            }
        }
        for s in 1..<max(1, segments.count) {
            for i in 0..<histSize { hists[i] &+= hists[s * histSize + i] }
        }
        foldHistograms(hists, channels: channels)
        let tables = try EncoderTables(plans: &plans, hist: hists, plane: n, bits: bits, defaults: defaults)
        defer { tables.free() }

        // rANS (backwards) and raw bits (forwards) per segment.
        var outputs = [(words: [UInt8], raw: [UInt8])](repeating: ([], []), count: segments.count)
        values.withUnsafeBufferPointer { v in
            outputs.withUnsafeMutableBufferPointer { out in
                let outP = out.baseAddress!, plansNow = plans
                parallelFor(segments.count) { s in
                    outP[s] = encodeSegment(layout: layout, segment: segments[s], plans: plansNow, syms: syms,
                                            values: v.baseAddress!, tables: tables, bits: bits)
                }
            }
        }
        var header = BitWriter()
        let tokens = Tokens.count(bits: bits)
        var start = ChannelPlan.bankStart
        for c in 0..<channels { plans[c].write(to: &header, channel: c, bits: bits, tokens: tokens, plane: n, format: format, start: &start) }
        var headerBytes = header.finish()
        // Decoders refuse more latents than `maximumLatents(payloadBytes:)`; extremely
        // compressible inputs (large constant latents) pad the header with zeros to stay within.
        let size = 16 + headerBytes.count + outputs.reduce(0) { $0 + $1.words.count + $1.raw.count + 8 }
        if channels * n > maximumLatents(payloadBytes: size) {
            let missing = (channels * n - WLCFile.baseLatentLimit + WLCFile.latentsPerPayloadByte - 1) / WLCFile.latentsPerPayloadByte - size
            headerBytes += [UInt8](repeating: 0, count: missing + 16)
        }
        var w = ByteWriter()
        w.byte(format)
        w.varint(UInt64(span))
        w.varint(UInt64(headerBytes.count))
        w.append(headerBytes)
        for o in outputs { w.varint(UInt64(o.words.count / 2)); w.varint(UInt64(o.raw.count)) }
        for o in outputs { w.append(o.words); w.append(o.raw) }
        return Data(w.bytes)
    }

    static func encodeSegment(layout: Layout, segment: (start: Int, count: Int), plans: [ChannelPlan],
                              syms: UnsafeMutablePointer<UInt32>, values: UnsafePointer<Int32>, tables: EncoderTables,
                              bits: Int) -> (words: [UInt8], raw: [UInt8]) {
        let n = layout.plane, off = layout.offset(segment.start)
        let segN = segment.count * (layout.oneD ? 1 : layout.cols)
        let coded = plans.indices.filter { plans[$0].kind == .coded }
        let capacity = coded.count * segN + 4
        let buffer = UnsafeMutablePointer<UInt16>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        var pos = capacity, xa = RANS.lower, xb = RANS.lower
        for c in coded.reversed() {
            Kernels.encode(syms + c * n + off, count: segN, tables: tables.encode + c * Buckets.count,
                           out: buffer, pos: &pos, xa: &xa, xb: &xb)
        }
        var words = [UInt8]()
        if !coded.isEmpty {
            // After the last (first) symbol, xa holds state 1 and xb state 0.
            pos -= 4
            buffer[pos] = UInt16(xb >> 16); buffer[pos + 1] = UInt16(xb & 0xFFFF)
            buffer[pos + 2] = UInt16(xa >> 16); buffer[pos + 3] = UInt16(xa & 0xFFFF)
            words = [UInt8](unsafeUninitializedCapacity: 2 * (capacity - pos)) { b, initialized in
                for i in pos..<capacity {
                    b[2 * (i - pos)] = UInt8(truncatingIfNeeded: buffer[i])
                    b[2 * (i - pos) + 1] = UInt8(truncatingIfNeeded: buffer[i] >> 8)
                }
                initialized = 2 * (capacity - pos)
            }
        }
        // Raw bits, LSB first, into a buffer sized for the worst case.
        let half = Int32(1 << (bits - 1))
        var capacityBits = 64
        for c in 0..<layout.channels {
            if plans[c].kind == .raw { capacityBits += segN * bits }
            if plans[c].kind == .coded && tables.maxToken[c] >= Int(Tokens.direct) { capacityBits += segN * 13 }
        }
        let sink = UnsafeMutablePointer<UInt32>.allocate(capacity: capacityBits / 32 + 2)
        defer { sink.deallocate() }
        var acc: UInt64 = 0, fill: UInt64 = 0, at = 0
        @inline(__always) func put(_ v: UInt32, _ n: UInt32) {
            acc |= UInt64(v) &<< fill
            fill &+= UInt64(n)
            if fill >= 32 {
                sink[at] = UInt32(truncatingIfNeeded: acc).littleEndian
                at &+= 1
                acc &>>= 32
                fill &-= 32
            }
        }
        for c in 0..<layout.channels {
            switch plans[c].kind {
            case .coded:
                guard tables.maxToken[c] >= Int(Tokens.direct) else { continue }
                let s = syms + c * n + off
                for i in 0..<segN {
                    let t = (s[i] &>> 16) & 0xFF
                    if t >= Tokens.direct {
                        let nb = Tokens.rawBits(t)
                        put(s[i] & ((1 &<< nb) &- 1), nb)
                    }
                }
            case .raw:
                let v = values + c * n + off
                for i in 0..<segN { put(UInt32(bitPattern: v[i] &+ half), UInt32(bits)) }
            case .constant:
                break
            }
        }
        let byteCount = at * 4 + Int((fill + 7) / 8)
        var rawBytes = [UInt8](unsafeUninitializedCapacity: byteCount + 2) { b, initialized in
            UnsafeMutableRawPointer(b.baseAddress!).copyMemory(from: sink, byteCount: at * 4)
            for k in 0..<Int((fill + 7) / 8) { b[at * 4 + k] = UInt8(truncatingIfNeeded: acc &>> UInt64(8 * k)) }
            initialized = byteCount
        }
        if !rawBytes.isEmpty {
            // Raw bits are not covered by the rANS end-state check: 16 bits of CRC-32 guard them.
            let check = WLCFile.crc(rawBytes[...])
            rawBytes += [UInt8(truncatingIfNeeded: check), UInt8(truncatingIfNeeded: check >> 8)]
        }
        return (words, rawBytes)
    }
}

/// A segment's zero-padded working planes: values and the tokens of the current and previous
/// channel (padding stays zero: every pass writes the interior only).
struct WorkPlanes {
    let vals: UnsafeMutablePointer<Int32>
    private let tokA: UnsafeMutablePointer<UInt8>
    private let tokB: UnsafeMutablePointer<UInt8>
    private let flip: UnsafeMutablePointer<Bool>

    init(_ geo: PlaneGeometry) {
        vals = .allocate(capacity: geo.area)
        vals.initialize(repeating: 0, count: geo.area)
        tokA = .allocate(capacity: geo.area)
        tokA.initialize(repeating: 0, count: geo.area)
        tokB = .allocate(capacity: geo.area)
        tokB.initialize(repeating: 0, count: geo.area)
        flip = .allocate(capacity: 1)
        flip.initialize(to: true)
    }

    var current: UnsafeMutablePointer<UInt8> { flip.pointee ? tokA : tokB }
    var previous: UnsafeMutablePointer<UInt8> { flip.pointee ? tokB : tokA }
    func swapTokens() { flip.pointee.toggle() }

    func free() {
        vals.deallocate(); tokA.deallocate(); tokB.deallocate(); flip.deallocate()
    }
}
