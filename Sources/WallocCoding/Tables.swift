import Foundation
import WallocTensor

/// Bits of the signed Exp-Golomb code of `v`.
func golombLength(_ v: Int) -> Int {
    let z = UInt32(Tokens.zigzag(Int32(v)))
    return 2 * (31 - (z + 1).leadingZeroBitCount) + 1
}

/// The encoder's table choice per channel and bucket, and the resulting rANS symbols.
struct EncoderTables: @unchecked Sendable {
    /// `channel · 16 + bucket` → the symbols of its table.
    let encode: UnsafeMutablePointer<UnsafePointer<EncodeSymbol>>
    /// Largest token per channel.
    let maxToken: [Int]
    private let owned: [UnsafeMutablePointer<EncodeSymbol>]

    /// Chooses, per channel, how to group its buckets and the cheapest way to describe the
    /// groups' tables (all from the parametric bank, all from the model, or each group its
    /// cheapest of bank, model and its own table), and switches channels to raw storage when
    /// coding would not pay. Updates `plans`.
    init(plans: inout [ChannelPlan], hist: UnsafePointer<UInt32>, plane n: Int, bits: Int, defaults: LatentModel?) throws {
        let channels = plans.count
        let count = Tokens.count(bits: bits)
        let bank = TableBank.shared(bits: bits)
        let model = defaults?.coding()
        var maxToken = [Int](repeating: 0, count: channels)
        var owned = [UnsafeMutablePointer<EncodeSymbol>]()
        let encode = UnsafeMutablePointer<UnsafePointer<EncodeSymbol>>.allocate(capacity: channels * Buckets.count)
        encode.initialize(repeating: UnsafePointer(bank.encode), count: channels * Buckets.count)
        for c in 0..<channels where plans[c].kind != .constant {
            let h = hist + c * LatentCoder.histogramSize
            var rawBits = 0.0, top = 0
            for b in 0..<Buckets.count {
                for t in 0..<count where h[b * 64 + t] > 0 {
                    rawBits += Double(h[b * 64 + t]) * Double(Tokens.rawBits(UInt32(t)))
                    top = max(top, t)
                }
            }
            maxToken[c] = top
            var best: (bits: Double, shift: Int, sources: [TableSource])?
            for shift in 0...ChannelPlan.maximumShift {
                let option = try EncoderTables.choose(h, count: count, shift: shift, bank: bank,
                                                      model: shift == 0 ? model.map { ($0, c) } : nil)
                if best == nil || option.bits < best!.bits { best = (option.bits, shift, option.sources) }
            }
            guard let chosen = best, chosen.sources.contains(where: { $0 != .absent }) else { continue }
            if chosen.bits + rawBits + 24 >= Double(n * bits) {
                plans[c].kind = .raw
                continue
            }
            plans[c].shift = chosen.shift
            plans[c].sources = chosen.sources
            for b in 0..<Buckets.count {
                let slot = encode + c * Buckets.count + b
                let g = b >> chosen.shift
                switch chosen.sources[g] {
                case .bank(let k): slot.pointee = UnsafePointer(bank.encode + k * Tokens.maximumCount)
                case .model: slot.pointee = UnsafePointer(model!.encode + (c * Buckets.count + b) * Tokens.maximumCount)
                case .own(let freqs):
                    if b & ((1 << chosen.shift) - 1) == 0 {
                        let syms = UnsafeMutablePointer<EncodeSymbol>.allocate(capacity: Tokens.maximumCount)
                        freqs.withUnsafeBufferPointer { CodingTables.buildEncode($0.baseAddress!, count: count, into: syms) }
                        owned.append(syms)
                    }
                    slot.pointee = UnsafePointer(owned.last!)
                case .absent: break
                }
            }
        }
        self.encode = encode
        self.maxToken = maxToken
        self.owned = owned
    }

    /// The cheapest description of one channel's tables with buckets grouped by `shift`, and
    /// its cost in bits (data and header).
    static func choose(_ h: UnsafePointer<UInt32>, count: Int, shift: Int, bank: TableBank,
                       model: (PreparedModel.Coding, Int)?) throws -> (bits: Double, sources: [TableSource]) {
        let groups = Buckets.count >> shift
        var gh = [UInt32](repeating: 0, count: groups * 64)
        var total = [UInt32](repeating: 0, count: groups)
        var top = [Int](repeating: 0, count: groups)
        for b in 0..<Buckets.count {
            let g = b >> shift
            for t in 0..<count where h[b * 64 + t] > 0 {
                gh[g * 64 + t] += h[b * 64 + t]
                total[g] += h[b * 64 + t]
                top[g] = max(top[g], t)
            }
        }
        guard let lo = total.firstIndex(where: { $0 > 0 }), let hi = total.lastIndex(where: { $0 > 0 }) else { return (0, []) }
        var bankIndex = [Int](repeating: ChannelPlan.bankStart, count: groups)
        var bankBits = [Double](repeating: 0, count: groups)
        var modelBits = [Double](repeating: .infinity, count: groups)
        var ownBits = [Double](repeating: .infinity, count: groups)
        var ownFreqs = [[UInt32]](repeating: [], count: groups)
        var previous = ChannelPlan.bankStart
        try gh.withUnsafeBufferPointer { ghp in
            for g in lo...hi {
                guard total[g] > 0 else { bankIndex[g] = previous; continue }
                let hg = ghp.baseAddress! + g * 64
                let best = bank.best(histogram: hg, maxToken: top[g], start: previous)
                bankIndex[g] = best.index
                bankBits[g] = Double(best.bits)
                previous = best.index
                if let (coding, c) = model {
                    var bits = 0.0
                    coding.costs.withUnsafeBufferPointer { cost in
                        let row = (c * Buckets.count + g) * count
                        for t in 0...top[g] where hg[t] > 0 { bits += Double(hg[t]) * Double(cost[row + t]) }
                    }
                    modelBits[g] = bits
                }
                if total[g] >= LatentCoder.ownTableMinimum {
                    let table = try FrequencyTable(histogram: (0..<count).map { UInt64(hg[$0]) }, coverAll: false)
                    let freqs = table.dense(count: count)
                    var bits = Double(ChannelPlan.ownTableBits(freqs))
                    for t in 0...top[g] where hg[t] > 0 { bits += Double(hg[t]) * (12 - log2(Double(freqs[t]))) }
                    ownBits[g] = bits
                    ownFreqs[g] = freqs
                }
            }
        }
        // The three ways to describe the groups' tables (header: shift, range, mode).
        var allBank = 12.0, allModel = 12.0, mixed = 12.0
        var previousBank = ChannelPlan.bankStart
        var mixedChoice = [Int](repeating: 0, count: groups)  // 0 bank, 1 model, 2 own
        for g in lo...hi {
            let selector = Double(golombLength(bankIndex[g] - previousBank))
            allBank += bankBits[g] + selector
            allModel += modelBits[g]
            let options = [bankBits[g] + selector, modelBits[g], ownBits[g]]
            let pick = total[g] == 0 ? 0 : options.indices.min { options[$0] < options[$1] }!
            mixedChoice[g] = pick
            mixed += options[pick] + 2
            if pick == 0 { previousBank = bankIndex[g] }
        }
        var sources = [TableSource](repeating: .absent, count: Buckets.count)
        if allModel <= allBank && allModel <= mixed {
            for g in lo...hi { sources[g] = .model }
            return (allModel, sources)
        }
        if allBank <= mixed {
            for g in lo...hi { sources[g] = .bank(bankIndex[g]) }
            return (allBank, sources)
        }
        for g in lo...hi {
            switch mixedChoice[g] {
            case 1: sources[g] = .model
            case 2: sources[g] = .own(ownFreqs[g])
            default: sources[g] = .bank(bankIndex[g])
            }
        }
        return (mixed, sources)
    }

    func free() {
        encode.deallocate()
        for o in owned { o.deallocate() }
    }
}

/// A decoding table whose every slot is marked invalid.
let invalidDecodeTable: SharedPointer<UInt8> = {
    let table = UnsafeMutablePointer<UInt8>.allocate(capacity: CodingTables.decodeSize)
    CodingTables.buildInvalid(into: table)
    return SharedPointer(pointer: table)
}()

/// The decoder's table per channel and activity value.
struct DecoderTables: @unchecked Sendable {
    /// Activity values per channel (at least `Buckets.maximumActivity + 1`).
    static let activities = 512
    /// `channel · 512 + activity` → decoding table.
    let contexts: UnsafeMutablePointer<UnsafePointer<UInt8>>
    private let owned: [UnsafeMutablePointer<UInt8>]

    init(plans: [ChannelPlan], bits: Int, model: LatentModel?) {
        let count = Tokens.count(bits: bits)
        let bank = TableBank.shared(bits: bits)
        let coding = model?.coding()
        let invalid = UnsafePointer(invalidDecodeTable.pointer)
        contexts = .allocate(capacity: plans.count * DecoderTables.activities)
        contexts.initialize(repeating: invalid, count: plans.count * DecoderTables.activities)
        var owned = [UnsafeMutablePointer<UInt8>]()
        for (c, plan) in plans.enumerated() where plan.kind == .coded {
            var byBucket = [UnsafePointer<UInt8>](repeating: invalid, count: Buckets.count)
            var ownTable: UnsafePointer<UInt8>?
            for b in 0..<Buckets.count {
                let g = b >> plan.shift
                if b & ((1 << plan.shift) - 1) == 0 { ownTable = nil }
                switch plan.sources[g] {
                case .bank(let k): byBucket[b] = bank.decodeTable(k)
                case .model: byBucket[b] = UnsafePointer(coding!.decode + (c * Buckets.count + b) * CodingTables.decodeSize)
                case .own(let freqs):
                    if ownTable == nil {
                        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: CodingTables.decodeSize)
                        freqs.withUnsafeBufferPointer { CodingTables.buildDecode($0.baseAddress!, count: count, into: table) }
                        owned.append(table)
                        ownTable = UnsafePointer(table)
                    }
                    byBucket[b] = ownTable!
                case .absent: break
                }
            }
            for s in 0...Buckets.maximumActivity {
                contexts[c * DecoderTables.activities + s] = byBucket[Int(Buckets.lookup[s])]
            }
        }
        self.owned = owned
    }

    func free() {
        contexts.deallocate()
        for o in owned { o.deallocate() }
    }
}
