import WallocNN
import WallocTensor
import WallocWavelets

/// Large images in pieces, so working memory and the attention's quadratic cost stay bounded.
///
/// - Encoding with a lightweight (pointwise) encoder runs in strips of rows, each strip's wavelet
///   transform widened by the transform's reach and read with periodic wrap: exact. The full VAE
///   encoder runs on overlapping tiles of whole-image bands, each latent taken from the tile where
///   it lies furthest from an inner edge.
/// - Decoding runs the decoder on overlapping tiles of latents and blends the decoded bands with
///   linear ramps across each overlap (no seams), then synthesises the whole image. Convolutions
///   see all the context they need once the overlap exceeds their reach; the decoder's mid-block
///   attention sees its tile instead of the whole image, which is where tiled and whole decoding
///   differ (measured in docs/design.md).
extension Codec {
    /// Encoding: latent grids up to this many positions per side are encoded whole.
    public static let defaultTile = 128
    /// Encoding: latent positions of context each tile gets on each side.
    public static let defaultOverlap = 16
    /// Models without `decode_tile` decode whole while one decoder activation (`max(Nd,
    /// bands) x positions` floats) stays under this many bytes, else in tiles of that size.
    public static let wholeDecodeBytes = 256 << 20

    /// The decoder tiles of this model: its `decode_tile`, else whole decoding up to
    /// `wholeDecodeBytes` per activation (tiles of that many positions per side, 16 of context).
    public var decodeTiling: DecodeTile {
        if let t = config.decodeTile { return t }
        let width = max(config.Nd ?? 1, config.bandChannels, config.latentChannels)
        let positions = Codec.wholeDecodeBytes / (4 * width)
        return DecodeTile(size: max(16, Int(Double(positions).squareRoot())), overlap: 16)
    }

    /// Integer latents of an image `[C, H, W]` (sizes multiples of 2^J).
    public func encodeTiled(_ x: Tensor, tile: Int = Codec.defaultTile, overlap: Int = Codec.defaultOverlap,
                            rounded: Bool = true) throws -> Tensor {
        try checkSignal(x)
        guard modality == .image, x.rank == 3 else { return try encode(x, rounded: rounded) }
        guard case .vae = encoder else { return try encodeStrips(x, rounded: rounded) }
        let bands = try analysis(x)
        let h = bands.shape[1], w = bands.shape[2]
        if h <= tile && w <= tile { return try encode(x, rounded: rounded) }
        var out = Tensor(zeros: [config.latentChannels, h, w])
        for (rows, cols) in Codec.tiles(h, w, tile: tile) {
            let wr = max(0, rows.lowerBound - overlap)..<min(h, rows.upperBound + overlap)
            let wc = max(0, cols.lowerBound - overlap)..<min(w, cols.upperBound + overlap)
            var y = encodeBands(bands.window(rows: wr, columns: wc))
            if rounded { roundLatents(&y) }
            let kept = y.window(rows: (rows.lowerBound - wr.lowerBound)..<(rows.upperBound - wr.lowerBound),
                                columns: (cols.lowerBound - wc.lowerBound)..<(cols.upperBound - wc.lowerBound))
            out.paste(kept, rows: rows, columns: cols)
        }
        return out
    }

    /// Latents of an image `[C, H, W]` (sizes multiples of 2^J) for a pointwise encoder, in
    /// horizontal strips of `strip` band rows, so only one strip's wavelet transform is in memory.
    /// The pointwise encoder needs no context and the transform `waveletMargin` band rows on each
    /// side, read with periodic wrap as the whole-image transform sees them: the result equals
    /// whole-image encoding (up to float rounding).
    public func encodeStrips(_ x: Tensor, strip: Int = 64, rounded: Bool = true) throws -> Tensor {
        try checkSignal(x)
        guard modality == .image, x.rank == 3, strip >= 1 else { return try encode(x, rounded: rounded) }
        if case .vae = encoder { throw WallocError("strip encoding needs a pointwise (lightweight) encoder") }
        let f = config.downsampling, n = x.shape[1] / f, w = x.shape[2] / f, m = Codec.waveletMargin
        if n <= 2 * strip { return try encode(x, rounded: rounded) }
        var out = Tensor(uninitialized: [config.latentChannels, n, w])
        var p = 0
        while p < n {
            let q = min(n, p + strip), rows = (q - p + 2 * m) * f, first = (p - m) * f
            let bands = try analysis(Codec.periodicRows(x, first: first, count: rows)).window(rows: m..<(m + q - p), columns: 0..<w)
            var y = encodeBands(bands)
            if rounded { roundLatents(&y) }
            out.paste(y, rows: p..<q, columns: 0..<w)
            p = q
        }
        return out
    }

    /// Decodes image latents `[latent_dim, h, w]` to the clamped image; grids larger than
    /// `tile` x `tile` are decoded in overlapping tiles (see the type's notes).
    public func decodeTiled(_ latents: Tensor, tile: Int? = nil, overlap: Int? = nil) throws -> Tensor {
        var latents = latents
        return try decodeTiled(releasing: &latents, tile: tile, overlap: overlap)
    }

    /// `decodeTiled` that empties `latents` as soon as the decoder network is done with them,
    /// before the wavelet synthesis, so that a large image never holds its latents, its bands and
    /// its pixels at once (when the caller keeps no other reference to the latents).
    /// `progress` gets the fraction of tiles decoded, on the calling thread. `crop` is removed
    /// from the image as the wavelet synthesis writes it (no padded copy of a large image).
    public func decodeTiled(releasing latents: inout Tensor, tile: Int? = nil, overlap: Int? = nil,
                            crop: Padding? = nil, progress: ((Double) -> Void)? = nil) throws -> Tensor {
        try checkLatents(latents)
        let tile = tile ?? decodeTiling.size, overlap = overlap ?? decodeTiling.overlap
        func whole() throws -> Tensor {
            let x = try decode(latents)
            return crop.map { SignalPreparation.crop(x, padding: $0) } ?? x
        }
        guard modality == .image, latents.rank == 3 else { return try whole() }
        let h = latents.shape[1], w = latents.shape[2]
        let slack = decodeTileSlack(tile)
        if h <= tile + slack && w <= tile + slack { return try whole() }
        let bandsCount = config.bandChannels
        var sum = Tensor(zeros: [bandsCount, h, w])
        var weight = Tensor(zeros: [h, w])
        let windows = Codec.tiles(h, w, tile: tile, slack: slack).map { rows, cols in
            (max(0, rows.lowerBound - overlap)..<min(h, rows.upperBound + overlap),
             max(0, cols.lowerBound - overlap)..<min(w, cols.upperBound + overlap))
        }
        // Tiles are decoded several at a time, each by one thread on its own (tiles are small:
        // splitting each layer of one tile over the threads cost more in synchronisation), and
        // added up in tile order, so the result does not depend on the thread count.
        let batch = Threading.count == 1 ? 1 : 2 * Threading.count
        for first in stride(from: 0, to: windows.count, by: batch) {
            let group = Array(windows[first..<min(windows.count, first + batch)])
            let decoded = Locked([Tensor?](repeating: nil, count: group.count))
            parallelFor(group.count) { i in
                let bands = Threading.serially { decodeBands(latents.window(rows: group[i].0, columns: group[i].1)) }
                decoded.withLock { $0[i] = bands }
            }
            for (i, (wr, wc)) in group.enumerated() {
                let bands = decoded.withLock { $0[i]! }
                // Ramps rise over the overlap from each inner edge of the window; true image edges get full weight.
                let ry = Codec.ramp(wr, limit: h, overlap: overlap), rx = Codec.ramp(wc, limit: w, overlap: overlap)
                let hh = wr.count, ww = wc.count
                weight.withUnsafeMutableBufferPointer { wt in
                    for y in 0..<hh { for x in 0..<ww { wt[(wr.lowerBound + y) * w + wc.lowerBound + x] += ry[y] * rx[x] } }
                }
                bands.withUnsafeBufferPointer { b in
                    sum.withUnsafeMutableBufferPointer { s in
                        let src = b.baseAddress!, dst = s.baseAddress!
                        parallelFor(bandsCount) { c in
                            for y in 0..<hh {
                                let out = dst + c * h * w + (wr.lowerBound + y) * w + wc.lowerBound, row = src + (c * hh + y) * ww
                                for x in 0..<ww { out[x] += ry[y] * rx[x] * row[x] }
                            }
                        }
                    }
                }
            }
            progress?(Double(first + group.count) / Double(windows.count))
        }
        sum.withUnsafeMutableBufferPointer { s in
            weight.withUnsafeBufferPointer { wt in
                let dst = s.baseAddress!, wp = wt.baseAddress!
                parallelFor(bandsCount) { c in for i in 0..<(h * w) { dst[c * h * w + i] /= wp[i] } }
            }
        }
        latents = Tensor(zeros: [0])
        weight = Tensor(zeros: [0])
        return try reconstructStrips(bands: sum, crop: crop)
    }

    /// `reconstruct(bands:)` for an image in horizontal strips of `strip` band rows, so only one
    /// strip's inverse wavelet transform is in memory besides the bands and the output. Each strip
    /// reads `waveletMargin` band rows more on each side with periodic wrap, as the whole-image
    /// transform does: the result equals whole-image synthesis (up to float rounding).
    /// With `crop`, that padding is left out as the strips are written.
    public func reconstructStrips(bands: Tensor, strip: Int = 48, crop: Padding? = nil) throws -> Tensor {
        func whole() throws -> Tensor {
            let x = try reconstruct(bands: bands)
            return crop.map { SignalPreparation.crop(x, padding: $0) } ?? x
        }
        guard modality == .image, postFilter == nil, bands.rank == 3, strip >= 1 else { return try whole() }
        let planes = bands.shape[0], n = bands.shape[1], w = bands.shape[2], m = Codec.waveletMargin
        if n <= 2 * strip { return try whole() }
        let f = config.downsampling, c = planes / (f * f), width = w * f, height = n * f
        let top = crop?.before[0] ?? 0, left = crop?.before[1] ?? 0
        let outHeight = height - top - (crop?.after[0] ?? 0), outWidth = width - left - (crop?.after[1] ?? 0)
        precondition(outHeight > 0 && outWidth > 0, "the crop leaves no image")
        var out = Tensor(uninitialized: [c, outHeight, outWidth])
        var p = 0
        while p < n {
            let q = min(n, p + strip), rows = q - p + 2 * m
            let x = try synthesis(Codec.periodicRows(bands, first: p - m, count: rows))  // [c, rows·f, width]; rows m·f ..< (m + q − p)·f are exact
            // Image rows p·f ..< q·f, of which those inside the crop go to the output.
            let first = max(p * f, top), last = min(q * f, top + outHeight)
            if first < last {
                x.withUnsafeBufferPointer { src in
                    out.withUnsafeMutableBufferPointer { dst in
                        let s = src.baseAddress!, d = dst.baseAddress!
                        parallelFor(c) { ch in
                            for y in first..<last {
                                let from = s + (ch * rows * f + m * f + y - p * f) * width + left
                                let to = d + (ch * outHeight + y - top) * outWidth
                                for i in 0..<outWidth { to[i] = min(max(from[i], -0.5), 0.5) }
                            }
                        }
                    }
                }
            }
            p = q
        }
        return out
    }

    /// Rows `first ..< first + count` of `[P, N, W]`, read with periodic wrap (`first` may be
    /// negative and the range may pass `N`), as a contiguous `[P, count, W]`.
    static func periodicRows(_ t: Tensor, first: Int, count: Int) -> Tensor {
        let planes = t.shape[0], n = t.shape[1], w = t.shape[2]
        return Tensor(uninitializedShape: [planes, count, w]) { dst in
            t.withUnsafeBufferPointer { src in
                for p in 0..<planes {
                    for r in 0..<count {
                        let y = ((first + r) % n + n) % n
                        (dst.baseAddress! + (p * count + r) * w).update(from: src.baseAddress! + (p * n + y) * w, count: w)
                    }
                }
            }
        }
    }

    /// The decoder tiles of a model with `decode_tile` may be this much larger than its tile size
    /// when that saves a row or column of tiles (a smooth margin adds a latent or two to each
    /// axis: 768 pixels become 98 positions, 5 tiles of 24 but 4 of 26): a twelfth of the tile,
    /// 2 positions for 24. Models without `decode_tile` keep their tile size.
    func decodeTileSlack(_ tile: Int) -> Int { config.decodeTile != nil ? tile / 12 : 0 }

    /// Tiles of at most `tile + slack` positions per side covering `h` x `w`, in row-major order,
    /// of near-equal sizes, as many as tiles of `tile` would need, or fewer where the slack allows.
    static func tiles(_ h: Int, _ w: Int, tile: Int, slack: Int = 0) -> [(Range<Int>, Range<Int>)] {
        func split(_ n: Int) -> [Range<Int>] {
            let count = (n + tile + slack - 1) / (tile + slack)
            return (0..<count).map { i in (i * n / count)..<((i + 1) * n / count) }
        }
        var out = [(Range<Int>, Range<Int>)]()
        for r in split(h) { for c in split(w) { out.append((r, c)) } }
        return out
    }

    /// Blending weights along one axis of a window: a linear ramp over `overlap` positions from
    /// each edge that is not an edge of the image (`0..<limit`).
    static func ramp(_ window: Range<Int>, limit: Int, overlap: Int) -> [Float] {
        (0..<window.count).map { i in
            var v: Float = 1
            if window.lowerBound > 0 { v = min(v, (Float(i) + 0.5) / Float(max(1, overlap))) }
            if window.upperBound < limit { v = min(v, (Float(window.count - 1 - i) + 0.5) / Float(max(1, overlap))) }
            return max(v, 1e-3)
        }
    }
}

extension Tensor {
    /// Copies `part` (`[C, rows.count, columns.count]`) into the window `rows` x `columns` of the last two axes.
    mutating func paste(_ part: Tensor, rows: Range<Int>, columns: Range<Int>) {
        let h = shape[rank - 2], w = shape[rank - 1], planes = count / (h * w)
        let hh = rows.count, ww = columns.count
        withUnsafeMutableBufferPointer { dst in
            part.withUnsafeBufferPointer { src in
                for p in 0..<planes {
                    for y in 0..<hh {
                        (dst.baseAddress! + (p * h + rows.lowerBound + y) * w + columns.lowerBound)
                            .update(from: src.baseAddress! + (p * hh + y) * ww, count: ww)
                    }
                }
            }
        }
    }
}
