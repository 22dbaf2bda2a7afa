import Foundation
import Testing
@testable import WallocCoding
import WallocTensor

@Suite("Entropy coder kernels")
struct CoderKernelTests {
    @Test("Tokens split and join every value of every bit depth; token counts match the alphabet")
    func tokens() {
        for u in UInt32(0)..<(1 << 16) {
            let (t, n, raw) = Tokens.split(u)
            #expect(Tokens.rawBits(t) == n && raw < 1 << n && Tokens.token(u) == t)
            if Tokens.join(t, raw: raw) != u { Issue.record("u = \(u) -> token \(t), \(n) raw bits, raw \(raw)"); return }
        }
        #expect(Tokens.split(15).token == 15 && Tokens.split(16) == (16, 2, 0) && Tokens.split(23) == (17, 2, 3))
        #expect(Tokens.split(65535) == (63, 13, 8191))
        for bits in 1...16 {
            #expect(Int(Tokens.split(UInt32((1 << bits) - 1)).token) == Tokens.count(bits: bits) - 1)
        }
        for r in Int32(-40000)...40000 where Tokens.unzigzag(Tokens.zigzag(r)) != r { Issue.record("zigzag \(r)"); return }
        #expect(Tokens.zigzag(0) == 0 && Tokens.zigzag(-1) == 1 && Tokens.zigzag(1) == 2)
    }

    @Test("The encoder's reciprocal equals integer division for every frequency")
    func reciprocal() {
        var rng = SplitMix(state: 1)
        for f in UInt32(1)...RANS.total {
            let sym = EncodeSymbol(start: 0, frequency: f)
            var states: [UInt32] = [RANS.lower, (1 << 31) - 1, f << 19 - 1]
            for _ in 0..<200 { states.append(UInt32.random(in: RANS.lower..<(1 << 31), using: &rng)) }
            for x in states where x < sym.xMax || f == RANS.total {
                let q = UInt32(truncatingIfNeeded: (UInt64(x) * UInt64(sym.reciprocal)) >> 32) >> UInt32(sym.shift)
                let expected = f == 1 ? x : x / f
                let got = f == 1 ? (x &+ sym.bias &+ q &* UInt32(sym.complement)) / RANS.total : q
                if got != expected { Issue.record("f = \(f), x = \(x): \(got) != \(expected)"); return }
            }
        }
    }

    @Test("Bank tables: every token possible, frequencies sum to 2^12, scales increase, identical on rebuild")
    func bank() {
        for bits in [1, 2, 5, 8, 12, 16] {
            let bank = TableBank.shared(bits: bits)
            var previousMean = -1.0
            for k in 0..<TableBank.size {
                let f = Array(bank.frequencies[(k * bank.count)..<((k + 1) * bank.count)])
                #expect(f.reduce(0, +) == RANS.total && f.allSatisfy { $0 >= 1 }, "bits \(bits), table \(k)")
                let mean = f.enumerated().reduce(0.0) { $0 + Double($1.offset) * Double($1.element) }
                #expect(mean >= previousMean, "bits \(bits), table \(k)")
                previousMean = mean
            }
            // Reference values: the integer construction must not change between versions or platforms.
            let rebuilt = TableBank.quantise(TableBank.masses(theta: TableBank.thetas[30], bits: bits, count: bank.count))
            #expect(rebuilt == Array(bank.frequencies[(30 * bank.count)..<(31 * bank.count)]))
        }
        let b8 = TableBank.shared(bits: 8)
        // Scale 0 (mean |r| 0.002, θ ≈ 0.001): P(±1) ≈ 4/4096 each, every other token the minimum.
        #expect(Array(b8.frequencies[0..<4]) == [4059, 4, 4, 1])
        // Scale 30 (mean |r| 1.615, θ ≈ 0.557): P(0) = (1 − θ)/(1 + θ) ≈ 1165/4096, P(±1) ≈ 650/4096.
        #expect(Array(b8.frequencies[(30 * 32)..<(30 * 32 + 8)]) == [1153, 649, 649, 362, 362, 201, 201, 112])
    }

    @Test("Decode tables invert encode tables")
    func decodeTables() {
        let freqs: [UInt32] = [2000, 1, 0, 95, 2000]
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: CodingTables.decodeSize)
        defer { table.deallocate() }
        freqs.withUnsafeBufferPointer { CodingTables.buildDecode($0.baseAddress!, count: 5, into: table) }
        #expect(table[0] == 0 && table[1999] == 0 && table[2000] == 1 && table[2001] == 3 && table[2095] == 3 && table[2096] == 4 && table[4095] == 4)
        let info = UnsafeRawPointer(table + 4096)
        #expect(info.load(fromByteOffset: 12, as: UInt32.self) == 95 | 2001 << 16)
    }

    @Test("Bit writer and reader round-trip fields and Exp-Golomb codes")
    func bits() throws {
        var w = BitWriter()
        var rng = SplitMix(state: 3)
        var fields = [(UInt32, UInt32)]()
        for _ in 0..<2000 {
            let n = UInt32.random(in: 1...32, using: &rng)
            let v = n == 32 ? UInt32.random(in: 0...UInt32.max, using: &rng) : UInt32.random(in: 0..<(1 << n), using: &rng)
            fields.append((v, n))
            w.write(v, n)
        }
        let codes: [Int32] = [0, 1, -1, 2, -64, 64, 1000, -100_000]
        for c in codes { w.signedGolomb(c) }
        let bytes = w.finish() + [UInt8](repeating: 0, count: 8)
        try bytes.withUnsafeBufferPointer { b in
            var r = BitReader(b.baseAddress!, limitBits: (bytes.count - 8) * 8)
            for (v, n) in fields where try r.checkedRead(n) != v { Issue.record("field \(v) of \(n) bits"); return }
            for c in codes { #expect(try r.signedGolomb(max: 1 << 20) == c) }
            #expect(throws: WallocError.self) { try r.checkedRead(32) }
        }
    }

    @Test("Predictors and contexts: reference values")
    func predictors() {
        #expect(PredictMedian.predict(5, 9, 7) == 7)    // c between a and b: a + b − c
        #expect(PredictMedian.predict(5, 9, 10) == 5)   // c above both: min
        #expect(PredictMedian.predict(5, 9, 2) == 9)    // c below both: max
        #expect(PredictAverage.predict(-3, 0, 0) == -2) // floor
        #expect(PredictGradient.predict(3, 4, 10) == -3 && PredictExtrapolate.predict(3, 4, 0) == 2)
        #expect(wrap(130, half: 128, mask: 255) == -126 && wrap(-129, half: 128, mask: 255) == 127)
        #expect(Buckets.lookup[0] == 0 && Buckets.lookup[5] == 4 && Buckets.lookup[160] == 14 && Buckets.lookup[161] == 15)
        #expect(Buckets.lookup.count == Buckets.maximumActivity + 1 && Buckets.maximumActivity < DecoderTables.activities)
    }
}
