import Testing
import Walloc

/// Dense checks of the training convolution against a direct double-precision evaluation of
/// `y[s,o,y,x] = b[o] + Σ W[o,i,ky,kx]·x[s,i,y−p+d·ky,x−p+d·kx]` and its exact gradients, on
/// shapes that exercise every tiling path (several tiles per sample, uneven groups of tiles,
/// pointwise layers, dilation, padding wider than the kernel reach).
@Suite("Conv2d training passes (dense)")
struct ConvGradientTests {
    init() { TestSetup.singleThreaded }

    struct Case: Sendable, CustomStringConvertible {
        let n, ci, co, h, w, k, pad, dilation: Int
        var description: String { "n\(n) \(ci)->\(co) \(h)x\(w) k\(k) p\(pad) d\(dilation)" }
    }

    static let cases = [
        Case(n: 3, ci: 20, co: 6, h: 7, w: 9, k: 3, pad: 1, dilation: 1),
        Case(n: 1, ci: 4, co: 5, h: 8, w: 5, k: 3, pad: 1, dilation: 1),
        Case(n: 2, ci: 3, co: 4, h: 9, w: 8, k: 3, pad: 2, dilation: 2),
        Case(n: 5, ci: 6, co: 3, h: 4, w: 6, k: 1, pad: 0, dilation: 1),
        Case(n: 2, ci: 3, co: 4, h: 5, w: 4, k: 1, pad: 1, dilation: 1),
        Case(n: 2, ci: 2, co: 3, h: 6, w: 7, k: 5, pad: 2, dilation: 1),
        Case(n: 2, ci: 3, co: 2, h: 6, w: 6, k: 3, pad: 0, dilation: 1),
    ]

    @Test("Forward, weight, bias and input gradients equal the direct sums", arguments: cases)
    func dense(_ c: Case) {
        check(c, tolerance: 1e-5)
    }

    /// bfloat16 products (`Kernels.trainingDecoder(precision: .bf16)`): inputs, weights and output
    /// gradients each keep 8 significant bits (2^-9 relative), sums stay float32.
    @Test("bf16 training products: within bfloat16 precision of the direct sums (exact where bf16 does not run)", arguments: cases)
    func bf16(_ c: Case) {
        let active = Kernels.trainingDecoder(precision: .bf16) { Kernels.trainsInBF16 }
        Kernels.trainingDecoder(precision: .bf16) { check(c, tolerance: active ? 1e-2 : 1e-5) }
    }

    /// Runs case `c` at the calling thread's precision; errors must stay within `tolerance` times
    /// the largest reference magnitude.
    func check(_ c: Case, tolerance: Double) {
        var initializer = ParameterInitializer(seed: 41)
        let conv = Conv2d(inChannels: c.ci, outChannels: c.co, kernelSize: c.k, padding: c.pad, dilation: c.dilation,
                          initializer: &initializer)
        let x = random([c.n, c.ci, c.h, c.w], seed: 42)
        let (y, tape) = conv.forward(training: x)
        let ho = c.h + 2 * c.pad - c.dilation * (c.k - 1), wo = c.w + 2 * c.pad - c.dilation * (c.k - 1)
        #expect(y.shape == [c.n, c.co, ho, wo])
        let g = random(y.shape, seed: 43)
        var grads = Gradients()
        let dx = conv.backward(tape, g, prefix: "c", into: &grads)

        var yRef = [Double](repeating: 0, count: y.count), dxRef = [Double](repeating: 0, count: x.count)
        var dwRef = [Double](repeating: 0, count: conv.weight.count), dbRef = [Double](repeating: 0, count: c.co)
        let wv = conv.weight.scalars, xv = x.scalars, gv = g.scalars, bv = conv.bias!.scalars
        for s in 0..<c.n {
            for o in 0..<c.co {
                for oy in 0..<ho {
                    for ox in 0..<wo {
                        let yi = ((s * c.co + o) * ho + oy) * wo + ox
                        var acc = Double(bv[o])
                        dbRef[o] += Double(gv[yi])
                        for i in 0..<c.ci {
                            for ky in 0..<c.k {
                                let sy = oy - c.pad + c.dilation * ky
                                guard sy >= 0 && sy < c.h else { continue }
                                for kx in 0..<c.k {
                                    let sx = ox - c.pad + c.dilation * kx
                                    guard sx >= 0 && sx < c.w else { continue }
                                    let wi = ((o * c.ci + i) * c.k + ky) * c.k + kx, xi = ((s * c.ci + i) * c.h + sy) * c.w + sx
                                    acc += Double(wv[wi]) * Double(xv[xi])
                                    dwRef[wi] += Double(gv[yi]) * Double(xv[xi])
                                    dxRef[xi] += Double(gv[yi]) * Double(wv[wi])
                                }
                            }
                        }
                        yRef[yi] = acc
                    }
                }
            }
        }
        func check(_ name: String, _ t: Tensor?, _ ref: [Double]) {
            guard let t else { Issue.record("missing \(name)"); return }
            #expect(t.count == ref.count, "\(name) size")
            let scale = ref.map(abs).max() ?? 1
            var worst: Double = 0
            for i in 0..<min(t.count, ref.count) { worst = max(worst, abs(Double(t.scalars[i]) - ref[i])) }
            #expect(worst <= tolerance * max(scale, 1), "\(name): max error \(worst) at scale \(scale)")
        }
        check("output", y, yRef)
        check("weight", grads["c.weight"], dwRef)
        check("bias", grads["c.bias"], dbRef)
        check("input", dx, dxRef)
        #expect(grads["c.weight"]?.shape == conv.weight.shape)
    }

    @Test("No input gradient when not asked for; gradients accumulate under the prefix")
    func accumulate() {
        var initializer = ParameterInitializer(seed: 44)
        let conv = Conv2d(inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1, initializer: &initializer)
        let x = random([2, 2, 5, 5], seed: 45)
        let (y, tape) = conv.forward(training: x)
        let g = random(y.shape, seed: 46)
        var once = Gradients(), twice = Gradients()
        #expect(conv.backward(tape, g, prefix: "p", into: &once, inputGradient: false).count == 0)
        _ = conv.backward(tape, g, prefix: "p", into: &twice)
        _ = conv.backward(tape, g, prefix: "p", into: &twice)
        let a = once["p.weight"]!, b = twice["p.weight"]!
        #expect(b.maxAbsDifference(Tensor(shape: a.shape, scalars: a.scalars.map { 2 * $0 })) < 1e-5)
    }
}
