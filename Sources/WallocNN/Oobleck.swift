import Foundation
import WallocTensor

/// The Snake activation in diffusers' Oobleck form, per channel of `[N, C, L]`:
/// `x + sin²(α x) / (β + 1e-9)` with `α = exp(alpha)`, `β = exp(beta)` (log-scale parameters).
public struct Snake: Module {
    public var alpha: Tensor  // [1, C, 1]
    public var beta: Tensor   // [1, C, 1]

    public init(channels: Int) {
        alpha = Tensor(zeros: [1, channels, 1])
        beta = Tensor(zeros: [1, channels, 1])
    }

    public var channels: Int { alpha.count }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try body(key(prefix, "alpha"), &alpha)
        try body(key(prefix, "beta"), &beta)
    }

    /// Per-channel `(α, 1/(β + 1e-9), β)` with `α = exp(alpha)`, `β = exp(beta)`.
    public func coefficients() -> [(Float, Float, Float)] {
        (0..<channels).map { ch in
            let a = Foundation.exp(alpha.scalars[ch]), b = Foundation.exp(beta.scalars[ch])
            return (a, 1 / (b + 1e-9), b)
        }
    }

    /// `x + sin²(αx)/(β + 1e-9)` with `α = exp(alpha)`, `β = exp(beta)` per channel, 16 lanes at
    /// a time (`Trig`, about 1e-7 absolute error); rows with arguments beyond `Trig.reductionLimit`
    /// take the library sine.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3 && x.shape[1] == channels, "Snake expects [N, \(channels), L], got \(x.shape)")
        let c = channels, l = x.shape[2]
        let coeff = coefficients()
        var out = Tensor(uninitialized: x.shape)
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                parallelFor(x.shape[0] * c) { row in
                    let (a, inv, _) = coeff[row % c]
                    let xr = xb.baseAddress! + row * l, yr = ob.baseAddress! + row * l
                    let av = Trig.V(repeating: a), iv = Trig.V(repeating: inv)
                    var largest = Trig.V(repeating: 0)
                    var i = 0
                    while i + 16 <= l {
                        let v = UnsafeRawPointer(xr + i).loadUnaligned(as: Trig.V.self), ax = v * av
                        let m = Trig.magnitude(ax)
                        largest.replace(with: m, where: m .> largest)
                        let s = Trig.sincos(ax).0
                        UnsafeMutableRawPointer(yr + i).storeBytes(of: v.addingProduct(s * s, iv), as: Trig.V.self)
                        i += 16
                    }
                    // The tail, and rows with arguments beyond the vector reduction: library sine.
                    let from = largest.max() > Trig.reductionLimit ? 0 : i
                    for t in from..<l {
                        let s = Foundation.sin(a * xr[t])
                        yr[t] = xr[t] + inv * s * s
                    }
                }
            }
        }
        return out
    }
}

/// Oobleck residual unit: `x + conv2(snake2(conv1(snake1(x))))`, conv1 a dilated kernel-7
/// convolution, conv2 pointwise, both weight-normalised.
public struct OobleckResidualUnit: Module {
    public var snake1: Snake, conv1: Conv1d, snake2: Snake, conv2: Conv1d

    public init(channels: Int, dilation: Int, initializer: inout ParameterInitializer) {
        snake1 = Snake(channels: channels)
        conv1 = Conv1d(inChannels: channels, outChannels: channels, kernelSize: 7, padding: 3 * dilation,
                       dilation: dilation, weightNormalized: true, initializer: &initializer)
        snake2 = Snake(channels: channels)
        conv2 = Conv1d(inChannels: channels, outChannels: channels, kernelSize: 1, weightNormalized: true, initializer: &initializer)
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try snake1.visitParameters(prefix: key(prefix, "snake1"), body)
        try conv1.visitParameters(prefix: key(prefix, "conv1"), body)
        try snake2.visitParameters(prefix: key(prefix, "snake2"), body)
        try conv2.visitParameters(prefix: key(prefix, "conv2"), body)
    }

    public mutating func parametersDidChange() { conv1.parametersDidChange(); conv2.parametersDidChange() }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = conv2(snake2(conv1(snake1(x))))
        let l = x.shape[2], ly = y.shape[2], crop = (l - ly) / 2
        let rows = x.shape[0] * x.shape[1]
        y.withUnsafeMutableBufferPointer { yb in
            x.withUnsafeBufferPointer { xb in
                parallelFor(rows) { r in
                    VectorMath.add(xb.baseAddress! + r * l + crop, into: yb.baseAddress! + r * ly, count: ly)
                }
            }
        }
        return y
    }
}

/// Three residual units with dilations 1, 3, 9.
func residualUnits(_ channels: Int, _ initializer: inout ParameterInitializer) -> [OobleckResidualUnit] {
    [1, 3, 9].map { OobleckResidualUnit(channels: channels, dilation: $0, initializer: &initializer) }
}

/// Oobleck encoder block: three residual units, Snake, then a strided convolution (kernel 2·stride).
public struct OobleckEncoderBlock: Module {
    public var units: [OobleckResidualUnit], snake: Snake, conv: Conv1d

    public init(inChannels: Int, outChannels: Int, stride: Int, initializer: inout ParameterInitializer) {
        units = residualUnits(inChannels, &initializer)
        snake = Snake(channels: inChannels)
        conv = Conv1d(inChannels: inChannels, outChannels: outChannels, kernelSize: 2 * stride, stride: stride,
                      padding: (stride + 1) / 2, weightNormalized: true, initializer: &initializer)
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        for i in units.indices { try units[i].visitParameters(prefix: key(prefix, "res_unit\(i + 1)"), body) }
        try snake.visitParameters(prefix: key(prefix, "snake1"), body)
        try conv.visitParameters(prefix: key(prefix, "conv1"), body)
    }

    public mutating func parametersDidChange() {
        for i in units.indices { units[i].parametersDidChange() }
        conv.parametersDidChange()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for u in units { h = u(h) }
        return conv(snake(h))
    }
}

/// Oobleck decoder block: Snake, a transposed convolution (kernel 2·stride), three residual units.
public struct OobleckDecoderBlock: Module {
    public var snake: Snake, conv: ConvTranspose1d, units: [OobleckResidualUnit]

    public init(inChannels: Int, outChannels: Int, stride: Int, initializer: inout ParameterInitializer) {
        snake = Snake(channels: inChannels)
        conv = ConvTranspose1d(inChannels: inChannels, outChannels: outChannels, kernelSize: 2 * stride, stride: stride,
                               padding: (stride + 1) / 2, weightNormalized: true, initializer: &initializer)
        units = residualUnits(outChannels, &initializer)
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try snake.visitParameters(prefix: key(prefix, "snake1"), body)
        try conv.visitParameters(prefix: key(prefix, "conv_t1"), body)
        for i in units.indices { try units[i].visitParameters(prefix: key(prefix, "res_unit\(i + 1)"), body) }
    }

    public mutating func parametersDidChange() {
        conv.parametersDidChange()
        for i in units.indices { units[i].parametersDidChange() }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = conv(snake(x))
        for u in units { h = u(h) }
        return h
    }
}

/// diffusers' `OobleckEncoder`: conv, encoder blocks, Snake, conv to `hidden` channels.
/// WaLLoC uses strides `[1, 1]` and channel multiples `[m, m]`, so each block lengthens by one.
public struct OobleckEncoder: Module {
    public var conv1: Conv1d, blocks: [OobleckEncoderBlock], snake: Snake, conv2: Conv1d

    public init(hidden: Int, audioChannels: Int, strides: [Int], multiples: [Int], initializer: inout ParameterInitializer) {
        let cm = [1] + multiples
        conv1 = Conv1d(inChannels: audioChannels, outChannels: hidden, kernelSize: 7, padding: 3,
                       weightNormalized: true, initializer: &initializer)
        blocks = strides.indices.map { i in
            OobleckEncoderBlock(inChannels: hidden * cm[i], outChannels: hidden * cm[i + 1], stride: strides[i], initializer: &initializer)
        }
        snake = Snake(channels: hidden * cm[cm.count - 1])
        conv2 = Conv1d(inChannels: hidden * cm[cm.count - 1], outChannels: hidden, kernelSize: 3, padding: 1,
                       weightNormalized: true, initializer: &initializer)
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try conv1.visitParameters(prefix: key(prefix, "conv1"), body)
        for i in blocks.indices { try blocks[i].visitParameters(prefix: key(prefix, "block.\(i)"), body) }
        try snake.visitParameters(prefix: key(prefix, "snake1"), body)
        try conv2.visitParameters(prefix: key(prefix, "conv2"), body)
    }

    public mutating func parametersDidChange() {
        conv1.parametersDidChange()
        for i in blocks.indices { blocks[i].parametersDidChange() }
        conv2.parametersDidChange()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = conv1(x)
        for b in blocks { h = b(h) }
        return conv2(snake(h))
    }
}

/// diffusers' `OobleckDecoder`: conv, decoder blocks, Snake, conv (no bias) to the audio channels.
public struct OobleckDecoder: Module {
    public var conv1: Conv1d, blocks: [OobleckDecoderBlock], snake: Snake, conv2: Conv1d

    public init(channels: Int, inputChannels: Int, audioChannels: Int, strides: [Int], multiples: [Int],
                initializer: inout ParameterInitializer) {
        let cm = [1] + multiples
        let count = strides.count
        conv1 = Conv1d(inChannels: inputChannels, outChannels: channels * cm[count], kernelSize: 7, padding: 3,
                       weightNormalized: true, initializer: &initializer)
        blocks = strides.indices.map { i in
            OobleckDecoderBlock(inChannels: channels * cm[count - i], outChannels: channels * cm[count - i - 1],
                                stride: strides[i], initializer: &initializer)
        }
        snake = Snake(channels: channels)
        conv2 = Conv1d(inChannels: channels, outChannels: audioChannels, kernelSize: 7, padding: 3, bias: false,
                       weightNormalized: true, initializer: &initializer)
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try conv1.visitParameters(prefix: key(prefix, "conv1"), body)
        for i in blocks.indices { try blocks[i].visitParameters(prefix: key(prefix, "block.\(i)"), body) }
        try snake.visitParameters(prefix: key(prefix, "snake1"), body)
        try conv2.visitParameters(prefix: key(prefix, "conv2"), body)
    }

    public mutating func parametersDidChange() {
        conv1.parametersDidChange()
        for i in blocks.indices { blocks[i].parametersDidChange() }
        conv2.parametersDidChange()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = conv1(x)
        for b in blocks { h = b(h) }
        return conv2(snake(h))
    }
}
