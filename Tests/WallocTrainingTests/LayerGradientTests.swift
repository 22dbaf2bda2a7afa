import Testing
import Walloc

@Suite("Layer gradients (finite differences)")
struct LayerGradientTests {
    init() { TestSetup.singleThreaded }
    static func conv(_ ci: Int, _ co: Int, k: Int, pad: Int, dilation: Int = 1, seed: UInt64) -> Conv2d {
        var initializer = ParameterInitializer(seed: seed)
        return Conv2d(inChannels: ci, outChannels: co, kernelSize: k, padding: pad, dilation: dilation, initializer: &initializer)
    }

    @Test("Conv2d training forward equals the inference forward", arguments: [(3, 1, 1), (3, 0, 1), (3, 2, 2), (1, 0, 1), (1, 1, 1), (5, 2, 1)])
    func convForward(k: Int, pad: Int, dilation: Int) {
        let c = Self.conv(3, 5, k: k, pad: pad, dilation: dilation, seed: 1)
        let x = random([2, 3, 9, 7], seed: 2)
        let (y, _) = c.forward(training: x)
        let reference = c(x)
        #expect(y.shape == reference.shape)
        #expect(y.maxAbsDifference(reference) < 1e-5)
    }

    @Test("Conv2d gradients", arguments: [(3, 1, 1), (3, 0, 1), (3, 2, 2), (1, 0, 1), (1, 1, 1)])
    func convGradients(k: Int, pad: Int, dilation: Int) {
        let c = Self.conv(3, 4, k: k, pad: pad, dilation: dilation, seed: 3)
        let n = checkGradients(c, input: random([2, 3, 6, 5], seed: 4)) { m, x in
            let (y, tape) = m.forward(training: x)
            return (y, { g in var grads = Gradients(); let dx = m.backward(tape, g, prefix: "", into: &grads); return (dx, grads) })
        }
        #expect(n == 9)
    }

    @Test("GroupNorm gradients, plain and fused with SiLU", arguments: [false, true])
    func groupNorm(silu: Bool) {
        var norm = GroupNorm(groups: 2, channels: 4)
        norm.weight = random([4], seed: 5, scale: 0.5)
        norm.weight.scalars = norm.weight.scalars.map { $0 + 1 }
        norm.bias = random([4], seed: 6, scale: 0.5)
        checkGradients(norm, input: random([2, 4, 3, 5], seed: 7, scale: 2), samples: 4) { m, x in
            let (y, tape) = m.forward(training: x, silu: silu)
            #expect(y == m(x, silu: silu))
            return (y, { g in var grads = Gradients(); let dx = m.backward(tape, g, prefix: "", into: &grads); return (dx, grads) })
        }
    }

    @Test("SiLU gradient")
    func silu() {
        checkGradients(NoParameters(), input: random([3, 40], seed: 8, scale: 8), samples: 6) { _, x in
            let (y, tape) = SiLU.forward(training: x)
            return (y, { g in (SiLU.backward(tape, g), Gradients()) })
        }
    }

    @Test("Spatial self-attention gradients and forward")
    func attention() {
        var initializer = ParameterInitializer(seed: 9)
        var att = SpatialSelfAttention(channels: 8, groups: 2, initializer: &initializer)
        // Larger projections so the softmax is far from uniform.
        att.visitParameters(prefix: "") { name, t in if name.hasSuffix("weight") && !name.hasPrefix("group") { t.scalars = t.scalars.map { $0 * 3 } } }
        att.parametersDidChange()
        let x = random([2, 8, 3, 4], seed: 10, scale: 2)
        #expect(att.forward(training: x).0.maxAbsDifference(att(x)) < 1e-5)
        checkGradients(att, input: x) { m, x in
            let (y, tape) = m.forward(training: x)
            return (y, { g in var grads = Gradients(); let dx = m.backward(tape, g, prefix: "", into: &grads); return (dx, grads) })
        }
    }

    @Test("ResnetBlock2D gradients, with and without the shortcut convolution", arguments: [4, 8])
    func resnet(outChannels: Int) {
        var initializer = ParameterInitializer(seed: 11)
        let block = ResnetBlock2D(inChannels: 4, outChannels: outChannels, groups: 2, initializer: &initializer)
        let x = random([2, 4, 4, 3], seed: 12, scale: 2)
        #expect(block.forward(training: x).0.maxAbsDifference(block(x)) < 1e-5)
        checkGradients(block, input: x, samples: 2) { m, x in
            let (y, tape) = m.forward(training: x)
            return (y, { g in var grads = Gradients(); let dx = m.backward(tape, g, prefix: "", into: &grads); return (dx, grads) })
        }
    }

    @Test("MidBlock2D gradients")
    func midBlock() {
        var initializer = ParameterInitializer(seed: 13)
        let block = MidBlock2D(channels: 4, groups: 2, initializer: &initializer)
        let x = random([2, 4, 3, 3], seed: 14, scale: 2)
        #expect(block.forward(training: x).0.maxAbsDifference(block(x)) < 1e-5)
        checkGradients(block, input: x, samples: 2) { m, x in
            let (y, tape) = m.forward(training: x)
            return (y, { g in var grads = Gradients(); let dx = m.backward(tape, g, prefix: "", into: &grads); return (dx, grads) })
        }
    }

    @Test("VAEDecoder gradients (32 groups, as Codec2D uses it)")
    func decoder() {
        var initializer = ParameterInitializer(seed: 15)
        let dec = VAEDecoder(inChannels: 3, outChannels: 5, width: 32, initializer: &initializer)
        let x = random([2, 3, 3, 3], seed: 16, scale: 2)
        #expect(dec.forward(training: x).0.maxAbsDifference(dec(x)) < 1e-4)
        checkGradients(dec, input: x, samples: 2) { m, x in
            let (y, tape) = m.forward(training: x)
            return (y, { g in var grads = Gradients(); let dx = m.backward(tape, g, prefix: "", into: &grads); return (dx, grads) })
        }
    }

    @Test("VAEEncoder gradients (32 groups, as Codec2D uses it)")
    func encoder() {
        var initializer = ParameterInitializer(seed: 17)
        let enc = VAEEncoder(inChannels: 5, outChannels: 3, width: 32, initializer: &initializer)
        let x = random([2, 5, 3, 3], seed: 18, scale: 2)
        #expect(enc.forward(training: x).0.maxAbsDifference(enc(x)) < 1e-4)
        checkGradients(enc, input: x, samples: 2) { m, x in
            let (y, tape) = m.forward(training: x)
            return (y, { g in var grads = Gradients(); let dx = m.backward(tape, g, prefix: "", into: &grads); return (dx, grads) })
        }
    }
}
