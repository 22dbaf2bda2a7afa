import Foundation
import Testing
import Walloc

/// The training-convention closure for a layer with `forward(training:)` / `backward(_:_:prefix:into:)`.
private func layerRun<M: Module, T>(_ forward: @escaping (M, Tensor) -> (Tensor, T),
                                    _ backward: @escaping (M, T, Tensor, inout Gradients) -> Tensor)
    -> (M, Tensor) -> (Tensor, (Tensor) -> (Tensor, Gradients)) {
    { m, x in
        let (y, tape) = forward(m, x)
        return (y, { g in var grads = Gradients(); let dx = backward(m, tape, g, &grads); return (dx, grads) })
    }
}

/// Random log-scale Snake parameters (the reference initialises them to zero).
private func randomize(_ snake: inout Snake, seed: UInt64) {
    snake.alpha = random(snake.alpha.shape, seed: seed, scale: 1.5)
    snake.beta = random(snake.beta.shape, seed: seed + 1, scale: 1.5)
}

/// Random Snake parameters everywhere in a module (found by name).
private func randomizeSnakes<M: Module>(_ m: inout M, seed: UInt64) {
    var s = seed
    m.visitParameters(prefix: "") { name, t in
        if name.hasSuffix("alpha") || name.hasSuffix("beta") { t = random(t.shape, seed: s, scale: 1.5); s += 1 }
    }
}

@Suite("1D layer gradients (finite differences)")
struct Layer1DGradientTests {
    init() { TestSetup.singleThreaded }

    static func conv(_ ci: Int, _ co: Int, k: Int, pad: Int, dilation: Int = 1, bias: Bool = true, norm: Bool = false,
                     seed: UInt64) -> Conv1d {
        var initializer = ParameterInitializer(seed: seed)
        return Conv1d(inChannels: ci, outChannels: co, kernelSize: k, padding: pad, dilation: dilation, bias: bias,
                      weightNormalized: norm, initializer: &initializer)
    }

    /// (kernel, padding, dilation, channels in, channels out, bias, weight norm). `ci·co ≤ 8` takes
    /// the direct path (the post filter's), larger products the shifted GEMMs.
    static let convCases: [(Int, Int, Int, Int, Int, Bool, Bool)] = [
        (1, 0, 1, 3, 5, true, false), (1, 1, 1, 6, 3, true, false),   // pointwise; the lightweight encoder's padding 1
        (3, 1, 1, 4, 3, true, true), (7, 3, 1, 3, 4, true, true),     // Oobleck conv2 / conv1
        (7, 9, 3, 3, 3, true, true), (7, 27, 9, 4, 3, true, true),    // residual-unit dilations 3 and 9
        (2, 1, 1, 3, 4, true, true), (7, 3, 1, 4, 5, false, true),    // encoder-block conv; decoder conv2 (no bias)
        (129, 64, 1, 2, 2, true, false), (129, 64, 1, 1, 1, false, false),  // post filter (direct path)
        (7, 3, 1, 2, 3, true, true), (5, 6, 3, 2, 2, false, false),   // direct path, dilated
    ]

    @Test("Conv1d training forward equals the inference forward", arguments: convCases)
    func convForward(c: (Int, Int, Int, Int, Int, Bool, Bool)) {
        let (k, pad, dilation, ci, co, bias, norm) = c
        let layer = Self.conv(ci, co, k: k, pad: pad, dilation: dilation, bias: bias, norm: norm, seed: 1)
        for l in [13, 40] {
            let x = random([3, ci, l], seed: 2)
            let (y, _) = layer.forward(training: x)
            let reference = layer(x)
            #expect(y.shape == reference.shape)
            #expect(y.maxAbsDifference(reference) < 1e-5, "k \(k) pad \(pad) dilation \(dilation) L \(l)")
        }
    }

    @Test("Conv1d gradients (weight, or weight_g and weight_v; bias; input)", arguments: convCases)
    func convGradients(c: (Int, Int, Int, Int, Int, Bool, Bool)) {
        let (k, pad, dilation, ci, co, bias, norm) = c
        let layer = Self.conv(ci, co, k: k, pad: pad, dilation: dilation, bias: bias, norm: norm, seed: 3)
        let n = checkGradients(layer, input: random([2, ci, 11], seed: 4), samples: 4,
                               run: layerRun({ $0.forward(training: $1) }, { m, t, g, grads in m.backward(t, g, prefix: "", into: &grads) }))
        #expect(n == 4 * (2 + (bias ? 1 : 0) + (norm ? 1 : 0)))
    }

    @Test("Conv1d gradients on longer signals (tiles, several samples)")
    func convLong() {
        let layer = Self.conv(5, 6, k: 7, pad: 9, dilation: 3, norm: true, seed: 5)
        checkGradients(layer, input: random([3, 5, 300], seed: 6), samples: 3,
                       run: layerRun({ $0.forward(training: $1) }, { m, t, g, grads in m.backward(t, g, prefix: "", into: &grads) }))
        let post = Self.conv(2, 2, k: 129, pad: 64, seed: 7)
        checkGradients(post, input: random([2, 2, 2100], seed: 8), samples: 3,
                       run: layerRun({ $0.forward(training: $1) }, { m, t, g, grads in m.backward(t, g, prefix: "", into: &grads) }))
    }

    /// (kernel, stride, padding, weight norm).
    static let transposeCases: [(Int, Int, Int, Bool)] = [(2, 1, 1, true), (2, 1, 1, false), (4, 2, 1, true), (5, 3, 2, false)]

    @Test("ConvTranspose1d forward and gradients", arguments: transposeCases)
    func transpose(c: (Int, Int, Int, Bool)) {
        let (k, stride, pad, norm) = c
        var initializer = ParameterInitializer(seed: 9)
        let layer = ConvTranspose1d(inChannels: 4, outChannels: 3, kernelSize: k, stride: stride, padding: pad,
                                    weightNormalized: norm, initializer: &initializer)
        let x = random([2, 4, 9], seed: 10)
        #expect(layer.forward(training: x).0.maxAbsDifference(layer(x)) < 1e-5)
        let n = checkGradients(layer, input: x, samples: 4,
                               run: layerRun({ $0.forward(training: $1) }, { m, t, g, grads in m.backward(t, g, prefix: "", into: &grads) }))
        #expect(n == 4 * (norm ? 4 : 3))
    }

    @Test("Snake forward (including arguments beyond the vector reduction range) and gradients")
    func snake() {
        var s = Snake(channels: 3)
        randomize(&s, seed: 11)
        var x = random([2, 3, 37], seed: 12, scale: 6)
        x.scalars[5] = 9000; x.scalars[40] = -1e5; x.scalars[41] = 3e4
        // Against the formula in double precision (the layer runs 16-lane polynomial sines).
        func exact(_ x: Tensor) -> Tensor {
            var y = x
            for i in 0..<x.count {
                let ch = (i / x.shape[2]) % 3
                let a = Foundation.exp(Double(s.alpha.scalars[ch])), b = Foundation.exp(Double(s.beta.scalars[ch]))
                let v = Double(x.scalars[i]), sine = Foundation.sin(Double(Float(a) * x.scalars[i]))
                y.scalars[i] = Float(v + sine * sine / (b + 1e-9))
            }
            return y
        }
        #expect(s(x).maxAbsDifference(exact(x)) < 1e-2)  // float spacing near 1e5 is 0.008
        #expect(s.forward(training: x).0.maxAbsDifference(s(x)) == 0)
        let small = random([2, 3, 37], seed: 12, scale: 6)
        #expect(s(small).maxAbsDifference(exact(small)) < 5e-6)
        checkGradients(s, input: small, eps: 1e-3, samples: 6,
                       run: layerRun({ $0.forward(training: $1) }, { m, t, g, grads in m.backward(t, g, prefix: "", into: &grads) }))
    }

    @Test("OobleckResidualUnit gradients", arguments: [1, 9])
    func residualUnit(dilation: Int) {
        var initializer = ParameterInitializer(seed: 13)
        var unit = OobleckResidualUnit(channels: 3, dilation: dilation, initializer: &initializer)
        randomizeSnakes(&unit, seed: 14)
        let x = random([2, 3, 20], seed: 15, scale: 2)
        #expect(unit.forward(training: x).0.maxAbsDifference(unit(x)) < 1e-5)
        checkGradients(unit, input: x, eps: 1e-3, samples: 2,
                       run: layerRun({ $0.forward(training: $1) }, { m, t, g, grads in m.backward(t, g, prefix: "", into: &grads) }))
    }

    @Test("Oobleck encoder and decoder blocks (stride 1, as WaLLoC uses them)")
    func blocks() {
        var initializer = ParameterInitializer(seed: 16)
        var enc = OobleckEncoderBlock(inChannels: 3, outChannels: 4, stride: 1, initializer: &initializer)
        var dec = OobleckDecoderBlock(inChannels: 4, outChannels: 3, stride: 1, initializer: &initializer)
        randomizeSnakes(&enc, seed: 17)
        randomizeSnakes(&dec, seed: 18)
        let x = random([2, 3, 14], seed: 19, scale: 2), z = random([2, 4, 14], seed: 20, scale: 2)
        #expect(enc.forward(training: x).0.maxAbsDifference(enc(x)) < 1e-5)
        #expect(dec.forward(training: z).0.maxAbsDifference(dec(z)) < 1e-5)
        checkGradients(enc, input: x, eps: 1e-3, samples: 1,
                       run: layerRun({ $0.forward(training: $1) }, { m, t, g, grads in m.backward(t, g, prefix: "", into: &grads) }))
        checkGradients(dec, input: z, eps: 1e-3, samples: 1,
                       run: layerRun({ $0.forward(training: $1) }, { m, t, g, grads in m.backward(t, g, prefix: "", into: &grads) }))
    }

    @Test("OobleckEncoder and OobleckDecoder gradients (Codec1D's shapes: 2 blocks of stride 1)")
    func encoderDecoder() {
        var initializer = ParameterInitializer(seed: 21)
        var enc = OobleckEncoder(hidden: 2, audioChannels: 4, strides: [1, 1], multiples: [2, 2], initializer: &initializer)
        var dec = OobleckDecoder(channels: 2, inputChannels: 2, audioChannels: 4, strides: [1, 1], multiples: [2, 2],
                                 initializer: &initializer)
        randomizeSnakes(&enc, seed: 22)
        randomizeSnakes(&dec, seed: 23)
        let x = random([2, 4, 10], seed: 24, scale: 2)
        let (latents, _) = enc.forward(training: x)
        #expect(latents.shape == [2, 2, 12])
        #expect(latents.maxAbsDifference(enc(x)) < 1e-5)
        let (decoded, _) = dec.forward(training: latents)
        #expect(decoded.shape == [2, 4, 10])
        #expect(decoded.maxAbsDifference(dec(latents)) < 1e-5)
        checkGradients(enc, input: x, eps: 1e-3, samples: 1,
                       run: layerRun({ $0.forward(training: $1) }, { m, t, g, grads in m.backward(t, g, prefix: "", into: &grads) }))
        checkGradients(dec, input: latents, eps: 1e-3, samples: 1,
                       run: layerRun({ $0.forward(training: $1) }, { m, t, g, grads in m.backward(t, g, prefix: "", into: &grads) }))
    }
}

@Suite("Vectorised 1D synthesis adjoint")
struct FastAdjointTests {
    init() { TestSetup.singleThreaded }

    @Test("synthesis1DFast equals the reference adjoint (short rows, tails, several chunks)",
          arguments: [(1, 8), (2, 64), (3, 200), (1, 4100), (4, 8192)])
    func matches(levels: Int, length: Int) {
        let g = random([2, 3, length], seed: UInt64(length))
        let fast = WaveletAdjoint.synthesis1DFast(g, levels: levels), reference = WaveletAdjoint.synthesis1D(g, levels: levels)
        #expect(fast.shape == reference.shape)
        #expect(fast.maxAbsDifference(reference) < 1e-5)
    }
}
