import Foundation
import Testing
import Walloc

@Suite("Classifier layers (finite differences)")
struct ClassifierLayerTests {
    init() { TestSetup.singleThreaded }

    /// Values that differ by at least `step` from each other (no ties for max pooling to break).
    static func distinct(_ shape: [Int], seed: UInt64, step: Float = 0.1) -> Tensor {
        let n = Tensor.count(of: shape)
        var order = Array(0..<n)
        var rng = SplitMix64(seed: seed)
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, rng.below(i + 1)) }
        return Tensor(shape: shape, scalars: order.map { Float($0) * step - Float(n) * step / 2 })
    }

    @Test("Linear: forward against a hand computation, gradients")
    func linear() {
        var initializer = ParameterInitializer(seed: 1)
        var layer = Linear(inFeatures: 3, outFeatures: 2, initializer: &initializer)
        layer.weight = Tensor(shape: [2, 3], scalars: [1, 2, 3, -1, 0, 0.5])
        layer.bias = Tensor(shape: [2], scalars: [0.5, -1])
        let y = layer.apply(Tensor(shape: [2, 3], scalars: [1, 1, 1, 2, 0, -2]))
        #expect(y.scalars == [6.5, -1.5, -3.5, -4])
        let n = checkGradients(layer, input: random([4, 3], seed: 2)) { m, x in
            let (y, tape) = m.forward(training: x)
            return (y, { g in var grads = Gradients(); let dx = m.backward(tape, g, prefix: "", into: &grads); return (dx, grads) })
        }
        #expect(n == 9)
    }

    @Test("MaxPool 2D: forward values (odd sizes drop the last row and column), gradient")
    func maxPool2D() {
        let x = Tensor(shape: [1, 1, 3, 5], scalars: [1, 5, 2, 0, 9,
                                                     3, 4, 8, 7, 9,
                                                     9, 9, 9, 9, 9])
        let (y, _) = MaxPool.forward(x, window: 2)
        #expect(y.shape == [1, 1, 1, 2])
        #expect(y.scalars == [5, 8])
        checkGradients(NoParameters(), input: Self.distinct([2, 3, 4, 6], seed: 3), samples: 8) { _, x in
            let (y, tape) = MaxPool.forward(x, window: 2)
            return (y, { g in (MaxPool.backward(tape, g), Gradients()) })
        }
    }

    @Test("MaxPool 1D: forward values, gradient")
    func maxPool1D() {
        let (y, tape) = MaxPool.forward(Tensor(shape: [1, 2, 5], scalars: [1, 3, 2, 2, 7, -1, -2, -3, 0, 4]), window: 2)
        #expect(y.scalars == [3, 2, -1, 0])
        #expect(MaxPool.backward(tape, Tensor(shape: [1, 2, 2], scalars: [1, 2, 3, 4])).scalars == [0, 1, 2, 0, 0, 3, 0, 0, 4, 0])
        checkGradients(NoParameters(), input: Self.distinct([2, 3, 9], seed: 4), samples: 8) { _, x in
            let (y, tape) = MaxPool.forward(x, window: 3)
            return (y, { g in (MaxPool.backward(tape, g), Gradients()) })
        }
    }

    @Test("Global average and max pooling: values and gradients")
    func globalPools() {
        let x = Tensor(shape: [1, 2, 2, 2], scalars: [1, 2, 3, 6, -1, -5, 0, -2])
        #expect(GlobalAveragePool.forward(x).scalars == [3, -2])
        #expect(GlobalMaxPool.forward(x).0.scalars == [6, 0])
        checkGradients(NoParameters(), input: random([2, 3, 4, 5], seed: 5), samples: 6) { _, x in
            (GlobalAveragePool.forward(x), { g in (GlobalAveragePool.backward(g, inputShape: x.shape), Gradients()) })
        }
        checkGradients(NoParameters(), input: Self.distinct([2, 3, 7], seed: 6), samples: 6) { _, x in
            let (y, tape) = GlobalMaxPool.forward(x)
            return (y, { g in (GlobalMaxPool.backward(tape, g), Gradients()) })
        }
    }

    @Test("Softmax cross-entropy: reference values and finite differences")
    func crossEntropy() {
        // Uniform logits: loss ln K; logits (0, ln 3): p = (1/4, 3/4).
        let (l1, g1) = SoftmaxCrossEntropy.lossAndGradient(logits: Tensor(zeros: [1, 4]), labels: [2])
        #expect(abs(l1 - Float(log(4.0))) < 1e-6)
        #expect(g1.scalars.enumerated().allSatisfy { abs($0.element - ($0.offset == 2 ? -0.75 : 0.25)) < 1e-6 })
        let (l2, _) = SoftmaxCrossEntropy.lossAndGradient(logits: Tensor(shape: [2, 2], scalars: [0, Float(log(3.0)), 0, Float(log(3.0))]), labels: [0, 1])
        #expect(abs(l2 - Float((log(4.0) + log(4.0 / 3)) / 2)) < 1e-6)
        // Far from uniform, with a very unlikely label: still finite and exact.
        let (l3, _) = SoftmaxCrossEntropy.lossAndGradient(logits: Tensor(shape: [1, 2], scalars: [100, 0]), labels: [1])
        #expect(abs(l3 - 100) < 1e-4)
        let logits = random([3, 5], seed: 7, scale: 4), labels = [4, 0, 2]
        let (_, g) = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels)
        for i in 0..<logits.count {
            var a = logits, b = logits
            a.scalars[i] += 1e-2; b.scalars[i] -= 1e-2
            let numeric = (Double(SoftmaxCrossEntropy.lossAndGradient(logits: a, labels: labels).loss)
                - Double(SoftmaxCrossEntropy.lossAndGradient(logits: b, labels: labels).loss)) / 2e-2
            #expect(abs(numeric - Double(g.scalars[i])) < 2e-3, "logit \(i): numeric \(numeric) vs analytic \(g.scalars[i])")
        }
    }

    @Test("Classifier gradients: 2D and 1D, average and max heads",
          arguments: [(2, "avg", 1), (2, "max", 2), (1, "avg", 2), (1, "max", 1), (2, "avg", 2), (2, "max", 1)])
    func classifier(rank: Int, head: String, pool: Int) throws {
        let config = ClassifierConfig(spatialRank: rank, inputChannels: 3, classes: 4, widths: [4, 8], convsPerStage: 2,
                                      kernelSize: 3, pool: pool, groups: 2, head: head)
        let model = try Classifier(config: config, seed: 8)
        let x = Self.distinct(rank == 2 ? [2, 3, 6, 6] : [2, 3, 12], seed: 9, step: 0.03)
        // Max pooling is piecewise linear: a small step keeps central differences off its kinks.
        checkGradients(model, input: x, eps: head == "max" && pool > 1 ? 2e-4 : 1e-3, rtol: 2e-2, samples: 2) { m, x in
            let (y, tape) = m.forward(training: x)
            return (y, { g in var grads = Gradients(); let dx = m.backward(tape, g, into: &grads, inputGradient: true); return (dx, grads) })
        }
    }
}
