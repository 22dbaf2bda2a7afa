import Testing
import Walloc

@Suite("Wavelet and quantiser gradients")
struct TransformGradientTests {
    init() { TestSetup.singleThreaded }
    /// `<A x, y> = <x, Aᵀ y>` for random `x`, `y`: the adjoint is the transpose (this is the
    /// finite-difference check of a linear map in every direction at once).
    func expectAdjoint(_ forward: (Tensor) throws -> Tensor, _ adjoint: (Tensor) -> Tensor, input: [Int]) throws {
        let x = random(input, seed: 21)
        let ax = try forward(x)
        let y = random(ax.shape, seed: 22)
        let aty = adjoint(y)
        #expect(aty.shape == x.shape)
        let lhs = dot(ax, y), rhs = dot(x, aty)
        #expect(abs(lhs - rhs) <= 1e-5 * max(1, abs(lhs)), "<Ax,y> = \(lhs), <x,Aᵀy> = \(rhs)")
        // One explicit coordinate as a finite difference too.
        var xp = x
        xp.scalars[7] += 1
        let fd = dot(try forward(xp), y) - lhs
        #expect(abs(Float(fd) - aty.scalars[7]) <= 1e-3 * max(1, abs(aty.scalars[7])))
    }

    @Test("2D analysis adjoint", arguments: [1, 2, 3])
    func analysis2D(levels: Int) throws {
        try expectAdjoint({ try WaveletPacket.analysis2D($0, levels: levels) }, { WaveletAdjoint.analysis2D($0, levels: levels) },
                          input: [2, 3, 16, 24])
    }

    @Test("2D synthesis adjoint (not the analysis: bior4.4 is biorthogonal)", arguments: [1, 2])
    func synthesis2D(levels: Int) throws {
        let bands = [2, 3 << (2 * levels), 32 >> levels, 16 >> levels]
        try expectAdjoint({ try WaveletPacket.synthesis2D($0, levels: levels) }, { WaveletAdjoint.synthesis2D($0, levels: levels) },
                          input: bands)
        // The analysis is not the synthesis adjoint.
        let y = random([2, 3, 32, 16], seed: 5)
        let a = WaveletAdjoint.synthesis2D(y, levels: levels), b = try WaveletPacket.analysis2D(y, levels: levels)
        #expect(a.maxAbsDifference(b) > 1e-3)
    }

    @Test("2D adjoints on planes wide enough for the vector paths (and odd multiples of 16)", arguments: [1, 2])
    func wide2D(levels: Int) throws {
        try expectAdjoint({ try WaveletPacket.analysis2D($0, levels: levels) }, { WaveletAdjoint.analysis2D($0, levels: levels) },
                          input: [1, 2, 48, 80])
        let bands = [1, 2 << (2 * levels), 48 >> levels, 80 >> levels]
        try expectAdjoint({ try WaveletPacket.synthesis2D($0, levels: levels) }, { WaveletAdjoint.synthesis2D($0, levels: levels) },
                          input: bands)
    }

    @Test("1D analysis and synthesis adjoints", arguments: [1, 3])
    func oneD(levels: Int) throws {
        try expectAdjoint({ try WaveletPacket.analysis1D($0, levels: levels) }, { WaveletAdjoint.analysis1D($0, levels: levels) },
                          input: [2, 2, 64])
        try expectAdjoint({ try WaveletPacket.synthesis1D($0, levels: levels) }, { WaveletAdjoint.synthesis1D($0, levels: levels) },
                          input: [2, 2 << levels, 64 >> levels])
    }

    @Test("ToUniform gradient", arguments: [4, 8])
    func toUniform(bits: Int) {
        let q = Quantizer(bits: bits)
        checkGradients(NoParameters(), input: random([2, 50], seed: 23, scale: Float(q.scale) * 5), eps: 1e-2, samples: 8) { _, x in
            var y = x
            q.toUniform(&y)
            return (y, { g in (q.toUniformBackward(input: x, g), Gradients()) })
        }
    }

    @Test("ToNormal gradient, zero where the clamp is active")
    func toNormal() {
        let q = Quantizer(bits: 6)
        let lim = Float(q.latentMax)
        // Inside the clamp (|u − ½| < 0.4999 means |y| < 0.9998·latentMax).
        checkGradients(NoParameters(), input: random([2, 40], seed: 24, scale: 1.6 * lim), eps: 1e-3, samples: 8) { _, x in
            var y = x
            q.toNormal(&y)
            return (y, { g in (q.toNormalBackward(input: x, output: y, g), Gradients()) })
        }
        let x = Tensor(shape: [4], scalars: [-lim * 1.01, lim * 1.5, 0, lim * 0.999_99])
        var z = x
        q.toNormal(&z)
        let g = q.toNormalBackward(input: x, output: z, Tensor(repeating: 1, shape: [4]))
        #expect(g.scalars[0] == 0 && g.scalars[1] == 0 && g.scalars[3] == 0)
        #expect(abs(g.scalars[2] - Float(q.scale * (2 * Double.pi).squareRoot() / (2 * q.latentMax))) < 1e-5)
    }
}
