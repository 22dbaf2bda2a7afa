import WallocTensor

/// The rANS hot loops: interleaved 32-bit states with 16-bit words.
///
/// States live in `[2^15, 2^31)`; a symbol of frequency `f` at precision `P` is encoded as
/// `x' = ⌊x/f⌋·2^P + (x mod f) + cum`, after emitting 16 bits when `x ≥ f·2^(31−P)`. Four states
/// take symbols in turn (`i mod 4`) so consecutive updates overlap; they share one word stream
/// that the encoder fills backwards and the decoder reads forwards. The encoder's initial
/// states are `2^15`, so a decoder that ends anywhere else has read a corrupt stream.
enum RANSCore {
    static let lower: UInt32 = 1 << 15
    static let lanes = 4

    static func encode(_ u: [UInt16], shape: (Int, Int), alphabet: Int, thresholds t: (Int32, Int32, Int32),
                       tables: [CodingTable?]) -> [UInt16] {
        let n = u.count
        var residual = [UInt16](repeating: 0, count: n)
        var context = [UInt8](repeating: 0, count: n)
        let nb = Neighbourhood(width: shape.1, height: shape.0, half: Int32(alphabet / 2))
        let mask = Int32(alphabet - 1)
        u.withUnsafeBufferPointer { p in
            var i = 0
            for y in 0..<shape.0 {
                for x in 0..<shape.1 {
                    let (pred, act) = nb.predict(p.baseAddress!, i, x: x, y: y)
                    residual[i] = UInt16((Int32(p[i]) - pred) & mask)
                    context[i] = UInt8(contextIndex(act, t))
                    i += 1
                }
            }
        }
        var out = [UInt16](repeating: 0, count: 2 * n + 2 * lanes)
        var pos = out.count
        let empty = [UInt32](repeating: 0, count: alphabet)
        var infos = [[UInt32]](), precisions = [UInt32]()
        for k in 0..<LatentModel.contexts {
            infos.append(tables[k]?.symbolInfo ?? empty)
            precisions.append(tables[k]?.precision ?? 1)
        }
        infos[0].withUnsafeBufferPointer { i0 in infos[1].withUnsafeBufferPointer { i1 in
        infos[2].withUnsafeBufferPointer { i2 in infos[3].withUnsafeBufferPointer { i3 in
            let info = [i0.baseAddress!, i1.baseAddress!, i2.baseAddress!, i3.baseAddress!]
            out.withUnsafeMutableBufferPointer { o in
                residual.withUnsafeBufferPointer { r in
                    context.withUnsafeBufferPointer { c in
                        var x = (lower, lower, lower, lower)
                        var i = n - 1
                        @inline(__always) func put(_ state: inout UInt32, _ i: Int) {
                            let k = Int(c[i])
                            let e = info[k][Int(r[i])]
                            let f = e & 0xFFFF, cum = e >> 16, prec = precisions[k]
                            if state >= f << (31 - prec) {
                                pos -= 1
                                o[pos] = UInt16(truncatingIfNeeded: state)
                                state >>= 16
                            }
                            state = ((state / f) << prec) &+ (state % f) &+ cum
                        }
                        while i >= 0 {
                            switch i & 3 {
                            case 0: put(&x.0, i)
                            case 1: put(&x.1, i)
                            case 2: put(&x.2, i)
                            default: put(&x.3, i)
                            }
                            i -= 1
                        }
                        for s in [x.3, x.2, x.1, x.0] {
                            pos -= 2
                            o[pos] = UInt16(truncatingIfNeeded: s >> 16)
                            o[pos + 1] = UInt16(truncatingIfNeeded: s)
                        }
                    }
                }
            }
        } } } }
        return Array(out[pos...])
    }

    static func decode(_ bytes: [UInt8], wordsAt start: Int, wordCount: Int, count n: Int, shape: (Int, Int),
                       alphabet: Int, thresholds t: (Int32, Int32, Int32), tables: [CodingTable?]) throws -> [UInt16] {
        guard wordCount >= 2 * lanes else { throw WallocError("corrupt stream: rANS payload too short") }
        var words = [UInt16](repeating: 0, count: wordCount)
        for w in 0..<wordCount { words[w] = UInt16(bytes[start + 2 * w]) | UInt16(bytes[start + 2 * w + 1]) << 8 }
        var u = [UInt16](repeating: 0, count: n)
        let nb = Neighbourhood(width: shape.1, height: shape.0, half: Int32(alphabet / 2))
        let mask = Int32(alphabet - 1)
        // A context without a table decodes through an empty one and fails the "used" check.
        let emptySlots = [UInt64](repeating: 0, count: 2)
        var slotTables = [[UInt64]](), precisions = [UInt32](), present = [Bool]()
        for k in 0..<LatentModel.contexts {
            slotTables.append(tables[k]?.slots ?? emptySlots)
            precisions.append(tables[k]?.precision ?? 1)
            present.append(tables[k] != nil)
        }
        var failed = false
        var final = (UInt32(0), UInt32(0), UInt32(0), UInt32(0))
        var pos = 0
        slotTables[0].withUnsafeBufferPointer { s0 in slotTables[1].withUnsafeBufferPointer { s1 in
        slotTables[2].withUnsafeBufferPointer { s2 in slotTables[3].withUnsafeBufferPointer { s3 in
            let slots = [s0.baseAddress!, s1.baseAddress!, s2.baseAddress!, s3.baseAddress!]
            words.withUnsafeBufferPointer { wp in
                u.withUnsafeMutableBufferPointer { ub in
                    let w = wp.baseAddress!, up = ub.baseAddress!
                    func state(_ lane: Int) -> UInt32 { UInt32(w[2 * lane]) << 16 | UInt32(w[2 * lane + 1]) }
                    var x = (state(0), state(1), state(2), state(3))
                    pos = 2 * lanes
                    @inline(__always) func get(_ state: inout UInt32, _ i: Int, _ xx: Int, _ yy: Int) -> Bool {
                        let (pred, act) = nb.predict(UnsafePointer(up), i, x: xx, y: yy)
                        let k = contextIndex(act, t)
                        let prec = precisions[k]
                        guard present[k], state >= lower, state < 1 << 31 else { return false }
                        let e = slots[k][Int(state & ((1 << prec) - 1))]
                        let f = UInt32(truncatingIfNeeded: e >> 16) & 0xFFFF
                        let off = UInt32(truncatingIfNeeded: e >> 32)
                        state = f &* (state >> prec) &+ off
                        if state < lower {
                            guard pos < wordCount else { return false }
                            state = state << 16 | UInt32(w[pos])
                            pos += 1
                        }
                        up[i] = UInt16((Int32(e & 0xFFFF) + pred) & mask)
                        return true
                    }
                    var i = 0
                    outer: for yy in 0..<shape.0 {
                        for xx in 0..<shape.1 {
                            let ok: Bool
                            switch i & 3 {
                            case 0: ok = get(&x.0, i, xx, yy)
                            case 1: ok = get(&x.1, i, xx, yy)
                            case 2: ok = get(&x.2, i, xx, yy)
                            default: ok = get(&x.3, i, xx, yy)
                            }
                            if !ok { failed = true; break outer }
                            i += 1
                        }
                    }
                    final = x
                }
            }
        } } } }
        guard !failed, pos == wordCount, final == (lower, lower, lower, lower) else {
            throw WallocError("corrupt stream: the entropy-coded latents do not decode consistently")
        }
        return u
    }
}
