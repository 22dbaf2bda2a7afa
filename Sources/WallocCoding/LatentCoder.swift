import Foundation
import WallocTensor

/// Lossless coding of integer latent tensors `[C, H, W]` (images) or `[C, L]` (audio) with
/// context-modelled rANS. docs/entropy-coding.md describes the model and the payload layout.
public enum LatentCoder {
    /// First byte of every payload.
    static let formatVersion: UInt8 = 2
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
        let values = [Int32](unsafeUninitializedCapacity: y.count) { out, initialized in
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
    public static func encode(_ latents: Tensor, bits: Int, defaults: LatentModel? = nil) throws -> Data {
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
        for c in 0..<channels { plans[c].write(to: &header, channel: c, bits: bits, tokens: tokens) }
        var headerBytes = header.finish()
        // Decoders refuse more latents than `maximumLatents(payloadBytes:)`; extremely
        // compressible inputs (large constant latents) pad the header with zeros to stay within.
        let size = 16 + headerBytes.count + outputs.reduce(0) { $0 + $1.words.count + $1.raw.count + 8 }
        if channels * n > maximumLatents(payloadBytes: size) {
            let missing = (channels * n - WLCFile.baseLatentLimit + WLCFile.latentsPerPayloadByte - 1) / WLCFile.latentsPerPayloadByte - size
            headerBytes += [UInt8](repeating: 0, count: missing + 16)
        }
        var w = ByteWriter()
        w.byte(formatVersion)
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

    // MARK: decoding

    /// Decodes `encode`'s output for latents of `shape` (`[C, H, W]` or `[C, L]`). Every
    /// inconsistency is an error; memory is bounded by `shape` and the payload size.
    public static func decode(_ data: Data, shape: [Int], bits: Int, defaults: LatentModel? = nil) throws -> Tensor {
        _ = try alphabet(bits: bits)
        let layout = try self.layout(shape)
        let channels = layout.channels
        guard channels * layout.plane <= maximumLatents(payloadBytes: data.count) else {
            throw WallocError("corrupt stream: \(channels * layout.plane) latents declared for a \(data.count)-byte payload")
        }
        let bytes = [UInt8](data)
        var r = ByteReader(bytes)
        let version = try r.byte()
        guard version == formatVersion else {
            throw WallocError("corrupt stream: latent payload format \(version), this coder reads format \(formatVersion)")
        }
        let span = Int(try r.varint(max: UInt64(layout.extent)))
        guard span >= 1 else { throw WallocError("corrupt stream: segment size 0") }
        let headerLength = Int(try r.varint(max: UInt64(r.remaining)))
        let headerBytes = Array(try r.take(headerLength)) + [UInt8](repeating: 0, count: 8)
        let tokens = Tokens.count(bits: bits)
        let model = defaults.flatMap { $0.bits == bits && $0.channels == channels ? $0 : nil }
        var plans = [ChannelPlan]()
        try headerBytes.withUnsafeBufferPointer { hb in
            var br = BitReader(hb.baseAddress!, limitBits: headerLength * 8)
            for c in 0..<channels {
                plans.append(try ChannelPlan.read(from: &br, channel: c, bits: bits, tokens: tokens, hasModel: model != nil))
            }
            // What follows the plans (the last byte's spare bits, any padding) must be zero.
            while br.position < headerLength * 8 {
                guard try br.checkedRead(1) == 0 else { throw WallocError("corrupt stream: the coder header has the wrong length") }
            }
        }
        if defaults != nil && model == nil && plans.contains(where: { $0.sources.contains(.model) }) {
            throw WallocError("the stream needs default tables for \(channels) channels of \(bits) bits; the model's are for \(defaults!.channels) of \(defaults!.bits)")
        }
        let segmentCount = (layout.extent + span - 1) / span
        guard segmentCount <= r.remaining / 2 else { throw WallocError("corrupt stream: \(segmentCount) segments in \(r.remaining) bytes") }
        let segments = layout.segments(span: span)
        var index = [(wordStart: Int, words: Int, rawStart: Int, raw: Int)]()
        var sizes = [(Int, Int)]()
        for _ in segments {
            let words = Int(try r.varint(max: UInt64(r.remaining / 2)))
            let raw = Int(try r.varint(max: UInt64(r.remaining)))
            sizes.append((words, raw))
        }
        var at = r.position
        for (words, raw) in sizes {
            guard at + 2 * words + raw <= bytes.count else { throw WallocError("corrupt stream: segment sizes exceed the payload") }
            index.append((at, words, at + 2 * words, raw))
            at += 2 * words + raw
        }
        guard at == bytes.count else { throw WallocError("corrupt stream: \(bytes.count - at) unexpected bytes after the latent payload") }

        let tables = DecoderTables(plans: plans, bits: bits, model: model)
        defer { tables.free() }
        var ePlanes = [UnsafeMutablePointer<Int32>?](repeating: nil, count: channels)
        for p in plans where p.reference >= 0 && ePlanes[p.reference] == nil { ePlanes[p.reference] = .allocate(capacity: layout.plane) }
        defer { for p in ePlanes { p?.deallocate() } }
        var failures = [String?](repeating: nil, count: segments.count)
        let out = Tensor(uninitializedShape: shape) { ob in
            bytes.withUnsafeBufferPointer { bp in
                failures.withUnsafeMutableBufferPointer { fb in
                    let f = fb.baseAddress!, o = ob.baseAddress!, planes = ePlanes, plansNow = plans, idx = index
                    parallelFor(segments.count) { s in
                        f[s] = decodeSegment(layout: layout, segment: segments[s], plans: plansNow, bytes: bp.baseAddress!,
                                             index: idx[s], tables: tables, ePlanes: planes, out: o, bits: bits)
                    }
                }
            }
        }
        if let failure = failures.compactMap({ $0 }).first { throw WallocError(failure) }
        return out
    }

    /// Decodes one segment into `out`; the reason when it is corrupt.
    static func decodeSegment(layout: Layout, segment: (start: Int, count: Int), plans: [ChannelPlan], bytes: UnsafePointer<UInt8>,
                              index: (wordStart: Int, words: Int, rawStart: Int, raw: Int), tables: DecoderTables,
                              ePlanes: [UnsafeMutablePointer<Int32>?], out: UnsafeMutablePointer<Float>, bits: Int) -> String? {
        let geo = layout.geometry(segment.count)
        let n = layout.plane, off = layout.offset(segment.start)
        let segN = segment.count * (layout.oneD ? 1 : layout.cols)
        let half = Int32(1 << (bits - 1)), mask = Int32((1 << bits) - 1)
        let wordCapacity = index.words + RANS.block + 8
        let words = UnsafeMutablePointer<UInt16>.allocate(capacity: wordCapacity)
        words.initialize(repeating: 0, count: wordCapacity)
        for i in 0..<index.words {
            words[i] = UInt16(bytes[index.wordStart + 2 * i]) | UInt16(bytes[index.wordStart + 2 * i + 1]) << 8
        }
        // Raw bits end with 16 bits of their CRC-32.
        guard index.raw != 1 else { return "corrupt stream: the raw bits are truncated" }
        let rawCount = max(0, index.raw - 2)
        if rawCount > 0 {
            let check = WLCFile.crc(UnsafeBufferPointer(start: bytes + index.rawStart, count: rawCount))
            guard UInt16(bytes[index.rawStart + rawCount]) | UInt16(bytes[index.rawStart + rawCount + 1]) << 8 == UInt16(truncatingIfNeeded: check) else {
                return "corrupt stream: the raw bits fail their checksum"
            }
        }
        let rawCapacity = index.raw + 2 * RANS.block + 16
        let rawBytes = UnsafeMutablePointer<UInt8>.allocate(capacity: rawCapacity)
        rawBytes.initialize(repeating: 0, count: rawCapacity)
        rawBytes.update(from: bytes + index.rawStart, count: rawCount)
        let planes = WorkPlanes(geo)
        let values = UnsafeMutablePointer<Int32>.allocate(capacity: segN)
        let activity = UnsafeMutablePointer<UInt16>.allocate(capacity: geo.cols)
        let contexts = UnsafeMutablePointer<UnsafePointer<UInt8>>.allocate(capacity: DecoderTables.activities)
        defer {
            words.deallocate()
            rawBytes.deallocate()
            planes.free()
            values.deallocate()
            activity.deallocate()
            contexts.deallocate()
        }
        var raw = BitReader(UnsafePointer(rawBytes), limitBits: rawCount * 8)
        let anyCoded = plans.contains { $0.kind == .coded }
        var state = Kernels.Decoder(words: UnsafePointer(words), wordCount: index.words, pos: 0, xa: 0, xb: 0)
        if anyCoded {
            guard index.words >= 4 else { return "corrupt stream: rANS data too short" }
            state.xa = UInt32(words[0]) << 16 | UInt32(words[1])
            state.xb = UInt32(words[2]) << 16 | UInt32(words[3])
            state.pos = 4
            guard (RANS.lower..<(1 << 31)).contains(state.xa), (RANS.lower..<(1 << 31)).contains(state.xb) else {
                return "corrupt stream: invalid rANS state"
            }
        } else if index.words != 0 {
            return "corrupt stream: rANS data for channels that have none"
        }
        return Buckets.lookup.withUnsafeBufferPointer { lut -> String? in
            for c in 0..<layout.channels {
                planes.swapTokens()
                let plan = plans[c]
                let cross = plan.reference >= 0 ? CrossTerm(reference: ePlanes[plan.reference]! + off, coefficient: plan.coefficient) : nil
                let eOut = ePlanes[c].map { $0 + off }
                let dst = out + c * n + off
                if plan.kind == .coded {
                    tables.contexts(channel: c, into: contexts)
                    let pass = Kernels.DecodePass(geo: geo, vals: planes.vals, tok: planes.current, prevTok: planes.previous,
                                                  contexts: contexts, cross: cross, eOut: eOut,
                                                  out: dst, outStride: layout.cols, activity: activity, half: half, mask: mask)
                    guard Kernels.decode(predictor: plan.predictor, pass, state: &state, raw: &raw) else {
                        return "corrupt stream: the entropy-coded latents of channel \(c) do not decode consistently"
                    }
                    continue
                }
                if plan.kind == .raw {
                    guard raw.position + segN * bits <= raw.limitBits else { return "corrupt stream: raw latents of channel \(c) are truncated" }
                    for i in 0..<segN { values[i] = Int32(raw.read(UInt32(bits))) - half }
                } else {
                    values.update(repeating: plan.constant, count: segN)
                }
                for i in 0..<segN { dst[i] = Float(values[i]) }
                let pass = Kernels.TokenizePass(geo: geo, src: values, srcStride: layout.cols, vals: planes.vals, tok: planes.current,
                                                prevTok: planes.previous, cross: cross, eOut: eOut, syms: nil, hist: nil,
                                                activity: nil, lut: lut.baseAddress!, half: half, mask: mask)
                Kernels.tokenize(predictor: plan.kind == .constant ? 0 : plan.predictor, pass)
            }
            if anyCoded {
                guard state.pos == index.words, state.xa == RANS.lower, state.xb == RANS.lower else {
                    return "corrupt stream: the entropy-coded latents do not decode consistently"
                }
            }
            guard (raw.position + 7) / 8 == rawCount else { return "corrupt stream: the raw bits have the wrong length" }
            return nil
        }
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
