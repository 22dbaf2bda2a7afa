import Foundation
import WallocNN
import WallocTensor

private typealias V = Trig.V

extension Snake {
    /// Training forward pass: the inference pass (vectorised); the tape is the input.
    public func forward(training x: Tensor) -> (Tensor, Tensor) { (self(x), x) }

    /// Backward pass: `dx = dy·(1 + α·sin(2αx)/(β + ε))`, `d alpha = Σ dy·x·sin(2αx)·α/(β + ε)`,
    /// `d beta = −Σ dy·sin²(αx)·β/(β + ε)²` (per channel; adds `alpha` and `beta` under `prefix`).
    public func backward(_ input: Tensor, _ gradOutput: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        let n = input.shape[0], c = channels, l = input.shape[2]
        precondition(gradOutput.shape == input.shape, "Snake gradient shape \(gradOutput.shape)")
        let coeff = coefficients()
        var dx = Tensor(uninitialized: input.shape)
        var partial = [Double](repeating: 0, count: 2 * n * c)
        input.withUnsafeBufferPointer { xb in
            gradOutput.withUnsafeBufferPointer { gb in
                dx.withUnsafeMutableBufferPointer { db in
                    partial.withUnsafeMutableBufferPointer { pb in
                        parallelFor(n * c) { row in
                            let (a, inv, _) = coeff[row % c]
                            let xr = xb.baseAddress! + row * l, gr = gb.baseAddress! + row * l, dr = db.baseAddress! + row * l
                            let av = V(repeating: a), twoAInv = V(repeating: 2 * a * inv)
                            var accA = V(repeating: 0), accB = V(repeating: 0), largest = V(repeating: 0)
                            var i = 0
                            while i + 16 <= l {
                                let xv = UnsafeRawPointer(xr + i).loadUnaligned(as: V.self)
                                let gv = UnsafeRawPointer(gr + i).loadUnaligned(as: V.self)
                                let ax = xv * av, m = Trig.magnitude(ax)
                                largest.replace(with: m, where: m .> largest)
                                let (s, cs) = Trig.sincos(ax)
                                let sc = s * cs  // sin(2αx)/2
                                UnsafeMutableRawPointer(dr + i).storeBytes(of: gv.addingProduct(gv * sc, twoAInv), as: V.self)
                                accA = accA.addingProduct(gv * sc, xv)
                                accB = accB.addingProduct(gv * s, s)
                                i += 16
                            }
                            var sumA = Double(accA.sum()), sumB = Double(accB.sum())
                            if largest.max() > Trig.reductionLimit { i = 0; sumA = 0; sumB = 0 }
                            while i < l {
                                let s = Foundation.sin(a * xr[i]), cs = Foundation.cos(a * xr[i])
                                dr[i] = gr[i] * (1 + 2 * a * inv * s * cs)
                                sumA += Double(gr[i] * s * cs * xr[i]); sumB += Double(gr[i] * s * s)
                                i += 1
                            }
                            pb[2 * row] = sumA
                            pb[2 * row + 1] = sumB
                        }
                    }
                }
            }
        }
        var dAlpha = Tensor(zeros: alpha.shape), dBeta = Tensor(zeros: beta.shape)
        for ch in 0..<c {
            var sa: Double = 0, sb: Double = 0
            for s in 0..<n { sa += partial[2 * (s * c + ch)]; sb += partial[2 * (s * c + ch) + 1] }
            let (a, inv, b) = coeff[ch]
            dAlpha.scalars[ch] = Float(sa * 2 * Double(a) * Double(inv))
            dBeta.scalars[ch] = Float(-sb * Double(b) * Double(inv) * Double(inv))
        }
        gradients.accumulate(key(prefix, "alpha"), dAlpha)
        gradients.accumulate(key(prefix, "beta"), dBeta)
        return dx
    }

    typealias V = SIMD16<Float>
}

/// Tape of an `OobleckResidualUnit`.
public struct OobleckUnitTape: Sendable {
    let snake1: Tensor, conv1: Conv1dTape, snake2: Tensor, conv2: Conv1dTape
}

extension OobleckResidualUnit {
    public func forward(training x: Tensor) -> (Tensor, OobleckUnitTape) {
        let (a, t1) = snake1.forward(training: x)
        let (b, t2) = conv1.forward(training: a)
        let (c, t3) = snake2.forward(training: b)
        var (y, t4) = conv2.forward(training: c)
        // y += x, centre-cropped to y's length.
        let l = x.shape[2], ly = y.shape[2], crop = (l - ly) / 2
        y.withUnsafeMutableBufferPointer { yb in
            x.withUnsafeBufferPointer { xb in
                parallelFor(x.shape[0] * x.shape[1]) { r in
                    VectorMath.add(xb.baseAddress! + r * l + crop, into: yb.baseAddress! + r * ly, count: ly)
                }
            }
        }
        return (y, OobleckUnitTape(snake1: t1, conv1: t2, snake2: t3, conv2: t4))
    }

    public func backward(_ tape: OobleckUnitTape, _ g: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        var d = conv2.backward(tape.conv2, g, prefix: key(prefix, "conv2"), into: &gradients)
        d = snake2.backward(tape.snake2, d, prefix: key(prefix, "snake2"), into: &gradients)
        d = conv1.backward(tape.conv1, d, prefix: key(prefix, "conv1"), into: &gradients)
        d = snake1.backward(tape.snake1, d, prefix: key(prefix, "snake1"), into: &gradients)
        // The residual path: g lands on the centre-cropped positions.
        let l = d.shape[2], ly = g.shape[2], crop = (l - ly) / 2, rows = d.shape[0] * d.shape[1]
        d.withUnsafeMutableBufferPointer { db in
            g.withUnsafeBufferPointer { gb in
                parallelFor(rows) { r in
                    VectorMath.add(gb.baseAddress! + r * ly, into: db.baseAddress! + r * l + crop, count: ly)
                }
            }
        }
        return d
    }
}

/// Tape of an `OobleckEncoderBlock`.
public struct OobleckEncoderBlockTape: Sendable {
    let units: [OobleckUnitTape], snake: Tensor, conv: Conv1dTape
}

extension OobleckEncoderBlock {
    public func forward(training x: Tensor) -> (Tensor, OobleckEncoderBlockTape) {
        var h = x, tapes = [OobleckUnitTape]()
        for u in units { let (y, t) = u.forward(training: h); h = y; tapes.append(t) }
        let (s, ts) = snake.forward(training: h)
        let (y, tc) = conv.forward(training: s)
        return (y, OobleckEncoderBlockTape(units: tapes, snake: ts, conv: tc))
    }

    public func backward(_ tape: OobleckEncoderBlockTape, _ g: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        var d = conv.backward(tape.conv, g, prefix: key(prefix, "conv1"), into: &gradients)
        d = snake.backward(tape.snake, d, prefix: key(prefix, "snake1"), into: &gradients)
        for i in units.indices.reversed() {
            d = units[i].backward(tape.units[i], d, prefix: key(prefix, "res_unit\(i + 1)"), into: &gradients)
        }
        return d
    }
}

/// Tape of an `OobleckDecoderBlock`.
public struct OobleckDecoderBlockTape: Sendable {
    let snake: Tensor, conv: ConvTranspose1dTape, units: [OobleckUnitTape]
}

extension OobleckDecoderBlock {
    public func forward(training x: Tensor) -> (Tensor, OobleckDecoderBlockTape) {
        let (s, ts) = snake.forward(training: x)
        var (h, tc) = conv.forward(training: s)
        var tapes = [OobleckUnitTape]()
        for u in units { let (y, t) = u.forward(training: h); h = y; tapes.append(t) }
        return (h, OobleckDecoderBlockTape(snake: ts, conv: tc, units: tapes))
    }

    public func backward(_ tape: OobleckDecoderBlockTape, _ g: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        var d = g
        for i in units.indices.reversed() {
            d = units[i].backward(tape.units[i], d, prefix: key(prefix, "res_unit\(i + 1)"), into: &gradients)
        }
        d = conv.backward(tape.conv, d, prefix: key(prefix, "conv_t1"), into: &gradients)
        return snake.backward(tape.snake, d, prefix: key(prefix, "snake1"), into: &gradients)
    }
}

/// Tape of an `OobleckEncoder` or `OobleckDecoder`.
public struct OobleckTape: Sendable {
    let conv1: Conv1dTape
    let encoderBlocks: [OobleckEncoderBlockTape], decoderBlocks: [OobleckDecoderBlockTape]
    let snake: Tensor, conv2: Conv1dTape
}

extension OobleckEncoder {
    public func forward(training x: Tensor) -> (Tensor, OobleckTape) {
        var (h, t1) = conv1.forward(training: x)
        var tapes = [OobleckEncoderBlockTape]()
        for b in blocks { let (y, t) = b.forward(training: h); h = y; tapes.append(t) }
        let (s, ts) = snake.forward(training: h)
        let (y, t2) = conv2.forward(training: s)
        return (y, OobleckTape(conv1: t1, encoderBlocks: tapes, decoderBlocks: [], snake: ts, conv2: t2))
    }

    /// Backward pass; `inputGradient: false` skips the first convolution's input gradient.
    public func backward(_ tape: OobleckTape, _ g: Tensor, prefix: String, into gradients: inout Gradients,
                         inputGradient: Bool = true) -> Tensor {
        var d = conv2.backward(tape.conv2, g, prefix: key(prefix, "conv2"), into: &gradients)
        d = snake.backward(tape.snake, d, prefix: key(prefix, "snake1"), into: &gradients)
        for i in blocks.indices.reversed() {
            d = blocks[i].backward(tape.encoderBlocks[i], d, prefix: key(prefix, "block.\(i)"), into: &gradients)
        }
        return conv1.backward(tape.conv1, d, prefix: key(prefix, "conv1"), into: &gradients, inputGradient: inputGradient)
    }
}

extension OobleckDecoder {
    public func forward(training x: Tensor) -> (Tensor, OobleckTape) {
        var (h, t1) = conv1.forward(training: x)
        var tapes = [OobleckDecoderBlockTape]()
        for b in blocks { let (y, t) = b.forward(training: h); h = y; tapes.append(t) }
        let (s, ts) = snake.forward(training: h)
        let (y, t2) = conv2.forward(training: s)
        return (y, OobleckTape(conv1: t1, encoderBlocks: [], decoderBlocks: tapes, snake: ts, conv2: t2))
    }

    public func backward(_ tape: OobleckTape, _ g: Tensor, prefix: String, into gradients: inout Gradients) -> Tensor {
        var d = conv2.backward(tape.conv2, g, prefix: key(prefix, "conv2"), into: &gradients)
        d = snake.backward(tape.snake, d, prefix: key(prefix, "snake1"), into: &gradients)
        for i in blocks.indices.reversed() {
            d = blocks[i].backward(tape.decoderBlocks[i], d, prefix: key(prefix, "block.\(i)"), into: &gradients)
        }
        return conv1.backward(tape.conv1, d, prefix: key(prefix, "conv1"), into: &gradients)
    }
}
