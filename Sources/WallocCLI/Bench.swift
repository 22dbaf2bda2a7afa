import ArgumentParser
import Foundation
import Walloc

/// Timing with warm-up runs and the median of repetitions.
struct Stopwatch {
    static func measure(warmup: Int, repetitions: Int, _ body: () throws -> Void) rethrows -> [Double] {
        for _ in 0..<warmup { try body() }
        var times = [Double]()
        for _ in 0..<repetitions {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return times
    }

    static func median(_ t: [Double]) -> Double {
        let s = t.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the wavelet transform, encoding and decoding of an image-sized input.",
        discussion: """
        Builds Codec2D(J=3, latent_dim=12, lightweight encoder) models with seeded random weights for \
        each --nd (or loads --model), and reports the median wall time of each stage over \
        --repeat runs after --warmup runs. --json prints machine-readable results.
        """
    )

    @Option(help: "Image size WIDTHxHEIGHT.") var size: String = "768x512"
    @Option(help: "Decoder widths to time, comma-separated (ignored with --model).") var nd: String = "128,768"
    @Option(help: "Time this model directory instead of random Codec2D models.") var model: String?
    @Option(help: "Time this .npy signal instead of a random image.") var input: String?
    @Option(help: "Untimed runs before measuring.") var warmup: Int = 1
    @Option(help: "Timed runs (the median is reported).") var `repeat`: Int = 5
    @Option(help: "Instead, time an n x n x n sgemm (single BLAS call and split over --threads).") var gemm: Int?
    @Option(parsing: .upToNextOption, help: "Instead, benchmark the latent entropy coder on these latent .npy files ([C, h, w] or [C, L] integers).")
    var coder: [String] = []
    @Option(help: "Coder benchmark: latent bits.") var bits: Int = 8
    @Option(help: "Coder benchmark: pixels per latent along each side (2^J), for bits per pixel.") var downsampling: Int = 8
    @Option(help: "Coder benchmark: tile each image latent N x N times (mirrored) to time large inputs.") var tile: Int = 1
    @Option(help: "Coder benchmark: default entropy tables (entropy.json) to code with.") var entropy: String?
    @Flag(help: "Coder benchmark: code each file with default tables fitted on the other files.") var leaveOneOut = false
    @Option(parsing: .upToNextOption, help: "Coder benchmark: fit default tables on these latent .npy files and code with them.")
    var fit: [String] = []
    @Option(help: "Coder benchmark: write the fitted default tables (entropy.json) here.") var saveEntropy: String?
    @Flag(name: .customLong("skip-webp"), help: "Coder benchmark: do not compress with WebP.") var skipWebP = false
    @Flag(help: "Instead, time the image metrics (PSNR, SSIM + MS-SSIM) on an RGB pair of --size.") var metrics = false
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        guard warmup >= 0, self.repeat >= 1 else { throw ValidationError("--warmup must be >= 0 and --repeat >= 1") }
        if !coder.isEmpty {
            guard tile >= 1 else { throw ValidationError("--tile must be at least 1") }
            var bench = CoderBench(files: coder, bits: bits, downsampling: downsampling, tile: tile, entropy: entropy,
                                   leaveOneOut: leaveOneOut, warmup: warmup, repetitions: self.repeat, json: json, skipWebP: skipWebP)
            bench.fit = fit
            bench.saveEntropy = saveEntropy
            return try bench.run()
        }
        if let gemm { return try timeGemm(gemm) }
        if metrics { return try timeMetrics() }
        var codecs = [(String, Codec)]()
        if let model {
            codecs.append((model, try Codec.load(from: URL(fileURLWithPath: model))))
        } else {
            for w in nd.split(separator: ",") {
                guard let v = Int(w.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("bad --nd value '\(w)'") }
                let config = ModelConfig(type: .codec2D, channels: 3, J: 3, Nd: v, latentDim: 12, latentBits: 8, lightweightEncode: true)
                codecs.append(("Codec2D J=3 latent_dim=12 Nd=\(v)", try Codec(config: config, seed: 1)))
            }
        }
        var rows = [[String: Any]]()
        for (name, codec) in codecs {
            let x: Tensor
            if let input {
                x = try NPY.read(URL(fileURLWithPath: input))
            } else {
                let parts = size.split(separator: "x").compactMap { Int($0) }
                guard parts.count == 2 else { throw ValidationError("--size must be WIDTHxHEIGHT") }
                var rng = ParameterInitializer(seed: 7)
                x = rng.uniform([codec.config.channels, parts[1], parts[0]], bound: 0.5)
            }
            try codec.checkSignal(x)
            let latents = try codec.encode(x)
            let wpt = try Stopwatch.measure(warmup: warmup, repetitions: self.repeat) { _ = try codec.analysis(x) }
            let enc = try Stopwatch.measure(warmup: warmup, repetitions: self.repeat) { _ = try codec.encode(x) }
            let dec = try Stopwatch.measure(warmup: warmup, repetitions: self.repeat) { _ = try codec.decode(latents) }
            let row: [String: Any] = [
                "model": name, "shape": x.shape, "threads": Threading.count,
                "wpt_s": Stopwatch.median(wpt), "encode_s": Stopwatch.median(enc), "decode_s": Stopwatch.median(dec),
            ]
            rows.append(row)
            if !json {
                print(String(format: "%@  %@  threads=%d  wpt %.2f ms  encode %.2f ms  decode %.1f ms",
                             name, "\(x.shape)", Threading.count, Stopwatch.median(wpt) * 1e3,
                             Stopwatch.median(enc) * 1e3, Stopwatch.median(dec) * 1e3))
            }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    func timeMetrics() throws {
        let parts = size.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2 else { throw ValidationError("--size must be WIDTHxHEIGHT") }
        var rng = ParameterInitializer(seed: 11)
        let shape = [3, parts[1], parts[0]]
        let noise = rng.uniform(shape, bound: 0.05)
        var x = rng.uniform(shape, bound: 0.5)
        for i in x.scalars.indices { x.scalars[i] += 0.5 }
        var y = x
        for i in y.scalars.indices { y.scalars[i] = min(1, max(0, x.scalars[i] + noise.scalars[i])) }
        let psnr = try Stopwatch.measure(warmup: warmup, repetitions: self.repeat) { _ = try ImageMetrics.psnr(x, y) }
        let ssim = try Stopwatch.measure(warmup: warmup, repetitions: self.repeat) { _ = try ImageMetrics.ssim(x, y) }
        let both = try Stopwatch.measure(warmup: warmup, repetitions: self.repeat) { _ = try ImageMetrics.structuralSimilarity(x, y) }
        print(String(format: "metrics %@ RGB, threads=%d: PSNR %.1f ms, SSIM %.1f ms, SSIM + MS-SSIM %.1f ms",
                     size, Threading.count, Stopwatch.median(psnr) * 1e3, Stopwatch.median(ssim) * 1e3, Stopwatch.median(both) * 1e3))
    }

    func timeGemm(_ n: Int) throws {
        var rng = ParameterInitializer(seed: 3)
        let a = rng.uniform([n, n], bound: 1), b = rng.uniform([n, n], bound: 1)
        var c = Tensor(zeros: [n, n])
        let flops = 2 * Double(n) * Double(n) * Double(n)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    let one = Stopwatch.measure(warmup: warmup, repetitions: self.repeat) {
                        BLAS.gemm(m: n, n: n, k: n, a: ap.baseAddress!, lda: n, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
                    }
                    let split = Stopwatch.measure(warmup: warmup, repetitions: self.repeat) {
                        BLAS.parallelGemm(m: n, n: n, k: n, a: ap.baseAddress!, lda: n, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n)
                    }
                    print(String(format: "sgemm n=%d: one thread %.1f GFLOP/s, split over %d threads %.1f GFLOP/s",
                                 n, flops / Stopwatch.median(one) / 1e9, Threading.count, flops / Stopwatch.median(split) / 1e9))
                }
            }
        }
    }
}
