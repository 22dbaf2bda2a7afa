import Foundation
import Testing
import Walloc

@Suite("Wavelet packet transform")
struct WaveletTests {
    @Test("2D analysis matches the reference", arguments: [1, 2, 3, 4])
    func analysis2D(levels: Int) throws {
        let x = try Fixtures.npy("wpt2d_rgb/input.npy")
        let expected = try Fixtures.npy("wpt2d_rgb/wpt_J\(levels).npy")
        let bands = try WaveletPacket.analysis2D(x, levels: levels)
        #expect(bands.shape == expected.shape)
        #expect(relativeError(bands, expected) < 1e-5)
        let back = try WaveletPacket.synthesis2D(bands, levels: levels)
        #expect(back.maxAbsDifference(x) < 1e-5)
    }

    @Test("1D analysis matches the reference", arguments: [1, 2, 4, 6])
    func analysis1D(levels: Int) throws {
        let x = try Fixtures.npy("wpt1d_stereo/input.npy")
        let expected = try Fixtures.npy("wpt1d_stereo/wpt_J\(levels).npy")
        let bands = try WaveletPacket.analysis1D(x, levels: levels)
        #expect(bands.shape == expected.shape)
        #expect(relativeError(bands, expected) < 1e-5)
        let back = try WaveletPacket.synthesis1D(bands, levels: levels)
        #expect(back.maxAbsDifference(x) < 1e-5)
    }

    @Test("Round trip is exact for every size divisible by 2^J, short ones included")
    func roundTripShort() throws {
        for levels in 1...4 {
            let unit = 1 << levels
            for (h, w) in [(unit, unit), (unit, 3 * unit), (5 * unit, 2 * unit), (unit * 7, unit * 9)] {
                for channels in [1, 2, 3, 5] {
                    let x = randomTensor([channels, h, w], seed: UInt64(h * 1000 + w * 10 + channels))
                    let bands = try WaveletPacket.analysis2D(x, levels: levels)
                    #expect(bands.shape == [channels << (2 * levels), h >> levels, w >> levels])
                    let back = try WaveletPacket.synthesis2D(bands, levels: levels)
                    #expect(back.maxAbsDifference(x) < 1e-5, "2D \(channels)x\(h)x\(w) J=\(levels)")
                }
            }
            for length in [unit, 2 * unit, 3 * unit, 33 * unit] {
                let x = randomTensor([2, 3, length], seed: UInt64(length))
                let bands = try WaveletPacket.analysis1D(x, levels: levels)
                #expect(bands.shape == [2, 3 << levels, length >> levels])
                let back = try WaveletPacket.synthesis1D(bands, levels: levels)
                #expect(back.maxAbsDifference(x) < 1e-5, "1D length \(length) J=\(levels)")
            }
        }
    }

    @Test("Transform preserves energy approximately and is linear")
    func linearity() throws {
        let a = randomTensor([3, 32, 48], seed: 1), b = randomTensor([3, 32, 48], seed: 2)
        var sum = a
        for i in 0..<sum.count { sum.scalars[i] += 2 * b.scalars[i] }
        let ta = try WaveletPacket.analysis2D(a, levels: 2), tb = try WaveletPacket.analysis2D(b, levels: 2)
        let ts = try WaveletPacket.analysis2D(sum, levels: 2)
        var combined = ta
        for i in 0..<combined.count { combined.scalars[i] += 2 * tb.scalars[i] }
        #expect(ts.maxAbsDifference(combined) < 1e-5)
    }

    @Test("Batched input equals per-sample transforms")
    func batched() throws {
        let x = randomTensor([2, 3, 16, 32], seed: 9)
        let all = try WaveletPacket.analysis2D(x, levels: 2)
        #expect(all.shape == [2, 48, 4, 8])
        for n in 0..<2 {
            let one = try WaveletPacket.analysis2D(x.slice(n), levels: 2)
            #expect(all.slice(n) == one)
        }
    }

    @Test("Sizes not divisible by 2^J are rejected with a clear message")
    func rejectsBadSizes() {
        #expect(throws: WallocError.self) { try WaveletPacket.analysis2D(Tensor(zeros: [1, 12, 16]), levels: 3) }
        #expect(throws: WallocError.self) { try WaveletPacket.analysis1D(Tensor(zeros: [1, 10]), levels: 2) }
        #expect(throws: WallocError.self) { try WaveletPacket.synthesis2D(Tensor(zeros: [3, 4, 4]), levels: 1) }
    }
}
