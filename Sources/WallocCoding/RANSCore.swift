/// rANS constants: 32-bit states in [2^15, 2^31), 16-bit words, 12-bit frequencies.
enum RANS {
    static let precision: UInt32 = 12
    static let total: UInt32 = 1 << precision
    static let lowerBits: UInt32 = 15
    static let lower: UInt32 = 1 << lowerBits
    /// Symbols between the decoder's overrun checks (its word and raw-bit buffers are padded
    /// by this many reads).
    static let block = 4096
}

/// Cross-channel term: `(coefficient · e_ref + 8) >> 4`, where `e_ref` is the reference channel's
/// spatial residual at the same position.
struct CrossTerm {
    let reference: UnsafePointer<Int32>
    let coefficient: Int32
    @inline(__always) func value(_ i: Int) -> Int32 { (coefficient &* reference[i] &+ 8) >> 4 }
}

/// The per-channel passes over one segment's working planes.
enum Kernels {
    /// Inputs and outputs of the tokenising pass over one channel of a segment.
    struct TokenizePass {
        var geo: PlaneGeometry
        /// `geo.rows` rows of `geo.cols` values, rows `srcStride` apart.
        var src: UnsafePointer<Int32>
        var srcStride: Int
        var vals: UnsafeMutablePointer<Int32>
        var tok: UnsafeMutablePointer<UInt8>
        var prevTok: UnsafePointer<UInt8>
        var cross: CrossTerm?
        var eOut: UnsafeMutablePointer<Int32>?
        var syms: UnsafeMutablePointer<UInt32>?
        var hist: UnsafeMutablePointer<UInt32>?
        /// Scratch row of `cols` activities (with `syms`).
        var activity: UnsafeMutablePointer<UInt16>?
        var lut: UnsafePointer<UInt8>
        var half: Int32
        var mask: Int32
    }

    /// Encoder pass (and decoder pass for raw and constant channels): predicts the values,
    /// writes the residual tokens to `tok` and, when given, the packed symbols
    /// `u | token << 16 | bucket << 24` to `syms`, counts `bucket · 64 + token` in `hist`
    /// (two sets of 1024 counters `histogramStride` apart, for even and odd columns), and
    /// stores spatial residuals in `eOut`.
    static func tokenize(predictor: Int, _ pass: TokenizePass) {
        if pass.syms != nil && pass.hist != nil {
            pass.geo.oneD ? tokenize(Plane1D.self, Counting.self, predictor: predictor, pass)
                          : tokenize(Plane2D.self, Counting.self, predictor: predictor, pass)
        } else {
            pass.geo.oneD ? tokenize(Plane1D.self, TokensOnly.self, predictor: predictor, pass)
                          : tokenize(Plane2D.self, TokensOnly.self, predictor: predictor, pass)
        }
    }

    static func tokenize<G: Neighbours, M: PassMode>(_: G.Type, _: M.Type, predictor: Int, _ pass: TokenizePass) {
        switch predictor {
        case 0: tokenize(PredictZero.self, G.self, M.self, pass)
        case 1: tokenize(PredictA.self, G.self, M.self, pass)
        case 2: tokenize(PredictB.self, G.self, M.self, pass)
        case 3: tokenize(PredictMedian.self, G.self, M.self, pass)
        case 4: tokenize(PredictAverage.self, G.self, M.self, pass)
        case 5: tokenize(PredictGradient.self, G.self, M.self, pass)
        default: tokenize(PredictExtrapolate.self, G.self, M.self, pass)
        }
    }

    /// Counters between the two interleaved histograms: 1024 plus a cache line, so the copies
    /// do not alias modulo 4 KiB (which would make the CPU serialise their updates).
    static let histogramStride = Buckets.count * 64 + 16

    static func tokenize<P: Predictor, G: Neighbours, M: PassMode>(_: P.Type, _: G.Type, _: M.Type, _ pass: TokenizePass) {
        let geo = pass.geo, lut = pass.lut
        let half = pass.half, mask = pass.mask, cols = geo.cols, stride = geo.stride
        // Without counting, `hist` is never dereferenced and symbols go to a scratch row.
        let hist = pass.hist ?? UnsafeMutablePointer(bitPattern: 64)!
        let scratch: UnsafeMutablePointer<UInt32>? = M.counts ? nil : .allocate(capacity: cols)
        defer { scratch?.deallocate() }
        let half8 = SIMD8<Int32>(repeating: half), mask8 = SIMD8<Int32>(repeating: mask)
        let one8 = SIMD8<Int32>(repeating: 1), two8 = SIMD8<Int32>(repeating: 2), three8 = SIMD8<Int32>(repeating: 3)
        let thirtyOne8 = SIMD8<Int32>(repeating: 31), bias8 = SIMD8<Int32>(repeating: 127)
        let direct8 = SIMD8<Int32>(repeating: Int32(Tokens.direct)), eight8 = SIMD8<Int32>(repeating: 8)
        let coefficient = pass.cross?.coefficient ?? 0, coefficient8 = SIMD8<Int32>(repeating: coefficient)
        for y in 0..<geo.rows {
            let o = geo.origin(y)
            let vRow = pass.vals + o, tRow = pass.tok + o
            vRow.update(from: pass.src + y * pass.srcStride, count: cols)
            let vAbove = UnsafePointer(G.up ? vRow - stride : vRow), tAbove = UnsafePointer(G.up ? tRow - stride : tRow)
            let tPrev = pass.prevTok + o
            let eRow = pass.eOut.map { $0 + y * cols }
            let crossRow = pass.cross.map { $0.reference + y * cols }
            let symRow = M.counts ? pass.syms! + y * cols : scratch!
            // Residuals, tokens and raw values (`u | token << 16`), eight at a time.
            var x = 0
            while x + 8 <= cols {
                @inline(__always) func load(_ p: UnsafePointer<Int32>) -> SIMD8<Int32> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Int32>.self) }
                let v = load(vRow + x)
                let pred = P.predict(load(vRow + x - 1), load(vAbove + x + G.b), load(vAbove + x + G.c))
                let e = ((v &- pred &+ half8) & mask8) &- half8
                if let eRow { UnsafeMutableRawPointer(eRow + x).storeBytes(of: e, as: SIMD8<Int32>.self) }
                var r = e
                if let crossRow {
                    let xt = (coefficient8 &* load(crossRow + x) &+ eight8) &>> 4
                    r = ((e &- xt &+ half8) & mask8) &- half8
                }
                // Zigzag, and the token: floor(log2(u)) from the float exponent (exact below
                // 2^24). Signed lanes and vector operands keep every operation a vector one.
                let u = (r &<< 1) ^ (r &>> 31)
                let ex = (unsafeBitCast(SIMD8<Float>(u | one8), to: SIMD8<Int32>.self) &>> 23) &- bias8
                let large = (ex &<< 2) &+ ((u &>> ((ex &- two8) & thirtyOne8)) & three8)
                let t = large.replacing(with: u, where: u .< direct8)
                UnsafeMutableRawPointer(tRow + x).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: t), as: SIMD8<UInt8>.self)
                UnsafeMutableRawPointer(symRow + x).storeBytes(of: u | t &<< 16, as: SIMD8<Int32>.self)
                x &+= 8
            }
            while x < cols {
                let e = wrap(vRow[x] &- P.predict(vRow[x - 1], vAbove[x &+ G.b], vAbove[x &+ G.c]), half: half, mask: mask)
                if let eRow { eRow[x] = e }
                var r = e
                if let crossRow { r = wrap(e &- ((coefficient &* crossRow[x] &+ 8) >> 4), half: half, mask: mask) }
                let u = Tokens.zigzag(r)
                let t = Tokens.token(u)
                tRow[x] = UInt8(truncatingIfNeeded: t)
                symRow[x] = u | t &<< 16
                x &+= 1
            }
            guard M.counts else { continue }
            // Contexts, packed symbols and the histograms. In 1D, b/c/d are this row's own
            // earlier tokens, written above, so the activity is computed after the tokens.
            aboveActivity(G.self, tAbove: tAbove, tPrev: tPrev, cols: cols, into: pass.activity!)
            let above = pass.activity!
            var left = Int(tRow[-1])
            for x in 0..<cols {
                let t = Int(tRow[x])
                let s = 2 &* left &+ Int(above[x])
                let b = Int(lut[s])
                symRow[x] |= UInt32(truncatingIfNeeded: b &<< 24)
                // Two interleaved histograms, so runs of one symbol do not serialise on a
                // single counter.
                hist[(x & 1) &* histogramStride &+ (b &<< 6 | t)] &+= 1
                left = t
            }
        }
    }

    /// `2 t_b + t_c + t_d + t_x` for every column of a row (the part of the activity that does
    /// not depend on the row's own tokens). A plain loop, which the compiler vectorises.
    @inline(__always)
    static func aboveActivity<G: Neighbours>(_: G.Type, tAbove: UnsafePointer<UInt8>, tPrev: UnsafePointer<UInt8>, cols: Int,
                                             into out: UnsafeMutablePointer<UInt16>) {
        let b = tAbove + G.b, c = tAbove + G.c, d = tAbove + G.d
        for x in 0..<cols {
            out[x] = (UInt16(b[x]) &<< 1) &+ UInt16(c[x]) &+ UInt16(d[x]) &+ UInt16(tPrev[x])
        }
    }

    /// rANS-encodes packed symbols backwards (two interleaved states; symbol j of the segment
    /// uses state j & 1), emitting words downwards from `out + pos`.
    static func encode(_ syms: UnsafePointer<UInt32>, count n: Int, tables: UnsafePointer<UnsafePointer<EncodeSymbol>>,
                       out: UnsafeMutablePointer<UInt16>, pos: inout Int, xa: inout UInt32, xb: inout UInt32) {
        var a = xa, b = xb, p = pos
        var i = n - 1
        while i >= 0 {
            let s = syms[i]
            let sym = tables[Int(s >> 24)][Int((s >> 16) & 0xFF)]
            // Branch-free renormalisation: the word is always stored, and kept when due.
            let flush = a >= sym.xMax
            out[p &- 1] = UInt16(truncatingIfNeeded: a)
            p &-= flush ? 1 : 0
            a = flush ? a &>> 16 : a
            let q = UInt32(truncatingIfNeeded: (UInt64(a) &* UInt64(sym.reciprocal)) &>> 32) &>> UInt32(sym.shift)
            a = a &+ sym.bias &+ q &* UInt32(sym.complement)
            swap(&a, &b)
            i &-= 1
        }
        xa = a; xb = b; pos = p
    }

    /// Decoder state of one segment.
    struct Decoder {
        let words: UnsafePointer<UInt16>
        let wordCount: Int
        var pos: Int
        var xa: UInt32
        var xb: UInt32
        /// OR of every table entry used: bit 31 set means a context without a table was hit.
        var flags: UInt32 = 0
    }

    /// Inputs and outputs of decoding one channel of a segment.
    struct DecodePass {
        var geo: PlaneGeometry
        var vals: UnsafeMutablePointer<Int32>
        var tok: UnsafeMutablePointer<UInt8>
        var prevTok: UnsafePointer<UInt8>
        /// Decoding table of each activity value.
        var contexts: UnsafePointer<UnsafePointer<UInt8>>
        var cross: CrossTerm?
        var eOut: UnsafeMutablePointer<Int32>?
        var out: UnsafeMutablePointer<Float>
        var outStride: Int
        /// Scratch row of `cols` activities.
        var activity: UnsafeMutablePointer<UInt16>
        var half: Int32
        var mask: Int32
    }

    /// Decodes one channel of a segment; false when the stream is found corrupt.
    static func decode(predictor: Int, _ pass: DecodePass, state: inout Decoder, raw: inout BitReader) -> Bool {
        pass.geo.oneD ? decode(Plane1D.self, predictor: predictor, pass, state: &state, raw: &raw)
                      : decode(Plane2D.self, predictor: predictor, pass, state: &state, raw: &raw)
    }

    static func decode<G: Neighbours>(_: G.Type, predictor: Int, _ pass: DecodePass, state: inout Decoder, raw: inout BitReader) -> Bool {
        switch predictor {
        case 0: return decode(PredictZero.self, G.self, pass, state: &state, raw: &raw)
        case 1: return decode(PredictA.self, G.self, pass, state: &state, raw: &raw)
        case 2: return decode(PredictB.self, G.self, pass, state: &state, raw: &raw)
        case 3: return decode(PredictMedian.self, G.self, pass, state: &state, raw: &raw)
        case 4: return decode(PredictAverage.self, G.self, pass, state: &state, raw: &raw)
        case 5: return decode(PredictGradient.self, G.self, pass, state: &state, raw: &raw)
        default: return decode(PredictExtrapolate.self, G.self, pass, state: &state, raw: &raw)
        }
    }

    static func decode<P: Predictor, G: Neighbours>(_: P.Type, _: G.Type, _ pass: DecodePass, state: inout Decoder,
                                                    raw: inout BitReader) -> Bool {
        let geo = pass.geo, contexts = pass.contexts
        let half = pass.half, mask = pass.mask, cols = geo.cols, stride = geo.stride
        let words = state.words, wordCount = state.wordCount
        var a = state.xa, b = state.xb, pos = state.pos, flags = state.flags
        var ok = true
        rows: for y in 0..<geo.rows {
            let o = geo.origin(y)
            let vRow = pass.vals + o, tRow = pass.tok + o
            let vAbove = UnsafePointer(G.up ? vRow - stride : vRow), tAbove = UnsafePointer(G.up ? tRow - stride : tRow)
            let tPrev = pass.prevTok + o
            let eRow = pass.eOut.map { $0 + y * cols }
            let crossRow = pass.cross.map { $0.reference + y * cols }, coefficient = pass.cross?.coefficient ?? 0
            let outRow = pass.out + y * pass.outStride
            let above = pass.activity
            // Images: the activity from the row above and the previous channel, for the whole row.
            if G.up { aboveActivity(G.self, tAbove: tAbove, tPrev: tPrev, cols: cols, into: above) }
            var left = Int(tRow[-1]), leftValue = vRow[-1]
            var x0 = 0
            while x0 < cols {
                let x1 = min(cols, x0 + RANS.block)
                for x in x0..<x1 {
                    let s = G.up ? 2 &* left &+ Int(above[x])
                                 : 2 &* (left &+ Int(tAbove[x &+ G.b])) &+ Int(tAbove[x &+ G.c]) &+ Int(tAbove[x &+ G.d]) &+ Int(tPrev[x])
                    let table = contexts[s]
                    let slot = a & (RANS.total - 1)
                    let t = UInt32(table[Int(slot)])
                    flags |= t
                    let info = UnsafeRawPointer(table + Int(RANS.total)).load(fromByteOffset: Int(t & 63) &* 4, as: UInt32.self)
                    a = (info & 0x1FFF) &* (a >> RANS.precision) &+ slot &- (info >> 16)
                    // Branch-free renormalisation (the word buffer is padded).
                    let refill = a < RANS.lower
                    let w = UInt32(words[pos])
                    a = refill ? a &<< 16 | w : a
                    pos &+= refill ? 1 : 0
                    swap(&a, &b)
                    let token = t & 63
                    tRow[x] = UInt8(truncatingIfNeeded: token)
                    left = Int(token)
                    var u = token
                    if token >= Tokens.direct { u = Tokens.join(token, raw: raw.read(Tokens.rawBits(token))) }
                    var r = Tokens.unzigzag(u)
                    if let crossRow { r = wrap(r &+ ((coefficient &* crossRow[x] &+ 8) >> 4), half: half, mask: mask) }
                    if let eRow { eRow[x] = r }
                    let v = wrap(P.predict(leftValue, vAbove[x &+ G.b], vAbove[x &+ G.c]) &+ r, half: half, mask: mask)
                    vRow[x] = v
                    leftValue = v
                }
                // The block's values as floats (vectorised, off the serial path).
                for x in x0..<x1 { outRow[x] = Float(vRow[x]) }
                if pos > wordCount || raw.overrun || flags & 128 != 0 { ok = false; break rows }
                x0 = x1
            }
        }
        state.xa = a; state.xb = b; state.pos = pos; state.flags = flags
        return ok
    }
}

/// Whether the tokenising pass produces symbols and histograms (encoder) or tokens only.
protocol PassMode { static var counts: Bool { get } }
enum Counting: PassMode { static var counts: Bool { true } }
enum TokensOnly: PassMode { static var counts: Bool { false } }

/// Where the neighbours b, c, d of a symbol lie relative to `above` (the previous row for
/// images, the current row for audio) at the symbol's column.
protocol Neighbours {
    static var up: Bool { get }
    static var b: Int { get }
    static var c: Int { get }
    static var d: Int { get }
}

enum Plane2D: Neighbours {
    static var up: Bool { true }
    static var b: Int { 0 }
    static var c: Int { -1 }
    static var d: Int { 1 }
}

enum Plane1D: Neighbours {
    static var up: Bool { false }
    static var b: Int { -2 }
    static var c: Int { -3 }
    static var d: Int { -4 }
}
