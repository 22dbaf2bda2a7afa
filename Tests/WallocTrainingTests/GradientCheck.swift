import Foundation
import Testing
import Walloc

/// Deterministic pseudo-random tensor with values in [-scale/2, scale/2).
func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    let n = Tensor.count(of: shape)
    var v = [Float](repeating: 0, count: n)
    for i in 0..<n {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        v[i] = (Float(state >> 40) / Float(1 << 24) - 0.5) * scale
    }
    return Tensor(shape: shape, scalars: v)
}

/// `Σ a·b` in double.
func dot(_ a: Tensor, _ b: Tensor) -> Double {
    var s: Double = 0
    for i in 0..<a.count { s += Double(a.scalars[i]) * Double(b.scalars[i]) }
    return s
}

/// Finite-difference gradient check of a layer with the training convention.
///
/// The scalar checked is `L = Σ y ⊙ R` for a fixed random `R`; the analytic gradients come from
/// `backward(R)`. For the input and for every parameter, `samples` random coordinates are
/// perturbed by `±eps` (central differences, float32 forward, double sum). A coordinate passes if
/// `|numeric − analytic| ≤ rtol · max(|numeric|, |analytic|, floor)`, with `floor` 2% of the
/// largest analytic gradient of that tensor, plus the absolute resolution of float32 differences.
/// Returns the number of coordinates checked.
@discardableResult
func checkGradients<M: Module>(
    _ module: M, input: Tensor, eps: Float = 1e-2, rtol: Float = 1e-2, samples: Int = 3, checkInput: Bool = true,
    sourceLocation: SourceLocation = #_sourceLocation,
    run: (M, Tensor) -> (Tensor, (Tensor) -> (Tensor, Gradients))
) -> Int {
    let (y, back) = run(module, input)
    let r = random(y.shape, seed: 99)
    let (dx, grads) = back(r)
    func loss(_ m: M, _ x: Tensor) -> Double { dot(run(m, x).0, r) }
    // What float32 round-off in the forward pass lets central differences resolve: about
    // 1e-6 of Σ|y·r| over 2·eps (gradients below it are indistinguishable from zero).
    var magnitude: Double = 0
    for i in 0..<y.count { magnitude += abs(Double(y.scalars[i]) * Double(r.scalars[i])) }
    let atol = Float(1e-6 * magnitude) / (2 * eps)
    var checked = 0
    func compare(_ name: String, _ analytic: Tensor, perturb: (Int, Float) -> Double) {
        let floor = 0.02 * analytic.maxMagnitude
        var state = name.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 } | 1
        for s in 0..<samples {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            let i = s == 0 ? (analytic.scalars.indices.max { abs(analytic.scalars[$0]) < abs(analytic.scalars[$1]) } ?? 0)
                : Int(state % UInt64(analytic.count))
            let numeric = Float((perturb(i, eps) - perturb(i, -eps)) / Double(2 * eps))
            let a = analytic.scalars[i]
            let bound = rtol * max(abs(numeric), abs(a), floor) + atol
            #expect(abs(numeric - a) <= bound, "\(name)[\(i)]: numeric \(numeric) vs analytic \(a)", sourceLocation: sourceLocation)
            checked += 1
        }
    }
    if checkInput {
        compare("input", dx) { i, e in
            var x = input
            x.scalars[i] += e
            return loss(module, x)
        }
    }
    for (name, p) in module.namedParameters() {
        guard let g = grads[name] else {
            Issue.record("no gradient for parameter \(name)", sourceLocation: sourceLocation)
            continue
        }
        #expect(g.shape == p.shape, "gradient shape of \(name)", sourceLocation: sourceLocation)
        compare(name, g) { i, e in
            var m = module
            m.visitParameters(prefix: "") { n, t in if n == name { t.scalars[i] += e } }
            m.parametersDidChange()
            return loss(m, input)
        }
    }
    #expect(grads.values.count == module.namedParameters().count, "gradient keys", sourceLocation: sourceLocation)
    return checked
}

/// A parameterless "module" for checking pure functions with `checkGradients`.
struct NoParameters: Module {
    mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {}
}

/// Debug builds trip `WorkerPool`'s `withoutActuallyEscaping` check on the first multi-threaded
/// `parallelFor` (a pre-existing issue of the pool under -Onone, seen in WallocTests too), so the
/// training tests run the kernels on one thread; the release benchmark covers the threaded paths.
enum TestSetup {
    static let singleThreaded: Void = Threading.setCount(1)
}
