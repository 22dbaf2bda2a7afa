import WallocTensor

/// Padding applied to each spatial axis of a signal (`[H, W]` or `[L]` order).
public struct Padding: Codable, Equatable, Sendable {
    public var before: [Int]
    public var after: [Int]
    public init(before: [Int], after: [Int]) { self.before = before; self.after = after }
    public var isZero: Bool { before.allSatisfy { $0 == 0 } && after.allSatisfy { $0 == 0 } }
    /// `totals` samples per axis split centred (the extra sample, if odd, goes after).
    public init(centred totals: [Int]) { self.init(before: totals.map { $0 / 2 }, after: totals.map { $0 - $0 / 2 }) }
}

/// Audio level normalisation as the reference's examples do it: `x' = (x − offset) · gain` with
/// the offset the signal's mean (DC) and the gain bringing the peak to 0.5. Stored in bitstreams so
/// decoding restores the original level exactly.
public struct AudioLevel: Codable, Equatable, Sendable {
    public var gain: Float
    public var offset: Float
    public init(gain: Float, offset: Float) { self.gain = gain; self.offset = offset }
    public static let identity = AudioLevel(gain: 1, offset: 0)
}

/// Turning files' samples into what a codec takes, and back.
public enum SignalPreparation {
    /// Mirror index for reflect padding (no edge repeat, like numpy's `reflect`), valid for any
    /// offset; a length-1 axis repeats its only sample.
    @inlinable
    public static func mirror(_ i: Int, _ n: Int) -> Int {
        if n == 1 { return 0 }
        let period = 2 * (n - 1)
        var k = i % period
        if k < 0 { k += period }
        return k < n ? k : period - k
    }

    /// Reflect-pads the spatial axes of `x` (`[C, H, W]` or `[C, L]`) to the next multiples of
    /// `multiple`, centred (the extra sample, if odd, goes after). Returns the padded signal and
    /// the padding, which `crop` undoes.
    public static func padToMultiple(_ x: Tensor, multiple: Int) -> (Tensor, Padding) {
        precondition(x.rank == 2 || x.rank == 3, "padToMultiple expects [C, L] or [C, H, W]")
        let sizes = Array(x.shape.dropFirst())
        let totals = sizes.map { paddedSize($0, multiple: multiple) - $0 }
        let padding = Padding(centred: totals)
        if padding.isZero { return (x, padding) }
        let c = x.shape[0]
        if x.rank == 2 {
            let n = sizes[0], m = n + totals[0], b = padding.before[0]
            var out = Tensor(uninitialized: [c, m])
            x.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for ch in 0..<c {
                        for i in 0..<m { dst[ch * m + i] = src[ch * n + mirror(i - b, n)] }
                    }
                }
            }
            return (out, padding)
        }
        let h = sizes[0], w = sizes[1], hp = h + totals[0], wp = w + totals[1]
        let bh = padding.before[0], bw = padding.before[1]
        var out = Tensor(uninitialized: [c, hp, wp])
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!, d = dst.baseAddress!
                parallelFor(c * hp) { row in
                    let ch = row / hp, y = row % hp
                    let srcRow = s + (ch * h + mirror(y - bh, h)) * w
                    let dstRow = d + (ch * hp + y) * wp
                    for i in 0..<wp { dstRow[i] = srcRow[mirror(i - bw, w)] }
                }
            }
        }
        return (out, padding)
    }

    /// The size an axis of `n` samples is padded to: the smallest multiple of `multiple` that is at
    /// least `n + margin` (`padToMultiple`: margin 0; `padSmooth`).
    public static func paddedSize(_ n: Int, multiple: Int, margin: Int = 0) -> Int {
        (n + margin + multiple - 1) / multiple * multiple
    }

    /// Pads an image `[C, H, W]` so that each axis grows by at least `margin` samples and reaches
    /// a multiple of `multiple`, with a margin that makes the wavelet transform's periodic
    /// continuation smooth. Reflect padding leaves the jump from the last row (column) to the first
    /// in the periodic signal, and large coefficients along every border; here the margin, read
    /// from the signal's end round to its start, goes in a straight line from the last sample to
    /// the first (smoother fills were cheaper to code than mirror images blended together). The
    /// margin is split centred like `padToMultiple`'s padding, which `crop` undoes.
    public static func padSmooth(_ x: Tensor, multiple: Int, margin: Int) -> (Tensor, Padding) {
        precondition(x.rank == 3 && multiple >= 1 && margin >= 0, "padSmooth expects [C, H, W]")
        let c = x.shape[0], h = x.shape[1], w = x.shape[2]
        let th = paddedSize(h, multiple: multiple, margin: margin) - h, tw = paddedSize(w, multiple: multiple, margin: margin) - w
        let padding = Padding(centred: [th, tw])
        let hp = h + th, wp = w + tw, bh = padding.before[0], bw = padding.before[1]
        // Margin sample k of m (k = 0 follows the signal's last sample, k = m − 1 precedes its
        // first) is `(1 − a) · last + a · first` with a = (k + ½) / m; the first m − before of them
        // go after the signal, the rest before it.
        func position(_ k: Int, _ m: Int, _ n: Int, _ before: Int) -> Int { k < m - before ? before + n + k : k - (m - before) }
        var out = Tensor(uninitialized: [c, hp, wp])
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress!, d = dst.baseAddress!
                // Rows of the signal, with their left and right margins.
                parallelFor(c * h) { row in
                    let ch = row / h, y = row % h
                    let sr = s + row * w, dr = d + (ch * hp + bh + y) * wp
                    (dr + bw).update(from: sr, count: w)
                    for k in 0..<tw {
                        let a = (Float(k) + 0.5) / Float(tw)
                        dr[position(k, tw, w, bw)] = (1 - a) * sr[w - 1] + a * sr[0]
                    }
                }
                // Then the top and bottom margins, over the padded width.
                parallelFor(c) { ch in
                    let plane = d + ch * hp * wp, first = plane + bh * wp, last = plane + (bh + h - 1) * wp
                    for k in 0..<th {
                        let a = (Float(k) + 0.5) / Float(th), row = plane + position(k, th, h, bh) * wp
                        for col in 0..<wp { row[col] = (1 - a) * last[col] + a * first[col] }
                    }
                }
            }
        }
        return (out, padding)
    }

    /// Removes `padding` from the spatial axes of `x` (`[C, H, W]` or `[C, L]`).
    public static func crop(_ x: Tensor, padding: Padding) -> Tensor {
        if padding.isZero { return x }
        let c = x.shape[0]
        if x.rank == 2 {
            let m = x.shape[1], n = m - padding.before[0] - padding.after[0], b = padding.before[0]
            return Tensor(uninitializedShape: [c, n]) { dst in
                x.withUnsafeBufferPointer { src in
                    for ch in 0..<c { for i in 0..<n { dst[ch * n + i] = src[ch * m + b + i] } }
                }
            }
        }
        let hp = x.shape[1], wp = x.shape[2]
        let h = hp - padding.before[0] - padding.after[0], w = wp - padding.before[1] - padding.after[1]
        let bh = padding.before[0], bw = padding.before[1]
        return Tensor(uninitializedShape: [c, h, w]) { dst in
            x.withUnsafeBufferPointer { src in
                for ch in 0..<c {
                    for y in 0..<h {
                        (dst.baseAddress! + (ch * h + y) * w).update(from: src.baseAddress! + (ch * hp + y + bh) * wp + bw, count: w)
                    }
                }
            }
        }
    }

    /// Image samples in [0, 1] -> codec range [-0.5, 0.5].
    public static func imageToSignal(_ pixels: Tensor) -> Tensor {
        var x = pixels
        imageToSignal(&x)
        return x
    }

    /// Image samples in [0, 1] -> codec range [-0.5, 0.5], in place.
    public static func imageToSignal(_ x: inout Tensor) {
        x.withUnsafeMutableBufferPointer { p in
            parallelChunks(p.count, minChunk: 1 << 15) { r in for i in r { p[i] -= 0.5 } }
        }
    }

    /// Codec range [-0.5, 0.5] -> image samples in [0, 1] (clamped).
    public static func signalToImage(_ x: Tensor) -> Tensor {
        var p = x
        p.withUnsafeMutableBufferPointer { b in
            parallelChunks(b.count, minChunk: 1 << 15) { r in for i in r { b[i] = min(max(b[i] + 0.5, 0), 1) } }
        }
        return p
    }

    /// `[1, ...]` -> `[c, ...]`, the one channel repeated: grey images through a colour model,
    /// mono audio through a stereo one.
    public static func replicateChannel(_ x: Tensor, to c: Int) -> Tensor {
        precondition(x.rank >= 1 && x.shape[0] == 1, "replicateChannel needs one channel, got \(x.shape)")
        let n = x.count
        return Tensor(uninitializedShape: [c] + Array(x.shape.dropFirst())) { dst in
            x.withUnsafeBufferPointer { src in for ch in 0..<c { (dst.baseAddress! + ch * n).update(from: src.baseAddress!, count: n) } }
        }
    }

    /// `[c, ...]` -> `[1, ...]`, the channels' mean: how a grey image or mono recording coded
    /// through `replicateChannel` is decoded.
    public static func averageChannels(_ x: Tensor) -> Tensor {
        let c = x.shape[0], n = x.count / max(1, c)
        if c == 1 { return x }
        return Tensor(uninitializedShape: [1] + Array(x.shape.dropFirst())) { dst in
            x.withUnsafeBufferPointer { src in
                parallelChunks(n, minChunk: 1 << 15) { r in
                    for i in r {
                        var sum: Float = 0
                        for ch in 0..<c { sum += src[ch * n + i] }
                        dst[i] = sum / Float(c)
                    }
                }
            }
        }
    }

    /// Whether a signal of `channels` channels is coded by a model taking `modelChannels`:
    /// equal counts, or one channel repeated into a model that takes several.
    public static func channelsFit(_ channels: Int, model modelChannels: Int) -> Bool {
        channels == modelChannels || (channels == 1 && modelChannels > 1)
    }

    /// The level normalisation for `audio` (`[C, L]`, any scale): mean removed, peak 0.5.
    public static func audioLevel(of audio: Tensor) -> AudioLevel {
        let n = max(1, audio.count)
        var sum = 0.0
        for v in audio.scalars { sum += Double(v) }
        let mean = Float(sum / Double(n))
        var peak: Float = 0
        for v in audio.scalars { peak = max(peak, abs(v - mean)) }
        return AudioLevel(gain: 1 / (2 * (peak + 1e-8)), offset: mean)
    }

    /// Applies `level`: `(x − offset) · gain`.
    public static func normalize(_ audio: Tensor, _ level: AudioLevel) -> Tensor {
        var x = audio
        x.withUnsafeMutableBufferPointer { p in
            parallelChunks(p.count, minChunk: 1 << 15) { r in for i in r { p[i] = (p[i] - level.offset) * level.gain } }
        }
        return x
    }

    /// Undoes `level`: `x / gain + offset`.
    public static func denormalize(_ signal: Tensor, _ level: AudioLevel) -> Tensor {
        var x = signal
        let inverse = 1 / level.gain
        x.withUnsafeMutableBufferPointer { p in
            parallelChunks(p.count, minChunk: 1 << 15) { r in for i in r { p[i] = p[i] * inverse + level.offset } }
        }
        return x
    }
}
