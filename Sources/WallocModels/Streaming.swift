import WallocNN
import WallocTensor
import WallocWavelets

/// Random access to a long 1D signal `[C, L]` as the codec sees it (prepared: level-normalised
/// and padded to a multiple of 2^J), so it can be encoded in pieces.
public protocol SignalSource {
    var channels: Int { get }
    /// Samples per channel, `L` (a multiple of 2^J).
    var length: Int { get }
    /// Samples `[C, range.count]` for `range`, which may reach outside `0..<L`: indices wrap
    /// around (the transform is periodic).
    func read(_ range: Range<Int>) throws -> Tensor
}

/// A `SignalSource` over a signal in memory.
public struct TensorSource: SignalSource {
    public let signal: Tensor
    public init(_ signal: Tensor) { self.signal = signal }
    public var channels: Int { signal.shape[0] }
    public var length: Int { signal.shape[1] }
    public func read(_ range: Range<Int>) throws -> Tensor {
        let l = length, c = channels
        return Tensor(uninitializedShape: [c, range.count]) { dst in
            signal.withUnsafeBufferPointer { src in
                for ch in 0..<c {
                    for (k, i) in range.enumerated() { dst[ch * range.count + k] = src[ch * l + ((i % l) + l) % l] }
                }
            }
        }
    }
}

/// Long 1D signals in pieces, with results equal to whole-signal processing.
///
/// Every stage is local except the periodic wavelet transform, whose wrap-around is reproduced by
/// reading the signal (and the decoded bands) with periodic indices. A piece of the output is
/// computed from its input widened by each stage's reach (`waveletMargin` band positions for the
/// transform, `encoderRadius` / `decoderRadius` for the networks, clipped at the signal's true
/// ends, where the networks' zero padding applies exactly as in whole-signal processing), and
/// only the piece itself is kept. Peak memory is set by the piece size, not the signal length
/// (the latents, 2^J/latent_dim times smaller than the signal per channel, are held whole).
extension Codec {
    /// Band positions of context the wavelet transform needs on each side (its filters reach
    /// under 6 positions after any number of levels).
    public static let waveletMargin = 8

    /// Reach of a 1D network in positions: the sum over its convolutions of how far one output
    /// looks to either side, plus a safety margin.
    public var encoderRadius: Int {
        let side = config.envelope.map { $0.window / 2 + 1 } ?? 0
        switch encoder {
        case .pointwise1D(let m): return max(Codec.reach(m) + 1, side)
        case .oobleck(let e):
            var r = Codec.reach(e.conv1) + Codec.reach(e.conv2)
            for b in e.blocks { r += Codec.reach(b.conv) + b.units.reduce(0) { $0 + Codec.reach($1.conv1) + Codec.reach($1.conv2) } }
            return max(r + 4, side)
        default: return 0
        }
    }

    public var decoderRadius: Int {
        switch decoder {
        case .oobleck(let d):
            var r = Codec.reach(d.conv1) + Codec.reach(d.conv2)
            for b in d.blocks { r += max(b.conv.kernelSize - 1 - b.conv.padding, b.conv.padding) + b.units.reduce(0) { $0 + Codec.reach($1.conv1) + Codec.reach($1.conv2) } }
            return r + 4
        default: return 0
        }
    }

    static func reach(_ c: Conv1d) -> Int { max(c.padding, c.dilation * (c.kernelSize - 1) - c.padding) }

    /// Latents `[latent_dim, L/2^J + 2]` of a 1D `source`, computed `chunk` latent steps at a time.
    /// `progress` receives (steps done, total).
    public func encodeStreaming(_ source: SignalSource, chunk: Int = 4096, rounded: Bool = true,
                                progress: ((Int, Int) -> Void)? = nil) throws -> Tensor {
        guard modality == .audio else { throw WallocError("streaming encoding is for 1D (audio) codecs") }
        let f = config.downsampling, l = source.length
        guard source.channels == config.channels else {
            throw WallocError("the model takes \(config.channels) channel(s), the signal has \(source.channels)")
        }
        guard l > 0, l % f == 0 else { throw WallocError("signal length \(l) is not a positive multiple of 2^J = \(f)") }
        let n = l / f, total = n + 2, k = config.latentChannels
        let r = encoderRadius, m = Codec.waveletMargin
        var latents = Tensor(uninitialized: [k, total])
        var p = 0
        while p < total {
            let q = min(total, p + max(1, chunk))
            // Bands [s, e) (non-periodic for the network), from samples read with periodic wrap.
            let s = max(0, p - r), e = min(n, q + r)
            let x = try source.read(((s - m) * f)..<((e + m) * f))
            let bands = try WaveletPacket.analysis1D(x, levels: config.J).lastAxis(m..<(m + e - s))
            var y = encodeBands(bands)  // chunk index t <-> latent s + t
            if rounded { roundLatents(&y) }
            let kept = y.lastAxis((p - s)..<(q - s))
            latents.withUnsafeMutableBufferPointer { dst in
                kept.withUnsafeBufferPointer { src in
                    for c in 0..<k { (dst.baseAddress! + c * total + p).update(from: src.baseAddress! + c * (q - p), count: q - p) }
                }
            }
            p = q
            progress?(p, total)
        }
        return latents
    }

    /// Decoded bands `[C·2^J, range.count]` for band positions `range` (inside `0..<N`), from
    /// latents `[latent_dim, N + 2]` (ToNormal, decoder, linear skip), reading only the latents
    /// within the decoder's reach.
    func decodeBandRange(_ latents: Tensor, _ range: Range<Int>) -> Tensor {
        let total = latents.shape[1], r = decoderRadius
        let s = max(0, range.lowerBound - r), e = min(total, range.upperBound + 2 + r)
        let bands = decodeBands(latents.lastAxis(s..<e))  // chunk index t <-> band s + t
        return bands.lastAxis((range.lowerBound - s)..<(range.upperBound - s))
    }

    /// Decoded bands for positions `lo..<hi`, which may reach outside `0..<N` (periodic).
    func decodeBandsPeriodic(_ latents: Tensor, _ lo: Int, _ hi: Int) -> Tensor {
        let n = latents.shape[1] - 2
        var parts = [Tensor]()
        var i = lo
        while i < hi {
            let wrapped = ((i % n) + n) % n
            let len = min(hi - i, n - wrapped)
            parts.append(decodeBandRange(latents, wrapped..<(wrapped + len)))
            i += len
        }
        return Tensor.concatenateLastAxis(parts)
    }

    /// Decodes 1D latents `[latent_dim, N + 2]` in pieces of `chunk` band positions, handing the
    /// clamped signal (`[C, ·]`, in order, covering `0..<N·2^J`) to `sink` piece by piece.
    public func decodeStreaming(_ latents: Tensor, chunk: Int = 4096,
                                sink: (Range<Int>, Tensor) throws -> Void) throws {
        guard modality == .audio else { throw WallocError("streaming decoding is for 1D (audio) codecs") }
        try checkLatents(latents)
        guard latents.rank == 2 else { throw WallocError("streaming decoding takes one signal's latents [latent_dim, l]") }
        let f = config.downsampling, n = latents.shape[1] - 2, l = n * f, m = Codec.waveletMargin
        let postReach = postFilter.map { Codec.reach($0) } ?? 0
        let postMargin = (postReach + f - 1) / f
        var p = 0
        while p < n {
            let q = min(n, p + max(1, chunk))
            let lo = p - postMargin - m, hi = q + postMargin + m
            let bands = decodeBandsPeriodic(latents, lo, hi)
            var x = try WaveletPacket.synthesis1D(bands, levels: config.J)  // sample t <-> (lo·f + t) mod L
            if let postFilter {
                // Samples [a, b) around the piece, clipped to the signal: zero padding applies at its true ends only.
                let a = max(0, p * f - postReach), b = min(l, q * f + postReach)
                let local = x.lastAxis((a - lo * f)..<(b - lo * f))
                x = postFilter(local.reshaped([1] + local.shape)).reshaped(local.shape)
                x = x.lastAxis((p * f - a)..<(q * f - a))
            } else {
                x = x.lastAxis((p * f - lo * f)..<(q * f - lo * f))
            }
            x.withUnsafeMutableBufferPointer { b in
                VectorMath.map(b.baseAddress!, count: b.count) { VectorMath.clamp($0, -0.5, 0.5) }
            }
            try sink((p * f)..<(q * f), x)
            p = q
        }
    }
}
