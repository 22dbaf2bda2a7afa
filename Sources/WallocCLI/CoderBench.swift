import ArgumentParser
import Foundation
import Walloc

/// `walloc bench --coder FILES.npy`: size and speed of the latent entropy coder against lossless
/// WebP of the same latents (the reference's way).
struct CoderBench {
    var files: [String]
    var bits: Int
    var downsampling: Int
    var tile: Int
    var entropy: String?
    var leaveOneOut: Bool
    var warmup: Int
    var repetitions: Int
    var json: Bool
    var skipWebP = false
    var fit: [String] = []
    var saveEntropy: String?

    struct Row {
        var name: String
        var shape: [Int]
        var symbols: Int
        var pixels: Int
        var rans: Int
        var webpStrong: Int?
        var webpPillow: Int?
        var staticBits: Double
        /// Median wall-clock seconds.
        var encode: Double
        var decode: Double
        /// Median CPU seconds of the calling thread (the single-thread figure that other
        /// processes on a shared machine do not inflate).
        var encodeCPU: Double = 0
        var decodeCPU: Double = 0
    }

    /// Wall-clock and calling-thread CPU seconds of each run.
    static func measure(warmup: Int, repetitions: Int, _ body: () throws -> Void) rethrows -> (wall: [Double], cpu: [Double]) {
        for _ in 0..<warmup { try body() }
        var wall = [Double](), cpu = [Double]()
        func threadCPU() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        }
        for _ in 0..<repetitions {
            let w0 = DispatchTime.now().uptimeNanoseconds, c0 = threadCPU()
            try body()
            cpu.append(threadCPU() - c0)
            wall.append(Double(DispatchTime.now().uptimeNanoseconds - w0) / 1e9)
        }
        return (wall, cpu)
    }

    /// `[C, h, w]` tiled `n × n` times (a larger image with the same statistics).
    static func tiled(_ y: Tensor, _ n: Int) -> Tensor {
        guard n > 1, y.rank == 3 else { return y }
        let c = y.shape[0], h = y.shape[1], w = y.shape[2]
        var out = Tensor(zeros: [c, h * n, w * n])
        for ch in 0..<c {
            for yy in 0..<(h * n) {
                for xx in 0..<(w * n) {
                    // Mirror alternate tiles so tile borders stay continuous.
                    let ty = yy / h, tx = xx / w
                    let sy = ty % 2 == 0 ? yy % h : h - 1 - yy % h
                    let sx = tx % 2 == 0 ? xx % w : w - 1 - xx % w
                    out.scalars[(ch * h * n + yy) * w * n + xx] = y.scalars[(ch * h + sy) * w + sx]
                }
            }
        }
        return out
    }

    /// Ideal code length of the latents with one static histogram per channel (no context).
    static func staticEntropy(_ y: Tensor) -> Double {
        let c = y.shape[0], n = y.count / c
        var bits = 0.0
        for ch in 0..<c {
            var counts = [Float: Int]()
            for i in 0..<n { counts[y.scalars[ch * n + i], default: 0] += 1 }
            for k in counts.values { bits -= Double(k) * log2(Double(k) / Double(n)) }
        }
        return bits
    }

    func run() throws {
        var inputs = [(String, Tensor)]()
        for f in files {
            let y = try readTensor(f)
            inputs.append((URL(fileURLWithPath: f).deletingPathExtension().lastPathComponent, CoderBench.tiled(y, tile)))
        }
        var fixed: LatentModel?
        if let entropy {
            fixed = try JSONDecoder().decode(LatentModel.self, from: try FileIO.read(URL(fileURLWithPath: entropy)))
        }
        if !fit.isEmpty {
            fixed = try LatentModel.fit(latents: try fit.map { try readTensor($0) }, bits: bits)
            if let saveEntropy {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                try FileIO.writeAtomically(try encoder.encode(fixed!), to: URL(fileURLWithPath: saveEntropy))
            }
        }
        var rows = [Row]()
        for (i, (name, y)) in inputs.enumerated() {
            var defaults = fixed
            if leaveOneOut {
                let others = inputs.enumerated().filter { $0.offset != i && $0.element.1.shape[0] == y.shape[0] }.map { $0.element.1 }
                defaults = try LatentModel.fit(latents: others, bits: bits)
            }
            let payload = try LatentCoder.encode(y, bits: bits, defaults: defaults)
            guard try LatentCoder.decode(payload, shape: y.shape, bits: bits, defaults: defaults) == y else {
                throw WallocError("\(name): the coder did not round-trip")
            }
            // Encode and decode alternate so both see the same machine conditions.
            var enc = (wall: [Double](), cpu: [Double]()), dec = enc
            for rep in 0..<max(1, repetitions) {
                let e = try CoderBench.measure(warmup: rep == 0 ? warmup : 0, repetitions: 1) { _ = try LatentCoder.encode(y, bits: bits, defaults: defaults) }
                let d = try CoderBench.measure(warmup: rep == 0 ? warmup : 0, repetitions: 1) {
                    _ = try LatentCoder.decode(payload, shape: y.shape, bits: bits, defaults: defaults)
                }
                enc.wall += e.wall; enc.cpu += e.cpu; dec.wall += d.wall; dec.cpu += d.cpu
            }
            var row = Row(name: name, shape: y.shape, symbols: y.count, pixels: 0, rans: payload.count, webpStrong: nil, webpPillow: nil,
                          staticBits: CoderBench.staticEntropy(y), encode: Stopwatch.median(enc.wall), decode: Stopwatch.median(dec.wall),
                          encodeCPU: Stopwatch.median(enc.cpu), decodeCPU: Stopwatch.median(dec.cpu))
            if y.rank == 3 {
                row.pixels = y.shape[1] * y.shape[2] * downsampling * downsampling
                if bits <= 8 && !skipWebP {
                    row.webpStrong = try LatentImage.encode(y, bits: bits, format: .webp, webp: LatentImage.strongestWebP).count
                    row.webpPillow = try LatentImage.encode(y, bits: bits, format: .webp, webp: LatentImage.pillowWebP).count
                }
            }
            rows.append(row)
            if !json { print(describe(row)) }
        }
        var total = Row(name: "total", shape: [], symbols: 0, pixels: 0, rans: 0, webpStrong: 0, webpPillow: 0, staticBits: 0, encode: 0, decode: 0)
        for r in rows {
            total.symbols += r.symbols; total.pixels += r.pixels; total.rans += r.rans
            total.staticBits += r.staticBits; total.encode += r.encode; total.decode += r.decode
            total.encodeCPU += r.encodeCPU; total.decodeCPU += r.decodeCPU
            if let w = r.webpStrong, let t = total.webpStrong { total.webpStrong = t + w } else { total.webpStrong = nil }
            if let w = r.webpPillow, let t = total.webpPillow { total.webpPillow = t + w } else { total.webpPillow = nil }
        }
        if json {
            let objects = (rows + [total]).map { r -> [String: Any] in
                var o: [String: Any] = ["name": r.name, "shape": r.shape, "symbols": r.symbols, "rans_bytes": r.rans,
                                        "static_entropy_bits": r.staticBits, "encode_s": r.encode, "decode_s": r.decode,
                                        "encode_msym_s": Double(r.symbols) / r.encode / 1e6, "decode_msym_s": Double(r.symbols) / r.decode / 1e6,
                                        "encode_cpu_s": r.encodeCPU, "decode_cpu_s": r.decodeCPU,
                                        "encode_cpu_msym_s": Double(r.symbols) / r.encodeCPU / 1e6, "decode_cpu_msym_s": Double(r.symbols) / r.decodeCPU / 1e6,
                                        "threads": Threading.count]
                if r.pixels > 0 { o["pixels"] = r.pixels }
                if let w = r.webpStrong { o["webp_m6_q100_bytes"] = w }
                if let w = r.webpPillow { o["webp_m4_q80_bytes"] = w }
                return o
            }
            let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(describe(total))
        }
    }

    func describe(_ r: Row) -> String {
        var s = String(format: "%-22@ %9d latents  rANS %7d B  %.3f bit/latent", r.name as NSString, r.symbols, r.rans,
                       8 * Double(r.rans) / Double(r.symbols))
        if r.pixels > 0 {
            s += String(format: "  %.4f bpp", 8 * Double(r.rans) / Double(r.pixels))
            if let w = r.webpStrong, let p = r.webpPillow {
                s += String(format: " | WebP m6q100 %.4f bpp (rANS %+.1f%%), m4q80 %.4f bpp (%+.1f%%)",
                            8 * Double(w) / Double(r.pixels), 100 * (Double(r.rans) / Double(w) - 1),
                            8 * Double(p) / Double(r.pixels), 100 * (Double(r.rans) / Double(p) - 1))
            }
            s += String(format: " | static %.4f bpp", r.staticBits / Double(r.pixels))
        }
        s += String(format: " | encode %.1f Msym/s, decode %.1f Msym/s (wall, threads %d); thread CPU: encode %.1f, decode %.1f Msym/s",
                    Double(r.symbols) / r.encode / 1e6, Double(r.symbols) / r.decode / 1e6, Threading.count,
                    Double(r.symbols) / r.encodeCPU / 1e6, Double(r.symbols) / r.decodeCPU / 1e6)
        return s
    }
}
