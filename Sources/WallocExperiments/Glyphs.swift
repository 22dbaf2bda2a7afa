import CFreeType
import Foundation
import Walloc

/// The image task: a word rendered small (random font, size, rotation, colour and position) onto
/// a random crop of a desktop wallpaper; the class is the word. The default words have the same
/// length and only x-height letters (no ascenders, descenders or dots), so their outlines look
/// alike: telling them apart takes the letters' detail.
struct GlyphDataset {
    var size = 128
    var minPixels = 14
    var maxPixels = 20
    var maxRotation = 10.0
    var texts = GlyphDataset.defaultWords
    var seed: UInt64 = 1
    static let defaultWords = ["mean", "moon", "noun", "wear", "cane", "zone", "roam", "earn", "scar", "user"]

    /// Fonts from Debian's font packages (fonts-dejavu-core, fonts-liberation2, fonts-freefont-ttf).
    static func fonts(root: String = "/usr/share/fonts/truetype") throws -> [String] {
        let folders = ["dejavu", "liberation2", "freefont"]
        var out = [String]()
        for f in folders {
            let dir = root + "/" + f
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for n in names.sorted() where n.hasSuffix(".ttf") && !n.contains("Math") && !n.contains("ExtraLight") { out.append(dir + "/" + n) }
        }
        guard out.count >= 3 else {
            throw WallocError("found \(out.count) fonts under \(root)/{dejavu,liberation2,freefont}; install fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf (scripts/install-deps.sh --experiments)")
        }
        return out
    }

    /// Wallpapers (Debian's plasma-workspace-wallpapers): per theme, the image nearest 1920 pixels wide.
    static func wallpapers(root: String = "/usr/share/wallpapers") throws -> [URL] {
        var out = [URL]()
        let themes = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted()
        for t in themes {
            let dir = root + "/" + t + "/contents/images"
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            let sized = names.compactMap { n -> (String, Int)? in
                guard n.hasSuffix(".jpg") || n.hasSuffix(".png"), let w = Int(n.split(separator: "x").first ?? "") else { return nil }
                return (n, w)
            }
            if let best = sized.min(by: { abs($0.1 - 1920) < abs($1.1 - 1920) }) { out.append(URL(fileURLWithPath: dir + "/" + best.0)) }
        }
        guard out.count >= 4 else {
            throw WallocError("found \(out.count) wallpapers under \(root); install plasma-workspace-wallpapers (scripts/install-deps.sh --experiments)")
        }
        return out
    }

    /// Writes `OUT/train/<class>/<n>.png` and `OUT/test/<class>/<n>.png`. Every fifth wallpaper
    /// is kept for the test set, the rest for training; fonts and everything else are shared.
    func generate(out: URL, train: Int, test: Int, progress: (Int, Int) -> Void) throws {
        let fonts = try GlyphDataset.fonts()
        let papers = try GlyphDataset.wallpapers()
        // Backgrounds at most 1024 pixels on the long side (crops are then resized to `size`).
        var loaded = [Result<Tensor, Error>?](repeating: nil, count: papers.count)
        loaded.withUnsafeMutableBufferPointer { lb in
            parallelFor(papers.count) { i in
                lb[i] = Result {
                    try Threading.serially {
                        Resize.fit(try TrainingData.matchChannels(try ImageIO.read(papers[i]).pixels, channels: 3, name: papers[i].path), maxSide: 1024)
                    }
                }
            }
        }
        let backgrounds = try loaded.map { try $0!.get() }
        let testPapers = Array(stride(from: 4, to: backgrounds.count, by: 5))
        let trainPapers = backgrounds.indices.filter { !testPapers.contains($0) }
        let jobs = [("train", train, trainPapers, UInt64(1)), ("test", test, testPapers, UInt64(2))]
        for (split, _, _, _) in jobs {
            for t in texts { try FileManager.default.createDirectory(at: out.appendingPathComponent(split).appendingPathComponent(t), withIntermediateDirectories: true) }
        }
        let total = train + test
        var done = 0
        for (split, count, paperIndices, tag) in jobs {
            // Contiguous blocks per worker thread, each with its own FreeType library and faces.
            let workers = max(1, Threading.count)
            let block = 64
            var start = 0
            while start < count {
                let chunk = min(count - start, block * workers)
                var errors = [Error?](repeating: nil, count: workers)
                errors.withUnsafeMutableBufferPointer { eb in
                    parallelFor(workers) { w in
                        do {
                            let renderer = try GlyphRenderer(fonts: fonts)
                            let lo = start + w * chunk / workers, hi = start + (w + 1) * chunk / workers
                            for i in lo..<hi {
                                var rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ tag &* 0x1_0000_0001 &+ UInt64(i))
                                let label = rng.below(texts.count)
                                let image = Threading.serially {
                                    render(text: texts[label], background: backgrounds[paperIndices[rng.below(paperIndices.count)]],
                                           renderer: renderer, rng: &rng)
                                }
                                let url = out.appendingPathComponent(split).appendingPathComponent(texts[label])
                                    .appendingPathComponent(String(format: "%06d.png", i))
                                try Threading.serially { try ImageIO.write(image, to: url, format: .png) }
                            }
                        } catch { eb[w] = error }
                    }
                }
                if let e = errors.compactMap({ $0 }).first { throw e }
                start += chunk
                done += chunk
                progress(done, total)
            }
        }
    }

    /// One sample: crop, resize, flip the background; draw the text.
    func render(text: String, background bg: Tensor, renderer: GlyphRenderer, rng: inout SplitMix64) -> Tensor {
        let h = bg.shape[1], w = bg.shape[2]
        let side = min(h, w)
        let crop = size + rng.below(max(1, min(side, 3 * size) - size + 1))
        let y0 = rng.below(h - crop + 1), x0 = rng.below(w - crop + 1)
        var patch = Tensor(uninitialized: [3, crop, crop])
        for c in 0..<3 { for y in 0..<crop { for x in 0..<crop { patch.scalars[(c * crop + y) * crop + x] = bg.scalars[(c * h + y0 + y) * w + x0 + x] } } }
        var image = Resize.area(patch, height: size, width: size)
        if rng.below(2) == 1 {
            for c in 0..<3 { for y in 0..<size { for x in 0..<(size / 2) {
                image.scalars.swapAt((c * size + y) * size + x, (c * size + y) * size + size - 1 - x)
            } } }
        }
        let font = rng.below(renderer.faces.count)
        let pixels = minPixels + rng.below(maxPixels - minPixels + 1)
        let angle = (Double(rng.uniform()) * 2 - 1) * maxRotation * Double.pi / 180
        guard let glyph = renderer.render(text, face: font, pixels: pixels, angle: angle) else { return image }
        let margin = 4
        let gx = margin + rng.below(max(1, size - glyph.width - 2 * margin))
        let gy = margin + rng.below(max(1, size - glyph.height - 2 * margin))
        // Text colour: a random hue, light on dark backgrounds and dark on light ones.
        var luminance: Float = 0
        for y in 0..<glyph.height { for x in 0..<glyph.width {
            let p = (gy + y) * size + gx + x
            luminance += 0.299 * image.scalars[p] + 0.587 * image.scalars[size * size + p] + 0.114 * image.scalars[2 * size * size + p]
        } }
        luminance /= Float(max(1, glyph.width * glyph.height))
        let dark = luminance > 0.5
        var colour = (0..<3).map { _ in rng.uniform() }
        for c in 0..<3 { colour[c] = dark ? colour[c] * 0.3 : 0.7 + colour[c] * 0.3 }
        for y in 0..<glyph.height { for x in 0..<glyph.width {
            let a = glyph.coverage[y * glyph.width + x]
            if a == 0 { continue }
            let p = (gy + y) * size + gx + x
            for c in 0..<3 { image.scalars[c * size * size + p] = image.scalars[c * size * size + p] * (1 - a) + colour[c] * a }
        } }
        return image
    }
}

/// A rendered glyph: coverage in [0, 1], row-major.
struct GlyphBitmap {
    var width: Int, height: Int
    var coverage: [Float]
}

/// A FreeType library with one face per font file (not shared between threads).
final class GlyphRenderer {
    private var library: FT_Library?
    private(set) var faces: [FT_Face?] = []

    init(fonts: [String]) throws {
        guard FT_Init_FreeType(&library) == 0 else { throw WallocError("FreeType failed to initialise") }
        for path in fonts {
            var face: FT_Face?
            guard FT_New_Face(library, path, 0, &face) == 0 else { throw WallocError("\(path): FreeType cannot open this font") }
            faces.append(face)
        }
    }

    deinit {
        for f in faces { FT_Done_Face(f) }
        FT_Done_FreeType(library)
    }

    /// `text` at `pixels` pixels per em along a baseline rotated by `angle` radians (anti-aliased,
    /// kerning ignored), cropped to its ink.
    func render(_ text: String, face index: Int, pixels: Int, angle: Double) -> GlyphBitmap? {
        guard let face = faces[index] else { return nil }
        FT_Set_Pixel_Sizes(face, 0, FT_UInt(pixels))
        var matrix = FT_Matrix(xx: FT_Fixed(cos(angle) * 65536), xy: FT_Fixed(-sin(angle) * 65536),
                               yx: FT_Fixed(sin(angle) * 65536), yy: FT_Fixed(cos(angle) * 65536))
        let loadRender: FT_Int32 = 1 << 2  // FT_LOAD_RENDER
        // Each glyph rendered at the pen position (26.6 fixed point, y up), the pen moved by its advance.
        var pen = FT_Vector(x: 0, y: 0)
        var pieces = [(x: Int, y: Int, bitmap: GlyphBitmap)]()
        for scalar in text.unicodeScalars {
            FT_Set_Transform(face, &matrix, &pen)
            guard FT_Load_Char(face, FT_ULong(scalar.value), loadRender) == 0, let slot = face.pointee.glyph else { return nil }
            let bitmap = slot.pointee.bitmap
            let w = Int(bitmap.width), h = Int(bitmap.rows), pitch = Int(bitmap.pitch)
            if w > 0, h > 0, let buffer = bitmap.buffer {
                var coverage = [Float](repeating: 0, count: w * h)
                for y in 0..<h { for x in 0..<w { coverage[y * w + x] = Float(buffer[y * pitch + x]) / 255 } }
                // Image rows grow downwards: the bitmap's top-left corner is (left, -top).
                pieces.append((Int(slot.pointee.bitmap_left), -Int(slot.pointee.bitmap_top), GlyphBitmap(width: w, height: h, coverage: coverage)))
            }
            pen.x += slot.pointee.advance.x
            pen.y += slot.pointee.advance.y
        }
        guard !pieces.isEmpty else { return nil }
        let x0 = pieces.map(\.x).min()!, y0 = pieces.map(\.y).min()!
        let x1 = pieces.map { $0.x + $0.bitmap.width }.max()!, y1 = pieces.map { $0.y + $0.bitmap.height }.max()!
        let w = x1 - x0, h = y1 - y0
        var coverage = [Float](repeating: 0, count: w * h)
        for p in pieces {
            for y in 0..<p.bitmap.height { for x in 0..<p.bitmap.width {
                let i = (p.y - y0 + y) * w + p.x - x0 + x
                coverage[i] = max(coverage[i], p.bitmap.coverage[y * p.bitmap.width + x])
            } }
        }
        return GlyphBitmap(width: w, height: h, coverage: coverage)
    }
}
