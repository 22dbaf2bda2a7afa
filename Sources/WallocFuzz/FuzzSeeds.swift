import Foundation
import WallocCoding
import WallocIO
import WallocMedia
import WallocModels
import WallocPipeline
import WallocTensor

/// The seed corpus: small valid inputs for every target, made by Walloc's own writers
/// (`walloc-fuzz seeds DIR`). The copy in `fuzz/corpus/` is what `make fuzz` starts from.
public enum FuzzSeeds {
    /// Writes `DIR/<target>/<name>` for every target; returns the number of files written.
    @discardableResult
    public static func write(to dir: URL) throws -> Int {
        var count = 0
        for target in FuzzTarget.allCases {
            let folder = dir.appendingPathComponent(target.rawValue)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for (name, data) in try seeds(target) {
                try data.write(to: folder.appendingPathComponent(name))
                count += 1
            }
        }
        return count
    }

    /// Smooth pixels with some texture in [0, 1], `[C, H, W]`.
    static func pixels(_ c: Int, _ h: Int, _ w: Int) -> Tensor {
        var t = Tensor(zeros: [c, h, w])
        t.withUnsafeMutableBufferPointer { p in
            for ch in 0..<c {
                for y in 0..<h {
                    for x in 0..<w {
                        let v = 0.5 + 0.3 * sin(Float(x + 5 * ch) / 3) * cos(Float(y) / 4) + 0.1 * Float((x * 7 + y * 13 + ch) % 5) / 5
                        p[(ch * h + y) * w + x] = min(1, max(0, v))
                    }
                }
            }
        }
        return t
    }

    /// Stereo tones, `[C, L]`.
    static func tones(_ c: Int, _ n: Int) -> Tensor {
        var t = Tensor(zeros: [c, n])
        t.withUnsafeMutableBufferPointer { p in
            for ch in 0..<c {
                for i in 0..<n { p[ch * n + i] = 0.3 * sin(Float(i) * (0.05 + 0.02 * Float(ch))) + 0.05 * sin(Float(i) * 0.9) }
            }
        }
        return t
    }

    /// Small integer latents in [-8, 8), `[C, H, W]` or `[C, L]`.
    static func latents(_ shape: [Int]) -> Tensor {
        var t = Tensor(zeros: shape)
        t.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count {
                let v = (i * 37 + i / 7) % 16 - 8
                p[i] = Float(i % 3 == 0 ? v : v / 2)
            }
        }
        return t
    }

    static func seeds(_ target: FuzzTarget) throws -> [(String, Data)] {
        switch target {
        case .container, .wlc:
            return try wlcFiles()
        case .rans:
            var out = [(String, Data)]()
            // Prefix bytes: channels-1, h-1 (or length / 8), w-1 (or length % 8), and flags
            // (bit 0: the default image model's tables; bits 1-2: bit depth; bit 7: 1D).
            for (prefix, shape, bits) in [([UInt8(3), 5, 7, 0], [4, 6, 8], 8), ([1, 9, 3, 2], [2, 10, 4], 12), ([2, 2, 3, 0x80], [3, 20], 8)] as [([UInt8], [Int], Int)] {
                let payload = try LatentCoder.encode(latents(shape), bits: bits)
                out.append(("\(shape.map(String.init).joined(separator: "x"))-\(bits)bit.bin", Data(prefix) + payload))
            }
            // The default image model's tables (the latents of a real 16 x 24 file: [64, 4, 5] with
            // the model's smooth margin).
            var image = try FuzzModels.image()
            image.coding = .rans
            let file = try image.compress(image: Image(pixels: pixels(3, 16, 24), bitDepth: 8, isFloat: false, format: .png)).file
            let s = file.header.latentShape
            out.append(("\(s.map(String.init).joined(separator: "x"))-tables.bin", Data([UInt8(s[0] - 1), UInt8(s[1] - 1), UInt8(s[2] - 1), 1]) + file.payload))
            return out
        case .latentImage:
            return try [ImageFormat.webp, .png].map { format in
                ("4x3x5.\(format.rawValue)", Data([3, 2, 4]) + (try LatentImage.encode(latents([4, 3, 5]), bits: 8, format: format)))
            }
        case .safetensors:
            let file = Safetensors(tensors: ["a": latents([2, 3]), "b.weight": pixels(1, 2, 2)], dtypes: ["a": .i16], metadata: ["format": "pt"])
            return [("small.safetensors", try file.encode())]
        case .npy:
            return [("f32.npy", NPY.encode(pixels(2, 3, 4))), ("scalar.npy", NPY.encode(Tensor(zeros: [1])))]
        case .config:
            var out = [(String, Data)]()
            for modality in [Modality.image, .audio] {
                if let dir = DefaultModels.directory(for: modality) {
                    out.append(("\(modality.rawValue).json", try FileIO.read(dir.appendingPathComponent(Codec.configFileName))))
                }
            }
            return out
        case .entropy:
            let model = try LatentModel.fit(latents: [latents([2, 4, 4]), latents([2, 8, 3])], bits: 8)
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            // What training writes (frequencies packed in base64), and the older number arrays.
            let packed = try encoder.encode(model)
            var arrays = try JSONSerialization.jsonObject(with: packed) as? [String: Any] ?? [:]
            arrays["frequencies"] = nil
            arrays["tables"] = model.tables.map { channel in
                channel.map { ["precision": $0.precision, "first": $0.first, "frequencies": $0.frequencies.map(Int.init)] }
            }
            return [("small.json", packed), ("small-arrays.json", try JSONSerialization.data(withJSONObject: arrays, options: .sortedKeys))]
        case .image:
            var out = [(String, Data)]()
            let rgb = pixels(3, 6, 5), grey = pixels(1, 5, 4), rgba = pixels(4, 4, 4)
            out.append(("rgb.png", try ImageIO.encode(rgb, format: .png)))
            out.append(("grey16.png", try ImageIO.encode(grey, format: .png, bitDepth: 16)))
            out.append(("rgba.png", try ImageIO.encode(rgba, format: .png)))
            out.append(("rgb.jpg", try ImageIO.encode(rgb, format: .jpeg, quality: 80)))
            out.append(("grey.jpg", try ImageIO.encode(grey, format: .jpeg, quality: 80)))
            out.append(("lossy.webp", try ImageIO.encode(rgb, format: .webp, quality: 60)))
            out.append(("lossless.webp", try ImageIO.encode(rgba, format: .webp, lossless: true)))
            out.append(("rgb.tiff", try ImageIO.encode(rgb, format: .tiff)))
            out.append(("grey16-deflate.tiff", try ImageIO.encode(grey, format: .tiff, bitDepth: 16, compression: .deflate)))
            out.append(("float-lzw.tiff", try ImageIO.encode(rgb, format: .tiff, bitDepth: 32, compression: .lzw)))
            return out
        case .audio:
            var out = [(String, Data)]()
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-seeds-\(getpid())")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            for (name, channels, bits) in [("stereo16.wav", 2, 16), ("mono24.wav", 1, 24), ("float.wav", 2, 32), ("stereo.flac", 2, 16), ("mono.ogg", 1, 16)] {
                let url = dir.appendingPathComponent(name)
                try AudioIO.write(tones(channels, name.hasSuffix(".ogg") ? 2048 : 64), sampleRate: 8000, to: url, bitDepth: bits)
                out.append((name, try FileIO.read(url)))
            }
            return out
        }
    }

    /// Small `.wlc` files through the default models (their 12-bit latents are rANS-coded; the
    /// `latent-image` target covers WebP and PNG latents).
    static func wlcFiles() throws -> [(String, Data)] {
        var out = [(String, Data)]()
        var image = try FuzzModels.image()
        image.coding = .rans
        for (h, w) in [(16, 24), (9, 13)] {
            let file = try image.compress(image: Image(pixels: pixels(3, h, w), bitDepth: 8, isFloat: false, format: .png)).file
            out.append(("image-\(h)x\(w).wlc", file.encode()))
        }
        let grey = try image.compress(image: Image(pixels: pixels(1, 8, 8), bitDepth: 16, isFloat: false, format: .png)).file
        out.append(("grey16-8x8.wlc", grey.encode()))
        // A low setting codes this one at half size (version 4 with the downscaling fields).
        let small = try image.withQuality(20).compress(image: Image(pixels: pixels(3, 64, 72), bitDepth: 8, isFloat: false, format: .png)).file
        out.append(("image-64x72-q20.wlc", small.encode()))
        let audio = try FuzzModels.audio().compress(audio: Audio(samples: tones(2, 600), sampleRate: 44100, bitDepth: 16))
        out.append(("stereo-600.wlc", audio.encode()))
        let mono = try FuzzModels.audio().compress(audio: Audio(samples: tones(1, 300), sampleRate: 44100, bitDepth: 16))
        out.append(("mono-300.wlc", mono.encode()))
        return out
    }
}
