import Foundation
import Walloc

/// Full-HD test images for conversion throughput: random crops (random scale, position and
/// mirroring) of the desktop wallpapers, resized by area to 1920x1080 and saved as JPEG (quality 90).
struct FullHDImages {
    var width = 1920, height = 1080
    var seed: UInt64 = 1

    func generate(out: URL, count: Int, progress: (Int, Int) -> Void) throws {
        // Per theme the largest image at most 2560 pixels wide (or the smallest when all are wider).
        var sources = [URL]()
        let root = "/usr/share/wallpapers"
        for t in ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted() {
            let dir = root + "/" + t + "/contents/images"
            let sized = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).compactMap { n -> (String, Int)? in
                guard n.hasSuffix(".jpg") || n.hasSuffix(".png"), let w = Int(n.split(separator: "x").first ?? "") else { return nil }
                return (n, w)
            }
            let pick = sized.filter { $0.1 <= 2560 }.max { $0.1 < $1.1 } ?? sized.min { $0.1 < $1.1 }
            if let pick { sources.append(URL(fileURLWithPath: dir + "/" + pick.0)) }
        }
        guard !sources.isEmpty else { throw WallocError("no wallpapers under \(root); install plasma-workspace-wallpapers") }
        var done = 0
        for (k, source) in sources.enumerated() {
            let indices = Array(stride(from: k, to: count, by: sources.count))
            if indices.isEmpty { continue }
            let image = try TrainingData.matchChannels(try ImageIO.read(source).pixels, channels: 3, name: source.path)
            let h = image.shape[1], w = image.shape[2]
            var errors = [Error?](repeating: nil, count: indices.count)
            errors.withUnsafeMutableBufferPointer { eb in
                parallelFor(indices.count) { j in
                    let i = indices[j]
                    var rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i))
                    let fit = min(Double(w) / Double(width), Double(h) / Double(height))
                    let s = fit <= 1 ? fit : 1 + Double(rng.uniform()) * (fit - 1)
                    let cw = min(w, Int(Double(width) * s)), ch = min(h, Int(Double(height) * s))
                    let x0 = rng.below(w - cw + 1), y0 = rng.below(h - ch + 1)
                    let flip = rng.below(2) == 1
                    var crop = Tensor(uninitialized: [3, ch, cw])
                    for c in 0..<3 { for y in 0..<ch { for x in 0..<cw {
                        crop.scalars[(c * ch + y) * cw + x] = image.scalars[(c * h + y0 + y) * w + x0 + (flip ? cw - 1 - x : x)]
                    } } }
                    do {
                        try Threading.serially {
                            let out1 = Resize.area(crop, height: height, width: width)
                            try ImageIO.write(out1, to: out.appendingPathComponent(String(format: "img-%05d.jpg", i)), format: .jpeg, quality: 90)
                        }
                    } catch { eb[j] = error }
                }
            }
            if let e = errors.compactMap({ $0 }).first { throw e }
            done += indices.count
            progress(done, count)
        }
    }
}
