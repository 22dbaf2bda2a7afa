import WallocTensor

/// diffusers' `ResnetBlock2D` without time embedding: `x + conv2(silu(norm2(conv1(silu(norm1(x))))))`,
/// with a 1x1 shortcut convolution when the channel count changes.
public struct ResnetBlock2D: Module {
    public var norm1: GroupNorm, conv1: Conv2d, norm2: GroupNorm, conv2: Conv2d
    public var shortcut: Conv2d?

    public init(inChannels: Int, outChannels: Int, groups: Int, eps: Float = 1e-6, initializer: inout ParameterInitializer) {
        norm1 = GroupNorm(groups: groups, channels: inChannels, eps: eps)
        conv1 = Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: 3, padding: 1, initializer: &initializer)
        norm2 = GroupNorm(groups: groups, channels: outChannels, eps: eps)
        conv2 = Conv2d(inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1, initializer: &initializer)
        shortcut = inChannels == outChannels ? nil
            : Conv2d(inChannels: inChannels, outChannels: outChannels, kernelSize: 1, initializer: &initializer)
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try norm1.visitParameters(prefix: key(prefix, "norm1"), body)
        try conv1.visitParameters(prefix: key(prefix, "conv1"), body)
        try norm2.visitParameters(prefix: key(prefix, "norm2"), body)
        try conv2.visitParameters(prefix: key(prefix, "conv2"), body)
        if shortcut != nil { try shortcut!.visitParameters(prefix: key(prefix, "conv_shortcut"), body) }
    }

    public mutating func parametersDidChange() {
        conv1.parametersDidChange(); conv2.parametersDidChange(); shortcut?.parametersDidChange()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = conv1(norm1(x, silu: true))
        h = conv2(norm2(h, silu: true))
        let residual = shortcut.map { $0(x) } ?? x
        h.withUnsafeMutableBufferPointer { hb in
            residual.withUnsafeBufferPointer { rb in
                parallelChunks(hb.count, minChunk: 1 << 14) { r in
                    VectorMath.add(rb.baseAddress! + r.lowerBound, into: hb.baseAddress! + r.lowerBound, count: r.count)
                }
            }
        }
        return h
    }
}

/// diffusers' `UNetMidBlock2D` as the VAE uses it: resnet, self-attention, resnet.
public struct MidBlock2D: Module {
    public var resnet0: ResnetBlock2D, attention: SpatialSelfAttention, resnet1: ResnetBlock2D

    public init(channels: Int, groups: Int, initializer: inout ParameterInitializer) {
        resnet0 = ResnetBlock2D(inChannels: channels, outChannels: channels, groups: groups, initializer: &initializer)
        attention = SpatialSelfAttention(channels: channels, groups: groups, initializer: &initializer)
        resnet1 = ResnetBlock2D(inChannels: channels, outChannels: channels, groups: groups, initializer: &initializer)
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try attention.visitParameters(prefix: key(prefix, "attentions.0"), body)
        try resnet0.visitParameters(prefix: key(prefix, "resnets.0"), body)
        try resnet1.visitParameters(prefix: key(prefix, "resnets.1"), body)
    }

    public mutating func parametersDidChange() {
        resnet0.parametersDidChange(); attention.parametersDidChange(); resnet1.parametersDidChange()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { resnet1(attention(resnet0(x))) }
}

/// diffusers' VAE `Encoder` with one `DownEncoderBlock2D` (no downsampling), as WaLLoC's full
/// 2D encoder: conv_in, 2 resnets, mid-block, group norm + SiLU, conv_out.
public struct VAEEncoder: Module {
    public var convIn: Conv2d
    public var resnets: [ResnetBlock2D]
    public var mid: MidBlock2D
    public var normOut: GroupNorm
    public var convOut: Conv2d

    public init(inChannels: Int, outChannels: Int, width: Int, groups: Int = 32, initializer: inout ParameterInitializer) {
        convIn = Conv2d(inChannels: inChannels, outChannels: width, kernelSize: 3, padding: 1, initializer: &initializer)
        resnets = (0..<2).map { _ in ResnetBlock2D(inChannels: width, outChannels: width, groups: groups, initializer: &initializer) }
        mid = MidBlock2D(channels: width, groups: groups, initializer: &initializer)
        normOut = GroupNorm(groups: groups, channels: width)
        convOut = Conv2d(inChannels: width, outChannels: outChannels, kernelSize: 3, padding: 1, initializer: &initializer)
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try convIn.visitParameters(prefix: key(prefix, "conv_in"), body)
        for i in resnets.indices { try resnets[i].visitParameters(prefix: key(prefix, "down_blocks.0.resnets.\(i)"), body) }
        try mid.visitParameters(prefix: key(prefix, "mid_block"), body)
        try normOut.visitParameters(prefix: key(prefix, "conv_norm_out"), body)
        try convOut.visitParameters(prefix: key(prefix, "conv_out"), body)
    }

    public mutating func parametersDidChange() {
        convIn.parametersDidChange()
        for i in resnets.indices { resnets[i].parametersDidChange() }
        mid.parametersDidChange(); convOut.parametersDidChange()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = convIn(x)
        for r in resnets { h = r(h) }
        h = mid(h)
        return convOut(normOut(h, silu: true))
    }
}

/// diffusers' VAE `Decoder` with one `UpDecoderBlock2D` (no upsampling), WaLLoC's 2D decoder:
/// conv_in, mid-block, 3 resnets, group norm + SiLU, conv_out.
public struct VAEDecoder: Module {
    public var convIn: Conv2d
    public var mid: MidBlock2D
    public var resnets: [ResnetBlock2D]
    public var normOut: GroupNorm
    public var convOut: Conv2d

    public init(inChannels: Int, outChannels: Int, width: Int, groups: Int = 32, initializer: inout ParameterInitializer) {
        convIn = Conv2d(inChannels: inChannels, outChannels: width, kernelSize: 3, padding: 1, initializer: &initializer)
        mid = MidBlock2D(channels: width, groups: groups, initializer: &initializer)
        resnets = (0..<3).map { _ in ResnetBlock2D(inChannels: width, outChannels: width, groups: groups, initializer: &initializer) }
        normOut = GroupNorm(groups: groups, channels: width)
        convOut = Conv2d(inChannels: width, outChannels: outChannels, kernelSize: 3, padding: 1, initializer: &initializer)
    }

    public mutating func visitParameters(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try convIn.visitParameters(prefix: key(prefix, "conv_in"), body)
        try mid.visitParameters(prefix: key(prefix, "mid_block"), body)
        for i in resnets.indices { try resnets[i].visitParameters(prefix: key(prefix, "up_blocks.0.resnets.\(i)"), body) }
        try normOut.visitParameters(prefix: key(prefix, "conv_norm_out"), body)
        try convOut.visitParameters(prefix: key(prefix, "conv_out"), body)
    }

    public mutating func parametersDidChange() {
        convIn.parametersDidChange(); mid.parametersDidChange()
        for i in resnets.indices { resnets[i].parametersDidChange() }
        convOut.parametersDidChange()
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = mid(convIn(x))
        for r in resnets { h = r(h) }
        return convOut(normOut(h, silu: true))
    }
}
