import Foundation
import Testing
import Walloc

/// Seeded generator for test data.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Spatially correlated integer latents: a smoothed random walk plus Laplacian-like noise.
func makeLatents(_ shape: [Int], bits: Int, spread: Double, seed: UInt64) -> Tensor {
    var rng = SplitMix(state: seed)
    let half = Double(1 << (bits - 1))
    var t = Tensor(zeros: shape)
    let n = t.count / shape[0]
    for c in 0..<shape[0] {
        var level = 0.0
        for i in 0..<n {
            level = 0.9 * level + Double.random(in: -1...1, using: &rng) * spread
            let u = Double.random(in: 1e-9..<1, using: &rng)
            let noise = (Bool.random(using: &rng) ? 1 : -1) * -log(u) * spread * 0.3
            t.scalars[c * n + i] = Float(min(half - 1, max(-half, (level + noise).rounded())))
        }
    }
    return t
}

@Suite("Entropy coding of latents")
struct LatentCoderTests {
    @Test("Round trips: shapes, bit depths, constant and single-value channels",
          arguments: [([12, 17, 23], 8), ([3, 1, 1], 8), ([2, 300], 5), ([4, 9, 40], 12), ([1, 64, 64], 16), ([5, 7, 3], 1), ([2, 2, 2], 2)])
    func roundTrip(shape: [Int], bits: Int) throws {
        var y = makeLatents(shape, bits: bits, spread: Double(1 << bits) / 16, seed: UInt64(bits * 1000 + shape.count))
        if shape[0] > 1 { for i in 0..<(y.count / shape[0]) { y.scalars[i] = -1 } }  // a constant channel
        let data = try LatentCoder.encode(y, bits: bits)
        let back = try LatentCoder.decode(data, shape: shape, bits: bits)
        #expect(back == y)
    }

    @Test("Non-integer or out-of-range latents are rejected")
    func rejectsBadLatents() throws {
        var y = Tensor(zeros: [2, 4, 4])
        y.scalars[3] = 0.5
        #expect(throws: WallocError.self) { try LatentCoder.encode(y, bits: 8) }
        y.scalars[3] = 128
        #expect(throws: WallocError.self) { try LatentCoder.encode(y, bits: 8) }
        #expect(throws: WallocError.self) { try LatentCoder.encode(Tensor(zeros: [2, 0, 4]), bits: 8) }
        #expect(throws: WallocError.self) { try LatentCoder.encode(y, bits: 17) }
    }

    @Test("Coded size is close to the empirical entropy of independent Laplacian symbols")
    func nearEntropy() throws {
        var rng = SplitMix(state: 7)
        let n = 1 << 16
        var y = Tensor(zeros: [1, 1, n])
        var counts = [Int: Int]()
        for i in 0..<n {
            let u = Double.random(in: 1e-12..<1, using: &rng)
            let v = Float(min(127, max(-128, ((Bool.random(using: &rng) ? 1 : -1) * -log(u) * 6).rounded())))
            y.scalars[i] = v
            counts[Int(v), default: 0] += 1
        }
        let entropy = counts.values.reduce(0.0) { $0 - Double($1) / Double(n) * log2(Double($1) / Double(n)) }
        // 1D with a previous-value predictor would hurt i.i.d. data; code it as a 1-row image
        // whose predictor falls back to the left neighbour as well, so compare against the
        // entropy of the residual instead: here just bound the total by entropy + 8% + tables.
        let data = try LatentCoder.encode(y.reshaped([1, n]), bits: 8)
        let bitsPerSymbol = Double(data.count * 8) / Double(n)
        #expect(bitsPerSymbol > entropy * 0.9)
        #expect(bitsPerSymbol < entropy + 1.6, "coded \(bitsPerSymbol) bits/symbol, entropy \(entropy)")
    }

    @Test("Default tables are used when they are cheaper, and required to decode")
    func defaultTables() throws {
        let train = (0..<4).map { makeLatents([3, 32, 32], bits: 8, spread: 8, seed: UInt64(100 + $0)) }
        let model = try LatentModel.fit(latents: train, bits: 8)
        #expect(model.tables.allSatisfy { $0.allSatisfy { $0.covers(alphabet: 256) } })
        let y = makeLatents([3, 8, 8], bits: 8, spread: 8, seed: 999)
        let withDefaults = try LatentCoder.encode(y, bits: 8, defaults: model)
        let own = try LatentCoder.encode(y, bits: 8)
        #expect(withDefaults.count < own.count, "defaults \(withDefaults.count) B, own \(own.count) B")
        #expect(try LatentCoder.decode(withDefaults, shape: [3, 8, 8], bits: 8, defaults: model) == y)
        #expect(throws: WallocError.self) { try LatentCoder.decode(withDefaults, shape: [3, 8, 8], bits: 8) }
        // The model survives JSON.
        let json = try JSONEncoder().encode(model)
        #expect(try JSONDecoder().decode(LatentModel.self, from: json) == model)
    }

    @Test("Thousands of corrupted streams are rejected or decode to the right shape, never crash")
    func corruption() throws {
        let y = makeLatents([4, 16, 12], bits: 8, spread: 10, seed: 5)
        let data = [UInt8](try LatentCoder.encode(y, bits: 8))
        var rng = SplitMix(state: 11)
        var rejected = 0
        for trial in 0..<3000 {
            var bad = data
            switch trial % 3 {
            case 0: bad = Array(bad.prefix(Int.random(in: 0..<bad.count, using: &rng)))
            case 1:
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let i = Int.random(in: 0..<bad.count, using: &rng)
                    bad[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
                }
            default:
                let i = Int.random(in: 0..<bad.count, using: &rng)
                bad.insert(UInt8.random(in: 0...255, using: &rng), at: i)
            }
            do {
                let t = try LatentCoder.decode(Data(bad), shape: [4, 16, 12], bits: 8)
                #expect(t.shape == [4, 16, 12])
            } catch is WallocError {
                rejected += 1
            }
        }
        #expect(rejected > 2500)
    }
}
