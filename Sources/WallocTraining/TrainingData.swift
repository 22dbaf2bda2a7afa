import Foundation
import WallocIO
import WallocMedia
import WallocModels
import WallocTensor

/// Training and validation signals from files: images (PNG, JPEG, WebP, TIFF), audio (WAV, FLAC,
/// OGG) and `.npy` tensors, prepared the way the codec sees them at run time.
public enum TrainingData {
    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "webp", "tif", "tiff"]
    static let audioExtensions: Set<String> = ["wav", "flac", "ogg"]

    /// How files become signals.
    public struct Options: Sendable {
        /// Images whose longer side exceeds this are shrunk by area averaging (nil: kept as they are).
        public var maxSide: Int?
        /// Audio clips longer than this many seconds are cut (nil: whole clips).
        public var maxSeconds: Double?
        public init(maxSide: Int? = nil, maxSeconds: Double? = nil) { self.maxSide = maxSide; self.maxSeconds = maxSeconds }
    }

    /// The files under `paths` (files as given, directories searched recursively, hidden entries
    /// skipped) that a `modality` model trains on: images or audio, and `.npy` tensors. Sorted by
    /// path, so a listing is reproducible.
    public static func files(in paths: [String], modality: Modality) throws -> [URL] {
        let wanted = (modality == .image ? imageExtensions : audioExtensions).union(["npy"])
        var out = [URL]()
        for p in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDirectory) else {
                throw WallocError("\(p): no such file or directory")
            }
            let url = URL(fileURLWithPath: p)
            if !isDirectory.boolValue { out.append(url); continue }
            guard let walker = FileManager.default.enumerator(at: url, includingPropertiesForKeys: [.isRegularFileKey],
                                                              options: [.skipsHiddenFiles]) else {
                throw WallocError("\(p): cannot list the directory")
            }
            for case let file as URL in walker where wanted.contains(file.pathExtension.lowercased()) {
                if (try? file.resolvingSymlinksInPath().resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true { out.append(file) }
            }
        }
        return out.sorted { $0.path < $1.path }
    }

    /// Loads one file as a signal for a model with `channels` input channels: images in
    /// [-0.5, 0.5] (`[C, H, W]`; an alpha channel beyond the model's channels is dropped, a grey
    /// image is repeated into every channel of a colour model), audio level-normalised like the
    /// pipeline does (DC removed, peak 0.5; `[C, L]`), `.npy` as stored (`[C, H, W]` / `[C, L]`,
    /// a leading batch of 1 accepted).
    public static func load(_ url: URL, modality: Modality, channels: Int, options: Options = Options()) throws -> Tensor {
        try loadScales(url, modality: modality, channels: channels, options: options)[0]
    }

    /// `load`, followed for an image file by the same image shrunk to each of `extraMaxSides` that
    /// is smaller than its longer side at `options.maxSide` (a multi-scale training set), from one
    /// read of the file. `.npy` tensors and audio give one signal.
    public static func loadScales(_ url: URL, modality: Modality, channels: Int, options: Options = Options(),
                                  extraMaxSides: [Int] = []) throws -> [Tensor] {
        let ext = url.pathExtension.lowercased()
        let rank = modality == .image ? 3 : 2
        var x: Tensor
        var extras = [Tensor]()
        if ext == "npy" {
            x = try NPY.read(url)
            if x.rank == rank + 1 && x.shape[0] == 1 { x = x.reshaped(Array(x.shape.dropFirst())) }
            guard x.rank == rank else { throw WallocError("\(url.path): shape \(x.shape) is not \(modality == .image ? "[C, H, W]" : "[C, L]")") }
            if let i = x.scalars.firstIndex(where: { !$0.isFinite }) { throw WallocError("\(url.path): non-finite value at index \(i)") }
        } else if modality == .image {
            guard imageExtensions.contains(ext) else { throw WallocError("\(url.path): not an image file") }
            let original = try matchChannels(try ImageIO.read(url).pixels, channels: channels, name: url.path)
            let pixels = options.maxSide.map { Resize.fit(original, maxSide: $0) } ?? original
            x = SignalPreparation.imageToSignal(pixels)
            let longer = pixels.shape.dropFirst().max() ?? 0
            extras = extraMaxSides.filter { $0 < longer }.map { SignalPreparation.imageToSignal(Resize.fit(original, maxSide: $0)) }
        } else {
            guard audioExtensions.contains(ext) else { throw WallocError("\(url.path): not an audio file") }
            let reader = try AudioReader(url: url)
            var frames = reader.frames
            if let s = options.maxSeconds { frames = min(frames, max(1, Int(s * Double(reader.sampleRate)))) }
            let samples = try reader.read(frames: frames)
            x = SignalPreparation.normalize(samples, SignalPreparation.audioLevel(of: samples))
        }
        guard x.shape[0] == channels else {
            throw WallocError("\(url.path): \(x.shape[0]) channel(s), the model takes \(channels)")
        }
        return [x] + extras
    }

    /// Fits an image's channels to a model's: drops alpha (RGBA -> RGB, grey+alpha -> grey),
    /// repeats grey into every channel; anything else is an error.
    public static func matchChannels(_ pixels: Tensor, channels want: Int, name: String) throws -> Tensor {
        let c = pixels.shape[0]
        if c == want { return pixels }
        let plane = pixels.count / c
        if c == want + 1 && (want == 1 || want == 3) {
            return Tensor(shape: [want] + Array(pixels.shape.dropFirst()), scalars: Array(pixels.scalars.prefix(want * plane)))
        }
        if c == 1 || c == 2 {
            var out = Tensor(uninitialized: [want] + Array(pixels.shape.dropFirst()))
            for ch in 0..<want { for i in 0..<plane { out.scalars[ch * plane + i] = pixels.scalars[i] } }
            return out
        }
        throw WallocError("\(name): \(c) channel(s), the model takes \(want)")
    }

    /// A centred crop of at most `size` samples per spatial axis, trimmed to multiples of `multiple`.
    public static func centreCrop(_ x: Tensor, size: Int, multiple: Int) -> Tensor {
        let spatial = Array(x.shape.dropFirst())
        let target = spatial.map { max(multiple, min($0, size) / multiple * multiple) }
        if target == spatial { return x }
        let c = x.shape[0]
        if x.rank == 2 {
            let l = spatial[0], m = min(target[0], l), start = (l - m) / 2
            return Tensor(uninitializedShape: [c, m]) { dst in
                x.withUnsafeBufferPointer { src in
                    for ch in 0..<c { (dst.baseAddress! + ch * m).update(from: src.baseAddress! + ch * l + start, count: m) }
                }
            }
        }
        let h = spatial[0], w = spatial[1], hh = min(target[0], h), ww = min(target[1], w)
        let y0 = (h - hh) / 2, x0 = (w - ww) / 2
        return Tensor(uninitializedShape: [c, hh, ww]) { dst in
            x.withUnsafeBufferPointer { src in
                for ch in 0..<c {
                    for y in 0..<hh {
                        (dst.baseAddress! + (ch * hh + y) * ww).update(from: src.baseAddress! + (ch * h + y0 + y) * w + x0, count: ww)
                    }
                }
            }
        }
    }
}
