import Foundation
import Testing
import Walloc

@Suite("Corrupt latent payloads")
struct PayloadFuzzTests {
    struct Case {
        var name: String
        var latents: Tensor
        var bits: Int
        var model: LatentModel?
        var payload: [UInt8]
    }

    static func cases() throws -> [Case] {
        var out = [Case]()
        func add(_ name: String, _ y: Tensor, bits: Int, model: LatentModel? = nil) throws {
            out.append(Case(name: name, latents: y, bits: bits, model: model, payload: [UInt8](try LatentCoder.encode(y, bits: bits, defaults: model))))
        }
        try add("image", makeImageLatents(channels: 12, h: 16, w: 12, bits: 8, scale: 4, seed: 5), bits: 8)
        try add("audio", makeLatents([4, 300], bits: 8, spread: 6, seed: 6), bits: 8)
        try add("16-bit", makeLatents([3, 9, 11], bits: 16, spread: 900, seed: 7), bits: 16)
        var noisy = makeLatents([3, 10, 10], bits: 6, spread: 4, seed: 8)
        var rng = SplitMix(state: 9)
        for i in 0..<100 { noisy.scalars[i] = Float(Int.random(in: -32...31, using: &rng)) }  // a raw channel
        for i in 100..<200 { noisy.scalars[i] = 5 }  // a constant channel
        try add("raw+constant", noisy, bits: 6)
        let train = (0..<3).map { makeImageLatents(channels: 3, h: 20, w: 20, bits: 8, scale: 4, seed: UInt64(20 + $0)) }
        try add("defaults", makeImageLatents(channels: 3, h: 9, w: 13, bits: 8, scale: 4, seed: 30), bits: 8,
                model: try LatentModel.fit(latents: train, bits: 8))
        return out
    }

    /// Decodes, requiring a clean rejection or a tensor of the declared shape with in-range integers.
    static func check(_ bytes: [UInt8], shape: [Int], bits: Int, model: LatentModel?) -> Bool {
        do {
            let t = try LatentCoder.decode(Data(bytes), shape: shape, bits: bits, defaults: model)
            let half = Float(1 << (bits - 1))
            #expect(t.shape == shape)
            #expect(t.scalars.allSatisfy { $0 >= -half && $0 < half && $0.rounded() == $0 })
            return false
        } catch is WallocError {
            return true
        } catch {
            Issue.record("unexpected error \(error)")
            return true
        }
    }

    @Test("Thousands of corrupted payloads are rejected or decode to the declared shape; none crashes or hangs")
    func fuzz() throws {
        var rng = SplitMix(state: 4242)
        var rejected = 0, trials = 0
        var accepted = [String: Int]()
        for c in try Self.cases() {
            let good = c.payload
            #expect(try LatentCoder.decode(Data(good), shape: c.latents.shape, bits: c.bits, defaults: c.model) == c.latents)
            for trial in 0..<1200 {
                var bad = good
                var shape = c.latents.shape
                var bits = c.bits
                switch trial % 8 {
                case 0: bad = Array(bad.prefix(Int.random(in: 0..<bad.count, using: &rng)))
                case 1:
                    for _ in 0..<Int.random(in: 1...4, using: &rng) {
                        bad[Int.random(in: 0..<bad.count, using: &rng)] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
                    }
                case 2: bad.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bad.count, using: &rng))
                case 3: bad.remove(at: Int.random(in: 0..<bad.count, using: &rng))
                case 4:
                    // Random bytes over a stretch (the header, the words, the raw bits).
                    let at = Int.random(in: 0..<bad.count, using: &rng)
                    for i in at..<min(bad.count, at + Int.random(in: 1...16, using: &rng)) { bad[i] = UInt8.random(in: 0...255, using: &rng) }
                case 5:
                    // A wrong declared shape.
                    let axis = Int.random(in: 0..<shape.count, using: &rng)
                    shape[axis] = max(1, shape[axis] + (Bool.random(using: &rng) ? 1 : -1) * Int.random(in: 1...3, using: &rng))
                case 6: bits = Int.random(in: 1...16, using: &rng)
                default:
                    bad = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    if !bad.isEmpty && Bool.random(using: &rng) { bad[0] = 2 }  // past the version check
                }
                if bad == good && shape == c.latents.shape && bits == c.bits { continue }
                trials += 1
                if Self.check(bad, shape: shape, bits: bits, model: c.model) { rejected += 1 } else { accepted["\(c.name) \(trial % 8)", default: 0] += 1 }
            }
        }
        // A few corruptions decode to other latents (the container's CRC catches those); the
        // rANS end-state and length checks catch nearly all.
        #expect(Double(rejected) > 0.97 * Double(trials), "\(rejected) of \(trials) rejected; accepted \(accepted.sorted { $0.key < $1.key })")
    }

    @Test("Absurd shapes and sizes are refused before allocating")
    func absurd() throws {
        let y = makeLatents([2, 8, 8], bits: 8, spread: 4, seed: 1)
        let data = try LatentCoder.encode(y, bits: 8)
        for shape in [[2, 1 << 20, 1 << 20], [1 << 30, 2, 2], [2, 1 << 40], [3, 0, 2], [2, 8], [2, 8, 8, 1]] {
            #expect(throws: WallocError.self) { try LatentCoder.decode(data, shape: shape, bits: 8) }
        }
        #expect(throws: WallocError.self) { try LatentCoder.decode(Data(), shape: [2, 8, 8], bits: 8) }
        #expect(throws: WallocError.self) { try LatentCoder.decode(data, shape: [2, 8, 8], bits: 0) }
        // A header that declares huge counts in few bytes.
        var w = [UInt8]([2, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00])
        #expect(throws: WallocError.self) { try LatentCoder.decode(Data(w), shape: [2, 8, 8], bits: 8) }
        w = [2, 8, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]
        #expect(throws: WallocError.self) { try LatentCoder.decode(Data(w), shape: [2, 8, 8], bits: 8) }
    }
}
