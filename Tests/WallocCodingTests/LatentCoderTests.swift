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

/// Image-like latents: smooth low channels (a blurred random field with edges), Laplacian detail
/// channels whose scale follows the first channel's local gradient, and one channel that is
/// largely a copy of another (a cross-channel correlation).
func makeImageLatents(channels: Int, h: Int, w: Int, bits: Int, scale: Double, seed: UInt64) -> Tensor {
    var rng = SplitMix(state: seed)
    let half = Double(1 << (bits - 1))
    var field = [Double](repeating: 0, count: h * w)
    for _ in 0..<6 {
        let cy = Double.random(in: 0..<Double(h), using: &rng), cx = Double.random(in: 0..<Double(w), using: &rng)
        let r = Double.random(in: 2...Double(max(3, min(h, w))), using: &rng), v = Double.random(in: -1...1, using: &rng)
        for y in 0..<h { for x in 0..<w where (Double(y) - cy) * (Double(y) - cy) + (Double(x) - cx) * (Double(x) - cx) < r * r { field[y * w + x] += v } }
    }
    var t = Tensor(zeros: [channels, h, w])
    func laplace(_ s: Double) -> Double {
        let u = Double.random(in: 1e-12..<1, using: &rng)
        return (Bool.random(using: &rng) ? 1 : -1) * -log(u) * s
    }
    for c in 0..<channels {
        for y in 0..<h {
            for x in 0..<w {
                let i = y * w + x
                let gx = x > 0 ? abs(field[i] - field[i - 1]) : 0, gy = y > 0 ? abs(field[i] - field[i - w]) : 0
                var v: Double
                if c == 0 { v = field[i] * scale * 8 + laplace(scale * 0.3) }
                else if c == 2 && channels > 3 { v = Double(t.scalars[i]) * 0.5 + laplace(scale * 0.2) }
                else { v = laplace(scale * (0.05 + 3 * (gx + gy)) / Double(c)) }
                t.scalars[c * h * w + i] = Float(min(half - 1, max(-half, v.rounded())))
            }
        }
    }
    return t
}

/// Empirical order-0 entropy in bits, one histogram per channel.
func order0(_ y: Tensor) -> Double {
    let c = y.shape[0], n = y.count / c
    var bits = 0.0
    for ch in 0..<c {
        var counts = [Float: Int]()
        for i in 0..<n { counts[y.scalars[ch * n + i], default: 0] += 1 }
        for k in counts.values { bits -= Double(k) * log2(Double(k) / Double(n)) }
    }
    return bits
}

@Suite("Entropy coding of latents")
struct LatentCoderTests {
    @Test("Round trips: shapes, bit depths, constant channels, images and audio",
          arguments: [([12, 17, 23], 8), ([3, 1, 1], 8), ([2, 300], 5), ([4, 9, 40], 12), ([1, 64, 64], 16), ([5, 7, 3], 1),
                      ([2, 2, 2], 2), ([16, 33], 16), ([1, 1], 3), ([7, 1, 200], 9), ([3, 200, 1], 6), ([2, 5, 5], 15)])
    func roundTrip(shape: [Int], bits: Int) throws {
        var y = makeLatents(shape, bits: bits, spread: Double(1 << bits) / 16, seed: UInt64(bits * 1000 + shape.count))
        if shape[0] > 1 { for i in 0..<(y.count / shape[0]) { y.scalars[i] = bits == 1 ? 0 : -1 } }  // a constant channel
        let data = try LatentCoder.encode(y, bits: bits)
        #expect(try LatentCoder.decode(data, shape: shape, bits: bits) == y)
        // Format 2 (constants in `bits` bits) and format 3 (the plans before format 4) still decode.
        for format: UInt8 in [2, 3] {
            let old = try LatentCoder.encode(y, bits: bits, format: format)
            #expect(old[0] == format && data[0] == 4)
            #expect(try LatentCoder.decode(old, shape: shape, bits: bits) == y)
        }
    }

    @Test("Format 4 plans: bank deltas from the previous channel, run-coded sources, shorter ranges; formats 3 and 2 still decode")
    func format4Plans() throws {
        // Sparse channels (mostly zero, as variable-rate latents are at low settings): every
        // channel's first context wants a bank table near index 0, far from format 3's start (24).
        var rng = SplitMix(state: 77)
        for (shape, withModel) in [([40, 64, 72], false), ([40, 64, 72], true), ([24, 20, 30], true)] {
            var y = Tensor(zeros: shape)
            let n = shape[1] * shape[2]
            for c in 0..<shape[0] {
                let density = 0.002 + 0.3 * Double(c % 8) / 8
                for i in 0..<n where Double.random(in: 0..<1, using: &rng) < density {
                    y.scalars[c * n + i] = Float(Int.random(in: -3...3, using: &rng))
                }
            }
            var model: LatentModel?
            if withModel {
                // Defaults fitted on denser latents: some contexts take them, others a bank table (mixed plans).
                var train = y
                for i in 0..<train.count where train.scalars[i] == 0 && i % 3 == 0 { train.scalars[i] = Float(i % 5) - 2 }
                model = try LatentModel.fit(latents: [train], bits: 8)
            }
            let now = try LatentCoder.encode(y, bits: 8, defaults: model)
            let three = try LatentCoder.encode(y, bits: 8, defaults: model, format: 3)
            #expect(now[0] == 4 && three[0] == 3)
            #expect(now.count < three.count, "\(shape): format 4 \(now.count) B, format 3 \(three.count) B")
            for data in [now, three, try LatentCoder.encode(y, bits: 8, defaults: model, format: 2)] {
                #expect(try LatentCoder.decode(data, shape: shape, bits: 8, defaults: model) == y)
            }
        }
    }

    @Test("All-zero channels cost 3 header bits each (format 3), not a full value")
    func zeroChannels() throws {
        var y = Tensor(zeros: [192, 32, 48])
        for i in 0..<(5 * 32 * 48) { y.scalars[i] = Float((i * 7919) % 7) - 3 }
        let now = try LatentCoder.encode(y, bits: 12), before = try LatentCoder.encode(y, bits: 12, format: 2)
        // 187 zero channels: 14 bits each before, 3 bits each now.
        #expect(before.count - now.count >= 187 * 11 / 8 - 2, "\(before.count) -> \(now.count) bytes")
        #expect(try LatentCoder.decode(now, shape: y.shape, bits: 12) == y)
    }

    @Test("Round trips of many random and structured latents (1...16 channels, bits 1...16)")
    func manyRoundTrips() throws {
        var rng = SplitMix(state: 2024)
        for trial in 0..<150 {
            let bits = 1 + trial % 16
            let channels = Int.random(in: 1...16, using: &rng)
            let oneD = trial % 5 == 0
            let shape = oneD ? [channels, Int.random(in: 1...700, using: &rng)]
                             : [channels, Int.random(in: 1...40, using: &rng), Int.random(in: 1...40, using: &rng)]
            var y: Tensor
            switch trial % 4 {
            case 0: y = makeLatents(shape, bits: bits, spread: Double(1 << bits) * Double.random(in: 0.001...0.3, using: &rng), seed: UInt64(trial))
            case 1 where !oneD:
                y = makeImageLatents(channels: channels, h: shape[1], w: shape[2], bits: bits, scale: Double(1 << bits) / 32, seed: UInt64(trial))
            case 2:
                // Uniform noise over the whole range (the raw mode) with extremes.
                y = Tensor(zeros: shape)
                let half = 1 << (bits - 1)
                for i in 0..<y.count { y.scalars[i] = Float(Int.random(in: -half...(half - 1), using: &rng)) }
                y.scalars[0] = Float(-half); y.scalars[y.count - 1] = Float(half - 1)
            default:
                // Sparse: mostly one value, rare extremes.
                y = Tensor(repeating: Float(bits > 1 ? 1 : 0), shape: shape)
                let half = 1 << (bits - 1)
                for _ in 0..<(y.count / 50) { y.scalars[Int.random(in: 0..<y.count, using: &rng)] = Float(Bool.random(using: &rng) ? -half : half - 1) }
            }
            let data = try LatentCoder.encode(y, bits: bits)
            let back = try LatentCoder.decode(data, shape: shape, bits: bits)
            #expect(back == y, "trial \(trial): shape \(shape), \(bits) bits")
        }
    }

    @Test("Large inputs are split into segments and still round-trip (images and audio)")
    func segments() throws {
        let image = makeImageLatents(channels: 12, h: 150, w: 160, bits: 8, scale: 4, seed: 77)  // 288 000 latents
        let data = try LatentCoder.encode(image, bits: 8)
        #expect(try LatentCoder.decode(data, shape: image.shape, bits: 8) == image)
        let audio = makeLatents([4, 80_000], bits: 8, spread: 6, seed: 78)
        let a = try LatentCoder.encode(audio, bits: 8)
        #expect(try LatentCoder.decode(a, shape: audio.shape, bits: 8) == audio)
        // The stream does not depend on the thread count.
        Threading.setCount(1)
        defer { Threading.setCount(Threading.defaultCount) }
        #expect(try LatentCoder.encode(image, bits: 8) == data)
        #expect(try LatentCoder.decode(data, shape: image.shape, bits: 8) == image)
    }

    @Test("Non-integer or out-of-range latents are rejected")
    func rejectsBadLatents() throws {
        var y = Tensor(zeros: [2, 4, 4])
        y.scalars[3] = 0.5
        #expect(throws: WallocError.self) { try LatentCoder.encode(y, bits: 8) }
        y.scalars[3] = 128
        #expect(throws: WallocError.self) { try LatentCoder.encode(y, bits: 8) }
        y.scalars[3] = .nan
        #expect(throws: WallocError.self) { try LatentCoder.encode(y, bits: 8) }
        y.scalars[3] = -.infinity
        #expect(throws: WallocError.self) { try LatentCoder.encode(y, bits: 8) }
        #expect(throws: WallocError.self) { try LatentCoder.encode(Tensor(zeros: [2, 0, 4]), bits: 8) }
        #expect(throws: WallocError.self) { try LatentCoder.encode(Tensor(zeros: [2, 4, 4]), bits: 17) }
        #expect(throws: WallocError.self) { try LatentCoder.encode(Tensor(zeros: [2, 2, 2, 2]), bits: 8) }
        do {
            y.scalars[3] = 0.5
            _ = try LatentCoder.encode(y, bits: 8)
        } catch let e as WallocError {
            #expect(e.message.contains("0.5") && e.message.contains("channel 0"))
        }
    }

    @Test("Coded size is close to the empirical entropy of independent Laplacian residuals")
    func nearEntropy() throws {
        var rng = SplitMix(state: 7)
        let n = 1 << 16
        for scale in [0.3, 3.0, 30.0] {
            var y = Tensor(zeros: [1, n])
            var counts = [Int: Int]()
            for i in 0..<n {
                let u = Double.random(in: 1e-12..<1, using: &rng)
                let v = Float(min(127, max(-128, ((Bool.random(using: &rng) ? 1 : -1) * -log(u) * scale).rounded())))
                y.scalars[i] = v
                counts[Int(v), default: 0] += 1
            }
            let entropy = counts.values.reduce(0.0) { $0 - Double($1) / Double(n) * log2(Double($1) / Double(n)) }
            let data = try LatentCoder.encode(y, bits: 8)
            let bitsPerSymbol = Double(data.count * 8) / Double(n)
            // Order-0 entropy bounds what a context coder can gain on i.i.d. data; the parametric
            // tables and 12-bit frequencies cost a few percent at most.
            #expect(bitsPerSymbol > entropy * 0.97)
            #expect(bitsPerSymbol < entropy * 1.03 + 0.02, "scale \(scale): coded \(bitsPerSymbol) bits/symbol, entropy \(entropy)")
            #expect(try LatentCoder.decode(data, shape: [1, n], bits: 8) == y)
        }
    }

    @Test("Context modelling beats order-0 entropy on structured latents; constant latents cost bytes")
    func contextGain() throws {
        let y = makeImageLatents(channels: 12, h: 48, w: 64, bits: 8, scale: 4, seed: 5)
        let n = y.count / 12
        var order0 = 0.0
        for c in 0..<12 {
            var counts = [Float: Int]()
            for i in 0..<n { counts[y.scalars[c * n + i], default: 0] += 1 }
            for k in counts.values { order0 -= Double(k) * log2(Double(k) / Double(n)) }
        }
        let data = try LatentCoder.encode(y, bits: 8)
        #expect(Double(data.count * 8) < 0.85 * order0, "coded \(data.count * 8) bits, order-0 entropy \(order0) bits")
        let flat = try LatentCoder.encode(Tensor(repeating: 3, shape: [12, 60, 90]), bits: 8)
        #expect(flat.count < 24)
        let zeros = try LatentCoder.encode(Tensor(zeros: [12, 60, 90]), bits: 8)
        #expect(try LatentCoder.decode(zeros, shape: [12, 60, 90], bits: 8) == Tensor(zeros: [12, 60, 90]))
    }

    @Test("Default tables shrink small streams, are required to decode them, and survive JSON")
    func defaultTables() throws {
        let train = (0..<6).map { makeImageLatents(channels: 3, h: 32, w: 40, bits: 8, scale: 4, seed: UInt64(100 + $0)) }
        let model = try LatentModel.fit(latents: train, bits: 8)
        #expect(model.tables.count == 3 && model.tables.allSatisfy { $0.count == 16 && $0.allSatisfy { $0.covers(alphabet: 32) } })
        // A small input (a 67 x 101 image at J = 3 gives about 9 x 13 latents).
        for seed in [999, 1000, 1001] as [UInt64] {
            let y = makeImageLatents(channels: 3, h: 9, w: 13, bits: 8, scale: 4, seed: seed)
            let withDefaults = try LatentCoder.encode(y, bits: 8, defaults: model)
            let own = try LatentCoder.encode(y, bits: 8)
            #expect(withDefaults.count < own.count, "defaults \(withDefaults.count) B, own \(own.count) B")
            // Tables cost little even without defaults: within 2 bits per latent of the
            // (optimistic) order-0 entropy of 117 latents per channel.
            #expect(Double(own.count * 8) < order0(y) + 2 * Double(y.count),
                    "\(Double(own.count * 8) / Double(y.count)) bits per latent without defaults, \(Double(withDefaults.count * 8) / Double(y.count)) with; order-0 \(order0(y) / Double(y.count))")
            #expect(try LatentCoder.decode(withDefaults, shape: y.shape, bits: 8, defaults: model) == y)
            #expect(throws: WallocError.self) { try LatentCoder.decode(withDefaults, shape: y.shape, bits: 8) }
            // Streams that do not use the defaults decode with or without them.
            #expect(try LatentCoder.decode(own, shape: y.shape, bits: 8, defaults: model) == y)
        }
        // Default tables for the wrong latents are refused when encoding.
        #expect(throws: WallocError.self) { try LatentCoder.encode(Tensor(zeros: [4, 3, 3]), bits: 8, defaults: model) }
        #expect(throws: WallocError.self) { try LatentCoder.encode(Tensor(zeros: [3, 3, 3]), bits: 7, defaults: model) }
        // JSON round trip; models of the previous coder are refused clearly.
        let json = try JSONEncoder().encode(model)
        #expect(try JSONDecoder().decode(LatentModel.self, from: json) == model)
        // The compact form (one base64 string of frequencies) is what is written; files with the
        // tables as number arrays still read, to the same model.
        let written = try #require(JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(written["frequencies"] is String && written["tables"] == nil)
        var arrays = written
        arrays["frequencies"] = nil
        arrays["tables"] = model.tables.map { channel in
            channel.map { ["precision": $0.precision, "first": $0.first, "frequencies": $0.frequencies.map(Int.init)] }
        }
        #expect(try JSONDecoder().decode(LatentModel.self, from: JSONSerialization.data(withJSONObject: arrays)) == model)
        // A packed string of the wrong length or not base64, or a table that does not sum to 4096, is refused.
        for bad in [String((written["frequencies"] as! String).dropLast(4)), "not base64!",
                    Data(repeating: 1, count: 2 * model.channels * 16 * model.tables[0][0].frequencies.count).base64EncodedString()] {
            var broken = written
            broken["frequencies"] = bad
            #expect(throws: WallocError.self) { try JSONDecoder().decode(LatentModel.self, from: JSONSerialization.data(withJSONObject: broken)) }
        }
        let old = Data(#"{"bits": 8, "thresholds": [[0, 1, 2]], "tables": []}"#.utf8)
        #expect(throws: WallocError.self) { try JSONDecoder().decode(LatentModel.self, from: old) }
    }

    @Test("A channel that repeats an earlier one's residuals costs little (cross-channel term)")
    func crossChannel() throws {
        let base = makeImageLatents(channels: 1, h: 40, w: 48, bits: 8, scale: 6, seed: 11)
        var rng = SplitMix(state: 12)
        let n = base.count
        var y = Tensor(zeros: [3, 40, 48])
        for i in 0..<n {
            let v = base.scalars[i]
            y.scalars[i] = v
            // Channel 1: independent noise; channel 2: channel 0 halved plus a little noise.
            y.scalars[n + i] = Float(Int.random(in: -2...2, using: &rng))
            y.scalars[2 * n + i] = max(-128, min(127, (v / 2).rounded(.down) + Float(Int.random(in: -1...1, using: &rng))))
        }
        let single = try LatentCoder.encode(base, bits: 8).count
        let noise = try LatentCoder.encode(Tensor(shape: [1, 40, 48], scalars: Array(y.scalars[n..<(2 * n)])), bits: 8).count
        let alone = try LatentCoder.encode(Tensor(shape: [1, 40, 48], scalars: Array(y.scalars[(2 * n)...])), bits: 8).count
        let all = try LatentCoder.encode(y, bits: 8)
        #expect(try LatentCoder.decode(all, shape: y.shape, bits: 8) == y)
        // With the term, channel 2 costs much less than on its own.
        let third = all.count - single - noise
        #expect(Double(third) < 0.75 * Double(alone), "channel 2: \(third) B after channels 0 and 1, \(alone) B alone")
    }

    @Test("Default tables for 16-bit and 2-bit latents")
    func wideAndNarrowDefaults() throws {
        for bits in [16, 2] {
            let spread = bits == 16 ? 400.0 : 0.5
            let train = (0..<3).map { makeLatents([2, 20, 20], bits: bits, spread: spread, seed: UInt64(500 + $0)) }
            let model = try LatentModel.fit(latents: train, bits: bits)
            let y = makeLatents([2, 6, 6], bits: bits, spread: spread, seed: 600)
            let data = try LatentCoder.encode(y, bits: bits, defaults: model)
            #expect(try LatentCoder.decode(data, shape: y.shape, bits: bits, defaults: model) == y)
            let json = try JSONEncoder().encode(model)
            #expect(try JSONDecoder().decode(LatentModel.self, from: json) == model)
        }
    }

    @Test("Audio defaults and 1D fitting")
    func audioDefaults() throws {
        let train = (0..<4).map { makeLatents([4, 3000], bits: 8, spread: 5, seed: UInt64(300 + $0)) }
        let model = try LatentModel.fit(latents: train, bits: 8)
        let y = makeLatents([4, 40], bits: 8, spread: 5, seed: 400)
        let withDefaults = try LatentCoder.encode(y, bits: 8, defaults: model)
        #expect(withDefaults.count < (try LatentCoder.encode(y, bits: 8)).count)
        #expect(try LatentCoder.decode(withDefaults, shape: y.shape, bits: 8, defaults: model) == y)
        #expect(throws: WallocError.self) { try LatentModel.fit(latents: [train[0], Tensor(zeros: [4, 3, 3])], bits: 8) }
    }
}
