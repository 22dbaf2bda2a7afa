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
        let scratch = ChoiceScratch()
        defer { scratch.free() }
        // Format 4 takes each channel's first bank delta from the previous channel's first index.
        var start = ChannelPlan.bankStart
        for c in 0..<channels where plans[c].kind != .constant {
            let h = hist + c * LatentCoder.histogramSize
            var rawBits = 0, top = 0
            for b in 0..<Buckets.count {
                for t in 0..<count {
                    let k = Int(h[b * 64 + t])
                    rawBits &+= k &* Int(Tokens.rawBits(UInt32(t)))
                    top = k != 0 ? max(top, t) : top
                }
            }
            maxToken[c] = top
            // Merging buckets saves a few header bits per bucket: worth trying on small planes only.
            let maxShift = n < 2048 ? ChannelPlan.maximumShift : (n < ChannelPlan.groupingPlaneLimit ? 1 : 0)
            var bestShift = 0, bestBits = Double.infinity
            for shift in 0...maxShift where maxShift > 0 {
                let option = try EncoderTables.choose(h, count: count, shift: shift, bank: bank, start: start,
                                                      model: shift == 0 ? model.map { ($0, c) } : nil, scratch: scratch, describe: false)
                if option.bits < bestBits { bestBits = option.bits; bestShift = shift }
            }
            let chosen = try EncoderTables.choose(h, count: count, shift: bestShift, bank: bank, start: start,
                                                  model: bestShift == 0 ? model.map { ($0, c) } : nil, scratch: scratch, describe: true)
            guard chosen.sources.contains(where: { $0 != .absent }) else { continue }
            if chosen.bits + Double(rawBits) + 24 >= Double(n * bits) {
                plans[c].kind = .raw
                continue
            }
            plans[c].shift = bestShift
            plans[c].sources = chosen.sources
            if let first = plans[c].firstBank(start: start) { start = first }
            for b in 0..<Buckets.count {
                let slot = encode + c * Buckets.count + b
                let g = b >> bestShift
                switch chosen.sources[g] {
                case .bank(let k): slot.pointee = UnsafePointer(bank.encode + k * Tokens.maximumCount)
                case .model: slot.pointee = UnsafePointer(model!.encode + (c * Buckets.count + b) * Tokens.maximumCount)
                case .own(let freqs):
                    if b & ((1 << bestShift) - 1) == 0 {
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

    /// Work space of `choose`, allocated once per stream.
    struct ChoiceScratch {
        let histogram = UnsafeMutablePointer<UInt32>.allocate(capacity: Buckets.count * 64)
        let total = UnsafeMutablePointer<UInt32>.allocate(capacity: Buckets.count)
        let top = UnsafeMutablePointer<Int>.allocate(capacity: Buckets.count)
        let bankIndex = UnsafeMutablePointer<Int>.allocate(capacity: Buckets.count)
        let pick = UnsafeMutablePointer<Int>.allocate(capacity: Buckets.count)
        /// Bits per group with a bank table, the model's table, its own table.
        let bankBits = UnsafeMutablePointer<Double>.allocate(capacity: Buckets.count)
        let modelBits = UnsafeMutablePointer<Double>.allocate(capacity: Buckets.count)
        let ownBits = UnsafeMutablePointer<Double>.allocate(capacity: Buckets.count)
        let tokens = UnsafeMutablePointer<(Int32, Float)>.allocate(capacity: Tokens.maximumCount)

        func free() {
            histogram.deallocate(); total.deallocate(); top.deallocate(); bankIndex.deallocate(); pick.deallocate()
            bankBits.deallocate(); modelBits.deallocate(); ownBits.deallocate(); tokens.deallocate()
        }
    }

    /// The cheapest description of one channel's tables with buckets grouped by `shift`, and
    /// its cost in bits (data and header); the sources only when `describe`.
    static func choose(_ h: UnsafePointer<UInt32>, count: Int, shift: Int, bank: TableBank, start: Int, model: (PreparedModel.Coding, Int)?,
                       scratch: ChoiceScratch, describe: Bool) throws -> (bits: Double, sources: [TableSource]) {
        let groups = Buckets.count >> shift
        let gh = scratch.histogram, total = scratch.total, top = scratch.top
        // Branch-free merging (the histograms are mostly zeros).
        gh.update(repeating: 0, count: groups * 64)
        for b in 0..<Buckets.count {
            let src = h + b * 64, dst = gh + (b >> shift) * 64
            for t in 0..<count { dst[t] &+= src[t] }
        }
        for g in 0..<groups {
            let row = gh + g * 64
            var sum: UInt32 = 0, last = 0
            for t in 0..<count {
                sum &+= row[t]
                last = row[t] != 0 ? t : last
            }
            total[g] = sum
            top[g] = last
        }
        var lo = -1, hi = -1
        for g in 0..<groups where total[g] > 0 { if lo < 0 { lo = g }; hi = g }
        guard lo >= 0 else { return (0, []) }
        let bankIndex = scratch.bankIndex, bankBits = scratch.bankBits, modelBits = scratch.modelBits, ownBits = scratch.ownBits
        var ownFreqs: [[UInt32]]?
        var previous = ChannelPlan.bankStart
        for g in lo...hi {
            bankBits[g] = 0; modelBits[g] = .infinity; ownBits[g] = .infinity
            guard total[g] > 0 else { bankIndex[g] = previous; continue }
            let hg = gh + g * 64
            let best = bank.best(histogram: hg, maxToken: top[g], scratch: scratch.tokens)
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
                if ownFreqs == nil { ownFreqs = [[UInt32]](repeating: [], count: groups) }
                ownFreqs![g] = freqs
            }
        }
        // The three ways to describe the groups' tables (header: shift, range, mode).
        var allBank = 12.0, allModel = 12.0, mixed = 12.0
        var previousBank = start, previousPick: Int?
        let pick = scratch.pick  // 0 bank, 1 model, 2 own
        for g in lo...hi {
            let bankOption = bankBits[g] + Double(golombLength(bankIndex[g] - previousBank))
            allBank += bankOption
            allModel += modelBits[g]
            var p = 0, best = bankOption
            if total[g] > 0 {
                if modelBits[g] < best { p = 1; best = modelBits[g] }
                if ownBits[g] < best { p = 2; best = ownBits[g] }
            }
            pick[g] = p
            mixed += best + Double(ChannelPlan.sourceBits(p, after: previousPick))
            previousPick = p
            if p == 0 { previousBank = bankIndex[g] }
        }
        let bits = min(allBank, allModel, mixed)
        guard describe else { return (bits, []) }
        var sources = [TableSource](repeating: .absent, count: Buckets.count)
        for g in lo...hi {
            if allModel <= allBank && allModel <= mixed {
                sources[g] = .model
            } else if allBank <= mixed {
                sources[g] = .bank(bankIndex[g])
            } else {
                switch pick[g] {
                case 1: sources[g] = .model
                case 2: sources[g] = .own(ownFreqs![g])
                default: sources[g] = .bank(bankIndex[g])
                }
            }
        }
        return (bits, sources)
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

/// The decoder's tables: per channel and bucket (16 pointers per channel, so memory grows with
/// the header, never with a declared channel count alone).
struct DecoderTables: @unchecked Sendable {
    /// Activity values per channel (at least `Buckets.maximumActivity + 1`).
    static let activities = 512
    /// `channel · 16 + bucket` → decoding table.
    let buckets: UnsafeMutablePointer<UnsafePointer<UInt8>>
    private let owned: [UnsafeMutablePointer<UInt8>]

    init(plans: [ChannelPlan], bits: Int, model: LatentModel?) {
        let count = Tokens.count(bits: bits)
        let bank = TableBank.shared(bits: bits)
        let invalid = UnsafePointer(invalidDecodeTable.pointer)
        buckets = .allocate(capacity: plans.count * Buckets.count)
        buckets.initialize(repeating: invalid, count: plans.count * Buckets.count)
        var owned = [UnsafeMutablePointer<UInt8>]()
        for (c, plan) in plans.enumerated() where plan.kind == .coded {
            var ownTable: UnsafePointer<UInt8>?
            for b in 0..<Buckets.count {
                let g = b >> plan.shift
                if b & ((1 << plan.shift) - 1) == 0 { ownTable = nil }
                let slot = buckets + c * Buckets.count + b
                switch plan.sources[g] {
                case .bank(let k): slot.pointee = bank.decodeTable(k)
                case .model: slot.pointee = model!.decodeTable(row: c * Buckets.count + b)
                case .own(let freqs):
                    if ownTable == nil {
                        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: CodingTables.decodeSize)
                        freqs.withUnsafeBufferPointer { CodingTables.buildDecode($0.baseAddress!, count: count, into: table) }
                        owned.append(table)
                        ownTable = UnsafePointer(table)
                    }
                    slot.pointee = ownTable!
                case .absent: break
                }
            }
        }
        self.owned = owned
    }

    /// Fills `contexts` (`activities` entries) with channel `c`'s table for each activity.
    func contexts(channel c: Int, into contexts: UnsafeMutablePointer<UnsafePointer<UInt8>>) {
        for s in 0...Buckets.maximumActivity { contexts[s] = buckets[c * Buckets.count + Int(Buckets.lookup[s])] }
        let invalid = UnsafePointer(invalidDecodeTable.pointer)
        for s in (Buckets.maximumActivity + 1)..<DecoderTables.activities { contexts[s] = invalid }
    }

    func free() {
        buckets.deallocate()
        for o in owned { o.deallocate() }
    }
}
