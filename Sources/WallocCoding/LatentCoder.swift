import Foundation
import WallocTensor

/// Default entropy model shipped with a codec: per latent channel, activity thresholds and one
/// frequency table per context, fitted on training latents. Every table covers the whole alphabet.
public struct LatentModel: Sendable, Codable, Equatable {
    public var bits: Int
    /// Per channel: the context thresholds (three, non-decreasing).
    public var thresholds: [[Int32]]
    /// Per channel: one table per context (four).
    public var tables: [[FrequencyTable]]

    public static let contexts = 4

    /// Fits default tables on latent tensors `[C, ...]` (each a signal's integer latents).
    public static func fit(latents: [Tensor], bits: Int) throws -> LatentModel {
        guard let first = latents.first else { throw WallocError("no latents to fit an entropy model on") }
        let alphabet = try LatentCoder.alphabet(bits: bits)
        guard alphabet <= 1 << FrequencyTable.maximumPrecision else {
            throw WallocError("default entropy tables need latent_bits <= 15, got \(bits)")
        }
        let channels = first.shape[0]
        var model = LatentModel(bits: bits, thresholds: [], tables: [])
        for ch in 0..<channels {
            var planes = [(symbols: [UInt16], shape: (Int, Int))]()
            for y in latents {
                guard y.shape[0] == channels else { throw WallocError("latent tensors have different channel counts") }
                planes.append((try LatentCoder.symbols(of: y, channel: ch, bits: bits), LatentCoder.plane(y.shape)))
            }
            var activities = [Int32]()
            for p in planes { activities += LatentCoder.activities(p.symbols, p.shape, alphabet: alphabet) }
            let t = LatentCoder.quantileThresholds(activities)
            var hists = [[UInt64]](repeating: [UInt64](repeating: 0, count: alphabet), count: contexts)
            for p in planes { LatentCoder.histograms(p.symbols, p.shape, alphabet: alphabet, thresholds: t, into: &hists) }
            let precision = alphabet <= 1024 ? 12 : FrequencyTable.maximumPrecision
            model.thresholds.append([t.0, t.1, t.2])
            model.tables.append(try hists.map { try FrequencyTable(histogram: $0, precision: precision, coverAll: true) })
        }
        return model
    }
}

/// Lossless coding of integer latent tensors with context-modelled interleaved rANS.
public enum LatentCoder {
    static func alphabet(bits: Int) throws -> Int {
        guard (1...16).contains(bits) else { throw WallocError("latent_bits must be 1...16, got \(bits)") }
        return 1 << bits
    }

    /// `[C, H, W]` -> (H, W); `[C, L]` -> (1, L).
    static func plane(_ shape: [Int]) -> (Int, Int) { shape.count == 3 ? (shape[1], shape[2]) : (1, shape[1]) }

    /// One channel's latents as symbols `v + 2^(bits−1)`, checking they are integers in range.
    static func symbols(of y: Tensor, channel: Int, bits: Int) throws -> [UInt16] {
        let half = 1 << (bits - 1)
        let n = y.count / y.shape[0]
        var out = [UInt16](repeating: 0, count: n)
        let lo = Float(-half), hi = Float(half - 1)
        try y.withUnsafeBufferPointer { b in
            let base = b.baseAddress! + channel * n
            for i in 0..<n {
                let v = base[i]
                guard v >= lo && v <= hi && v.rounded() == v else {
                    throw WallocError("latent value \(v) (channel \(channel), index \(i)) is not an integer in the \(bits)-bit range \(-half)...\(half - 1)")
                }
                out[i] = UInt16(Int(v) + half)
            }
        }
        return out
    }

    static func activities(_ u: [UInt16], _ shape: (Int, Int), alphabet: Int) -> [Int32] {
        let nb = Neighbourhood(width: shape.1, height: shape.0, half: Int32(alphabet / 2))
        var out = [Int32](repeating: 0, count: u.count)
        u.withUnsafeBufferPointer { p in
            var i = 0
            for y in 0..<shape.0 { for x in 0..<shape.1 { out[i] = nb.predict(p.baseAddress!, i, x: x, y: y).activity; i += 1 } }
        }
        return out
    }

    /// Thresholds at the activity quartiles (so the four contexts are about equally used).
    static func quantileThresholds(_ activities: [Int32]) -> (Int32, Int32, Int32) {
        if activities.isEmpty { return (0, 0, 0) }
        let s = activities.sorted()
        let q = { (f: Double) in s[min(s.count - 1, Int(f * Double(s.count)))] }
        return (q(0.25), max(q(0.25), q(0.5)), max(q(0.5), q(0.75)))
    }

    static func histograms(_ u: [UInt16], _ shape: (Int, Int), alphabet: Int, thresholds t: (Int32, Int32, Int32),
                           into hists: inout [[UInt64]]) {
        let nb = Neighbourhood(width: shape.1, height: shape.0, half: Int32(alphabet / 2))
        let mask = Int32(alphabet - 1)
        u.withUnsafeBufferPointer { p in
            var i = 0
            for y in 0..<shape.0 {
                for x in 0..<shape.1 {
                    let (pred, act) = nb.predict(p.baseAddress!, i, x: x, y: y)
                    hists[contextIndex(act, t)][Int((Int32(p[i]) - pred) & mask)] += 1
                    i += 1
                }
            }
        }
    }

    // MARK: encoding

    /// Codes integer latents `[C, H, W]` or `[C, L]` (float32 holding integers in the `bits`-bit
    /// range). With `defaults`, each context uses the model's table when that is smaller than
    /// sending its own. Channels are coded independently (in parallel).
    public static func encode(_ latents: Tensor, bits: Int, defaults: LatentModel? = nil) throws -> Data {
        let alphabet = try alphabet(bits: bits)
        guard latents.rank == 2 || latents.rank == 3, latents.shape.allSatisfy({ $0 > 0 }) else {
            throw WallocError("latents must be [C, H, W] or [C, L] with non-zero sizes, got \(latents.shape)")
        }
        let channels = latents.shape[0]
        if let d = defaults {
            guard d.bits == bits, d.tables.count == channels, d.thresholds.count == channels else {
                throw WallocError("the default entropy model is for \(d.tables.count) channels of \(d.bits) bits, the latents have \(channels) of \(bits)")
            }
        }
        var symbols = [[UInt16]]()
        for ch in 0..<channels { symbols.append(try self.symbols(of: latents, channel: ch, bits: bits)) }
        let shape = plane(latents.shape)
        var streams = [[UInt8]](repeating: [], count: channels)
        streams.withUnsafeMutableBufferPointer { out in
            let outP = out.baseAddress!
            parallelFor(channels) { ch in
                let d = defaults.map { (thresholds: $0.thresholds[ch], tables: $0.tables[ch]) }
                outP[ch] = encodeChannel(symbols[ch], shape: shape, alphabet: alphabet, defaults: d)
            }
        }
        var w = ByteWriter()
        for s in streams { w.varint(UInt64(s.count)); w.append(s) }
        return Data(w.bytes)
    }

    static func encodeChannel(_ u: [UInt16], shape: (Int, Int), alphabet: Int,
                              defaults: (thresholds: [Int32], tables: [FrequencyTable])?) -> [UInt8] {
        var w = ByteWriter()
        if let v = u.first, u.allSatisfy({ $0 == v }) {
            w.byte(1)
            w.varint(UInt64(v))
            return w.bytes
        }
        let t: (Int32, Int32, Int32)
        if let d = defaults { t = (d.thresholds[0], d.thresholds[1], d.thresholds[2]) } else {
            t = quantileThresholds(activities(u, shape, alphabet: alphabet))
        }
        var hists = [[UInt64]](repeating: [UInt64](repeating: 0, count: alphabet), count: LatentModel.contexts)
        histograms(u, shape, alphabet: alphabet, thresholds: t, into: &hists)
        // Per context: the default table or our own, whichever codes it in fewer bits.
        var tables = [FrequencyTable?]()
        var own = [Bool]()
        for (k, h) in hists.enumerated() {
            let used = h.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
            if used == 0 { tables.append(nil); own.append(false); continue }
            var best: FrequencyTable?, bestBits = Double.infinity, bestOwn = true
            if used <= 1 << FrequencyTable.maximumPrecision,
               let mine = try? FrequencyTable(histogram: h, precision: used <= 2048 ? 12 : FrequencyTable.maximumPrecision, coverAll: false),
               let bits = mine.cost(of: h) {
                var tw = ByteWriter(); mine.write(to: &tw)
                best = mine; bestBits = bits + Double(8 * tw.bytes.count)
            }
            if let d = defaults?.tables[k], let bits = d.cost(of: h), bits < bestBits {
                best = d; bestBits = bits; bestOwn = false
            }
            guard let chosen = best else {
                // More distinct symbols than any table holds: store the symbols as they are.
                var raw = ByteWriter()
                raw.byte(2)
                for s in u { raw.u16(s) }
                return raw.bytes
            }
            tables.append(chosen); own.append(bestOwn)
        }
        w.byte(0)
        w.varint(UInt64(t.0)); w.varint(UInt64(t.1 - t.0)); w.varint(UInt64(t.2 - t.1))
        for k in 0..<LatentModel.contexts {
            guard let table = tables[k] else { w.byte(0); continue }
            if own[k] { w.byte(1); table.write(to: &w) } else { w.byte(2) }
        }
        let coding = tables.map { $0.map { CodingTable($0, alphabet: alphabet) } }
        let words = RANSCore.encode(u, shape: shape, alphabet: alphabet, thresholds: t, tables: coding)
        w.varint(UInt64(words.count))
        for word in words { w.u16(word) }
        return w.bytes
    }

    // MARK: decoding

    /// Decodes `encode`'s output for latents of `shape` (`[C, H, W]` or `[C, L]`). Every
    /// inconsistency is an error; memory is bounded by `shape`, which the caller bounds.
    public static func decode(_ data: Data, shape: [Int], bits: Int, defaults: LatentModel? = nil) throws -> Tensor {
        let alphabet = try alphabet(bits: bits)
        guard shape.count == 2 || shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw WallocError("latent shape \(shape) is not [C, H, W] or [C, L] with positive sizes")
        }
        let channels = shape[0]
        let plane = self.plane(shape)
        let (n, overflow) = plane.0.multipliedReportingOverflow(by: plane.1)
        guard !overflow else { throw WallocError("latent shape \(shape) is too large") }
        let bytes = [UInt8](data)
        var r = ByteReader(bytes)
        var ranges = [Range<Int>]()
        for _ in 0..<channels {
            let len = Int(try r.varint(max: UInt64(r.remaining)))
            let start = r.position
            _ = try r.take(len)
            ranges.append(start..<(start + len))
        }
        guard r.remaining == 0 else { throw WallocError("corrupt stream: \(r.remaining) unexpected bytes after the latent payload") }
        var out = Tensor(zeros: shape)
        var failures = [String?](repeating: nil, count: channels)
        let half = Float(alphabet / 2)
        out.withUnsafeMutableBufferPointer { ob in
            failures.withUnsafeMutableBufferPointer { fb in
                let o = ob.baseAddress!, f = fb.baseAddress!
                parallelFor(channels) { ch in
                    do {
                        let d = defaults.flatMap { ch < $0.tables.count ? (thresholds: $0.thresholds[ch], tables: $0.tables[ch]) : nil }
                        let u = try decodeChannel(bytes, ranges[ch], count: n, shape: plane, alphabet: alphabet, defaults: d,
                                                  hasDefaults: defaults != nil)
                        for i in 0..<n { o[ch * n + i] = Float(u[i]) - half }
                    } catch let e as WallocError {
                        f[ch] = "channel \(ch): \(e.message)"
                    } catch {
                        f[ch] = "channel \(ch): \(error)"
                    }
                }
            }
        }
        if let failure = failures.compactMap({ $0 }).first { throw WallocError(failure) }
        return out
    }

    static func decodeChannel(_ bytes: [UInt8], _ range: Range<Int>, count n: Int, shape: (Int, Int), alphabet: Int,
                              defaults: (thresholds: [Int32], tables: [FrequencyTable])?, hasDefaults: Bool) throws -> [UInt16] {
        var r = ByteReader(bytes, from: range.lowerBound, to: range.upperBound)
        switch try r.byte() {
        case 1:
            let v = try r.varint(max: UInt64(alphabet - 1))
            guard r.remaining == 0 else { throw WallocError("corrupt stream: trailing bytes after a constant channel") }
            return [UInt16](repeating: UInt16(v), count: n)
        case 2:
            try r.need(2 * n)
            guard r.remaining == 2 * n else { throw WallocError("corrupt stream: raw channel has the wrong length") }
            var u = [UInt16](repeating: 0, count: n)
            for i in 0..<n {
                u[i] = try r.u16()
                guard Int(u[i]) < alphabet else { throw WallocError("corrupt stream: symbol outside the alphabet") }
            }
            return u
        case 0:
            break
        case let m:
            throw WallocError("corrupt stream: unknown channel mode \(m)")
        }
        let t0 = try r.varint(max: UInt64(Int32.max / 4)), d1 = try r.varint(max: UInt64(Int32.max / 4)), d2 = try r.varint(max: UInt64(Int32.max / 4))
        let t = (Int32(t0), Int32(t0 + d1), Int32(t0 + d1 + d2))
        var tables = [FrequencyTable?]()
        for k in 0..<LatentModel.contexts {
            switch try r.byte() {
            case 0: tables.append(nil)
            case 1: tables.append(try FrequencyTable.read(from: &r, alphabet: alphabet))
            case 2:
                guard let d = defaults else {
                    throw WallocError(hasDefaults ? "the stream needs default tables the model does not have"
                                                  : "the stream uses the model's default entropy tables; decode it with that model")
                }
                guard d.thresholds.count == 3, (d.thresholds[0], d.thresholds[1], d.thresholds[2]) == t else {
                    throw WallocError("the stream's contexts do not match the model's default entropy tables")
                }
                tables.append(d.tables[k])
            case let s: throw WallocError("corrupt stream: unknown table source \(s)")
            }
        }
        let words = Int(try r.varint(max: UInt64(r.remaining / 2)))
        guard r.remaining == 2 * words else { throw WallocError("corrupt stream: payload length does not match its word count") }
        let start = r.position
        let coding = tables.map { $0.map { CodingTable($0, alphabet: alphabet) } }
        return try RANSCore.decode(bytes, wordsAt: start, wordCount: words, count: n, shape: shape, alphabet: alphabet,
                                   thresholds: t, tables: coding)
    }
}
