import Foundation
import Testing
import Walloc

@Suite("Signal preparation")
struct PreparationTests {
    @Test("Reflect padding to a multiple, centred, and cropping back", arguments: [(1, 1), (5, 7), (33, 17), (8, 8), (3, 30)])
    func padCrop2D(h: Int, w: Int) throws {
        var values = [Float]()
        for i in 0..<(2 * h * w) { values.append(Float(i)) }
        let x = Tensor(shape: [2, h, w], scalars: values)
        let (p, padding) = SignalPreparation.padToMultiple(x, multiple: 8)
        #expect(p.shape[1] % 8 == 0 && p.shape[2] % 8 == 0)
        #expect(p.shape[1] - h < 8 && p.shape[2] - w < 8)
        #expect(padding.before[0] == (p.shape[1] - h) / 2)
        #expect(SignalPreparation.crop(p, padding: padding) == x)
        // Reflection: the sample just before the image mirrors the second row/column.
        if padding.before[1] > 0 && w > 1 {
            let bh = padding.before[0], bw = padding.before[1], wp = p.shape[2]
            #expect(p.scalars[bh * wp + bw - 1] == x.scalars[1])
        }
    }

    @Test("1D padding and the mirror rule beyond one reflection")
    func padCrop1D() throws {
        let x = Tensor(shape: [1, 3], scalars: [10, 20, 30])
        let (p, padding) = SignalPreparation.padToMultiple(x, multiple: 16)
        #expect(padding == Padding(before: [6], after: [7]))
        // p[6...8] is the signal; around it, reflections without repeating the edge sample.
        #expect(Array(p.scalars[3..<12]) == [20, 30, 20, 10, 20, 30, 20, 10, 20])
        #expect(SignalPreparation.crop(p, padding: padding) == x)
    }

    @Test("Audio level: mean removed, peak 0.5, restored exactly")
    func audioLevel() throws {
        let x = Tensor(shape: [2, 4], scalars: [0.1, 0.3, -0.2, 0.9, 0.0, 0.2, 0.4, -0.1])
        let level = SignalPreparation.audioLevel(of: x)
        let y = SignalPreparation.normalize(x, level)
        #expect(abs(y.scalars.reduce(0, +)) < 1e-5)
        #expect(abs(y.maxMagnitude - 0.5) < 1e-5)
        #expect(SignalPreparation.denormalize(y, level).maxAbsDifference(x) < 1e-6)
    }

    @Test("Fingerprints identify models")
    func fingerprint() throws {
        let a = try Codec.load(from: Fixtures.reference("codec2d_light"))
        #expect(a.fingerprint.count == 16)
        #expect(a.fingerprint == (try Codec.load(from: Fixtures.reference("codec2d_light"))).fingerprint)
        var b = a
        b.visitParameters(prefix: "") { name, t in if name == "encoder.0.bias" { t.scalars[0] += 1e-3 } }
        #expect(a.fingerprint != b.fingerprint)
        #expect(a.fingerprintHex.count == 32)
    }
}
