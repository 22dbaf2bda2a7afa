import Foundation
import WallocTensor

extension LatentCoder {
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
        guard (2...formatVersion).contains(version) else {
            throw WallocError("corrupt stream: latent payload format \(version), this coder reads formats 2 to \(formatVersion)")
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
            var start = ChannelPlan.bankStart
            for c in 0..<channels {
                plans.append(try ChannelPlan.read(from: &br, channel: c, bits: bits, tokens: tokens, plane: layout.plane, hasModel: model != nil,
                                                  format: version, start: &start))
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
        // Freed on every path, the early corrupt-stream returns below included (LeakSanitizer found
        // them leaking this buffer).
        defer { words.deallocate() }
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
