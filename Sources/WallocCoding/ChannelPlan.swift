import WallocTensor

/// Where a context bucket's table comes from.
enum TableSource: Equatable {
    /// No symbol of the channel falls in this bucket.
    case absent
    /// The parametric table `TableBank` index.
    case bank(Int)
    /// The model's default table for this channel and bucket.
    case model
    /// A table sent in the stream.
    case own([UInt32])
}

/// How one channel is coded: the stream header holds one plan per channel.
struct ChannelPlan: Equatable {
    enum Kind: UInt32 {
        /// rANS-coded residual tokens.
        case coded = 0
        /// Every value equal to `constant`.
        case constant = 1
        /// Values stored as `bits`-bit integers.
        case raw = 2
    }

    var kind: Kind = .coded
    var constant: Int32 = 0
    var predictor = 0
    /// Reference channel of the cross-channel term, or −1.
    var reference = -1
    var coefficient: Int32 = 0
    /// Buckets are merged in groups of `1 << shift` (shift 0...3: 16, 8, 4 or 2 contexts), so
    /// small inputs pay for fewer tables.
    var shift = 0
    /// Table source per group (`absent` outside the used range; entries past `groups` unused).
    var sources = [TableSource](repeating: .absent, count: Buckets.count)

    static let maximumShift = 3
    /// Planes of this many values or more never group buckets (format 4 then writes no shift).
    static let groupingPlaneLimit = 4096
    var groups: Int { Buckets.count >> shift }

    static let maximumCoefficient: Int32 = 64
    /// Bank index the header's first delta is taken from.
    static let bankStart = 24

    var usedRange: ClosedRange<Int>? {
        guard let lo = sources.firstIndex(where: { $0 != .absent }), let hi = sources.lastIndex(where: { $0 != .absent }) else { return nil }
        return lo...hi
    }

    // MARK: header bits

    /// 0: every bucket in range from the bank; 1: every bucket from the model; 2: mixed.
    private var tableMode: UInt32 {
        guard let r = usedRange else { return 0 }
        let s = sources[r]
        if s.allSatisfy({ if case .bank = $0 { return true }; return $0 == .absent }) { return 0 }
        if s.allSatisfy({ $0 == .model }) { return 1 }
        return 2
    }

    /// Writes the plan. `start` is the bank index the first bank delta is taken from: in format 4
    /// the first bank index of the last channel that had one (updated here), in earlier formats
    /// always `bankStart`.
    func write(to w: inout BitWriter, channel: Int, bits: Int, tokens: Int, plane: Int, format: UInt8, start: inout Int) {
        w.write(kind.rawValue, 2)
        if kind == .constant {
            // Format 3: signed Exp-Golomb (an all-zero channel costs 3 bits); format 2: `bits` bits.
            if format >= 3 { w.signedGolomb(constant) } else { w.write(UInt32(bitPattern: constant + Int32(1 << (bits - 1))), UInt32(bits)) }
            return
        }
        w.write(UInt32(predictor), 3)
        w.bit(reference >= 0)
        if reference >= 0 {
            w.golomb(UInt32(channel - 1 - reference))
            w.signedGolomb(coefficient)
        }
        guard kind == .coded, let range = usedRange else { return }
        if format >= 4 {
            // Format 4: no shift for large planes (always 0), the first group in Exp-Golomb.
            precondition(plane < ChannelPlan.groupingPlaneLimit || shift == 0, "buckets grouped on a large plane")
            if plane < ChannelPlan.groupingPlaneLimit { w.write(UInt32(shift), 2) }
            w.golomb(UInt32(range.lowerBound))
        } else {
            w.write(UInt32(shift), 2)
            w.write(UInt32(range.lowerBound), 4)
        }
        w.write(UInt32(range.upperBound), 4)
        let mode = tableMode
        w.write(mode, 2)
        var previous = format >= 4 ? start : ChannelPlan.bankStart
        var previousCode: UInt32?
        for b in range {
            let source = sources[b] == .absent ? .bank(previous) : sources[b]
            if mode == 2 {
                let code = ChannelPlan.sourceCode(source)
                if format >= 4 { ChannelPlan.writeSource(code, after: previousCode, to: &w) } else { w.write(code, 2) }
                previousCode = code
            }
            switch source {
            case .bank(let k):
                w.signedGolomb(Int32(k - previous))
                previous = k
            case .own(let freqs):
                let n = freqs.lastIndex { $0 > 0 }! + 1
                let width = UInt32(32 - freqs.max()!.leadingZeroBitCount)
                w.write(UInt32(n - 1), 6)
                w.write(width - 1, 4)
                for t in 0..<n { w.write(freqs[t], width) }
            case .model, .absent: break
            }
        }
        if format >= 4, let first = firstBank(start: start) { start = first }
    }

    /// The first bank index `write` puts in the stream (format 4's start for the next channel),
    /// or nil when the plan names no bank table.
    func firstBank(start: Int) -> Int? {
        guard kind == .coded, let range = usedRange, tableMode != 1 else { return nil }
        for b in range {
            switch sources[b] {
            case .bank(let k): return k
            case .absent: return start
            default: continue
            }
        }
        return nil
    }

    /// 0 bank (or absent), 1 model, 2 own.
    static func sourceCode(_ s: TableSource) -> UInt32 {
        switch s {
        case .bank, .absent: return 0
        case .model: return 1
        case .own: return 2
        }
    }

    /// Format 4's source of a group in mixed mode: 2 bits for the first group; then one bit
    /// "same as the group before", else one bit choosing between the other two (lower first).
    static func writeSource(_ code: UInt32, after previous: UInt32?, to w: inout BitWriter) {
        guard let previous else { w.write(code, 2); return }
        if code == previous { w.write(0, 1); return }
        w.write(1, 1)
        w.write(code == otherSource(0, after: previous) ? 0 : 1, 1)
    }

    /// The source a mixed-mode group's second bit names when it differs from `previous`: the
    /// lower (`bit` 0) or the higher (1) of the other two.
    static func otherSource(_ bit: UInt32, after previous: UInt32) -> UInt32 {
        bit == 0 ? (previous == 0 ? 1 : 0) : (previous == 2 ? 1 : 2)
    }

    /// Header bits of a mixed-mode source in format 4 (the encoder's estimate).
    static func sourceBits(_ code: Int, after previous: Int?) -> Int {
        guard let previous else { return 2 }
        return code == previous ? 1 : 2
    }

    /// Bits `write` takes for the table part of a bucket (for the encoder's choices).
    static func ownTableBits(_ freqs: [UInt32]) -> Int {
        let n = (freqs.lastIndex { $0 > 0 } ?? 0) + 1
        return 10 + n * (32 - freqs.max()!.leadingZeroBitCount)
    }

    /// Reads a plan `write` wrote (with the same `start`, updated the same way).
    static func read(from r: inout BitReader, channel: Int, bits: Int, tokens: Int, plane: Int, hasModel: Bool, format: UInt8,
                     start: inout Int) throws -> ChannelPlan {
        var plan = ChannelPlan()
        guard let kind = Kind(rawValue: try r.checkedRead(2)) else { throw WallocError("corrupt stream: unknown coding of channel \(channel)") }
        plan.kind = kind
        if kind == .constant {
            let half = Int32(1 << (bits - 1))
            if format >= 3 {
                plan.constant = try r.signedGolomb(max: half)
                guard plan.constant < half else { throw WallocError("corrupt stream: constant \(plan.constant) outside the \(bits)-bit range (channel \(channel))") }
            } else {
                plan.constant = Int32(try r.checkedRead(UInt32(bits))) - half
            }
            return plan
        }
        plan.predictor = Int(try r.checkedRead(3))
        guard plan.predictor < Predictors.count else { throw WallocError("corrupt stream: unknown predictor \(plan.predictor) (channel \(channel))") }
        if try r.checkedRead(1) == 1 {
            guard channel > 0 else { throw WallocError("corrupt stream: channel 0 refers to an earlier channel") }
            plan.reference = channel - 1 - Int(try r.golomb(max: UInt32(channel - 1)))
            plan.coefficient = try r.signedGolomb(max: maximumCoefficient)
        }
        guard kind == .coded else { return plan }
        let lo: Int
        if format >= 4 {
            plan.shift = plane < groupingPlaneLimit ? Int(try r.checkedRead(2)) : 0
            lo = Int(try r.golomb(max: 15))
        } else {
            plan.shift = Int(try r.checkedRead(2))
            lo = Int(try r.checkedRead(4))
        }
        let hi = Int(try r.checkedRead(4))
        guard lo <= hi, hi < plan.groups else { throw WallocError("corrupt stream: bad context range (channel \(channel))") }
        let mode = try r.checkedRead(2)
        guard mode <= 2 else { throw WallocError("corrupt stream: unknown table mode (channel \(channel))") }
        var previous = format >= 4 ? start : ChannelPlan.bankStart
        var previousKind: UInt32?
        for b in lo...hi {
            let kind: UInt32
            if mode != 2 {
                kind = mode
            } else if format >= 4, let p = previousKind {
                kind = try r.checkedRead(1) == 0 ? p : otherSource(try r.checkedRead(1), after: p)
            } else {
                kind = try r.checkedRead(2)
            }
            previousKind = kind
            if kind == 3 { throw WallocError("corrupt stream: unknown table source (channel \(channel))") }
            if kind == 1 && !hasModel {
                throw WallocError("the stream uses the model's default entropy tables; decode it with the model that encoded it (its entropy.json)")
            }
            switch kind {
            case 0:
                let k = previous + Int(try r.signedGolomb(max: Int32(TableBank.size)))
                guard (0..<TableBank.size).contains(k) else { throw WallocError("corrupt stream: table index \(k) (channel \(channel))") }
                plan.sources[b] = .bank(k)
                previous = k
            case 1:
                plan.sources[b] = .model
            default:
                let n = Int(try r.checkedRead(6)) + 1
                let width = try r.checkedRead(4) + 1
                guard n <= tokens, width <= 13 else { throw WallocError("corrupt stream: malformed table (channel \(channel))") }
                var freqs = [UInt32](repeating: 0, count: tokens)
                for t in 0..<n { freqs[t] = try r.checkedRead(width) }
                guard freqs.reduce(0, +) == RANS.total else { throw WallocError("corrupt stream: a table's frequencies do not sum to 2^12 (channel \(channel))") }
                plan.sources[b] = .own(freqs)
            }
        }
        if format >= 4, let first = plan.firstBank(start: start) { start = first }
        return plan
    }
}
