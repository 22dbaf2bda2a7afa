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
        commandName: "bench",
        abstract: "Time the codec's stages, the entropy coder, whole files, and peak memory.",
        discussion: """
        Default: for each --nd, a Codec2D(J=3, latent_dim=12, lightweight encoder) with seeded random \
        weights (or --model) on a synthetic --size image (or --input X.npy): wavelet transform, \
        encode to latents, entropy encode and decode of the latents, decode, and the whole file \
        (PNG -> .wlc -> PNG). --audio SECONDS does the same for audio: a stereo Codec1D(J=8, \
        latent_dim=32, lightweight encoder), default Nd=256, on SECONDS of synthetic 44.1 kHz \
        audio (WAV -> .wlc -> WAV); a Codec1D --model implies audio (10 s unless --audio). Each \
        figure is the median wall time of --repeat runs after --warmup runs. \
        --peak-memory instead runs `walloc encode` and `walloc decode` as child processes on a \
        long synthetic WAV (default 600 s stereo 16-bit) and a large PNG (default 8000x6000) and \
        reports each one's peak resident memory against 4x the float32 size of the signal.
        """
    )

    @Option(help: "Image size WIDTHxHEIGHT (default 768x512; 8000x6000 with --peak-memory).") var size: String?
    @Option(help: "Time audio: seconds of synthetic stereo 44.1 kHz audio (with --peak-memory: the WAV's length, default 600).")
    var audio: Double?
    @Option(help: "Decoder widths to time, comma-separated (ignored with --model; default 128,768 for images, 256 for audio).")
    var nd: String?
    @Option(help: "Time this model directory instead of random models.") var model: String?
    @Option(help: "Time this .npy signal ([C, H, W] or [C, L]) instead of a synthetic one.") var input: String?
    @Option(help: "Untimed runs before measuring.") var warmup: Int = 1
    @Option(help: "Timed runs (the median is reported).") var `repeat`: Int = 5
    @Flag(help: "Time only the codec and entropy coding stages, not whole files.") var skipFiles = false
    @Flag(help: "Instead, measure the peak memory of `walloc encode` / `decode` on a long WAV and a large PNG.")
    var peakMemory = false
    /// --peak-memory runs `walloc bench --synthesize FILE` to make its inputs in another process.
    @Option(help: .hidden) var synthesize: String?
    @Option(help: .hidden) var channels: Int = 2
    @Option(help: .hidden) var randomModel: String?
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

    func validate() throws {
        guard warmup >= 0, self.repeat >= 1 else { throw ValidationError("--warmup must be >= 0 and --repeat >= 1") }
        if let audio, !(audio > 0 && audio.isFinite) { throw ValidationError("--audio must be a positive number of seconds") }
        if let size { _ = try Bench.parseSize(size) }
        let modes = [!coder.isEmpty, gemm != nil, metrics, peakMemory].filter { $0 }.count
        guard modes <= 1 else { throw ValidationError("--coder, --gemm, --metrics and --peak-memory are separate modes; give one") }
        if peakMemory && input != nil { throw ValidationError("--peak-memory synthesises its inputs; --input does not apply") }
    }

    /// `WIDTHxHEIGHT`, both positive.
    static func parseSize(_ s: String) throws -> (width: Int, height: Int) {
        let parts = s.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let w = parts[0], let h = parts[1], w >= 1, h >= 1 else {
            throw ValidationError("--size must be WIDTHxHEIGHT with positive sizes, got '\(s)'")
        }
        return (w, h)
    }

    func run() throws {
        try compute.apply()
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
        if let synthesize {
            return try PeakMemoryBench.synthesize(to: URL(fileURLWithPath: synthesize), randomModel: randomModel, channels: channels,
                                                  seconds: audio ?? 600,
                                                  size: try Bench.parseSize(size ?? "8000x6000"))
        }
        if peakMemory {
            let bench = PeakMemoryBench(model: model, seconds: audio ?? 600, size: try Bench.parseSize(size ?? "8000x6000"),
                                        threads: compute.threads, json: json)
            return try bench.run()
        }
        var compressors = [Compressor]()
        if let model {
            compressors.append(try Compressor.load(modelDirectory: URL(fileURLWithPath: model)))
            if audio != nil && compressors[0].codec.modality != .audio { throw ValidationError("--audio needs an audio (Codec1D) model") }
        } else {
            compressors = try PipelineBench.randomModels(modality: audio == nil ? .image : .audio, nd: nd)
        }
        let bench = PipelineBench(warmup: warmup, repetitions: self.repeat, files: !skipFiles)
        var rows = [[String: Any]]()
        for c in compressors {
            let x = try PipelineBench.signal(for: c.codec, input: input, size: try Bench.parseSize(size ?? "768x512"), seconds: audio ?? 10)
            let row = try bench.run(c, signal: x)
            rows.append(row)
            if !json { print(PipelineBench.describe(row)) }
        }
        if json { try printJSON(rows) }
    }

    func timeMetrics() throws {
        let (width, height) = try Bench.parseSize(size ?? "768x512")
        var rng = ParameterInitializer(seed: 11)
        let shape = [3, height, width]
        let noise = rng.uniform(shape, bound: 0.05)
        var x = rng.uniform(shape, bound: 0.5)
        for i in x.scalars.indices { x.scalars[i] += 0.5 }
        var y = x
        for i in y.scalars.indices { y.scalars[i] = min(1, max(0, x.scalars[i] + noise.scalars[i])) }
        let psnr = try Stopwatch.measure(warmup: warmup, repetitions: self.repeat) { _ = try ImageMetrics.psnr(x, y) }
        let ssim = try Stopwatch.measure(warmup: warmup, repetitions: self.repeat) { _ = try ImageMetrics.ssim(x, y) }
        let both = try Stopwatch.measure(warmup: warmup, repetitions: self.repeat) { _ = try ImageMetrics.structuralSimilarity(x, y) }
        print(String(format: "metrics %dx%d RGB, threads=%d: PSNR %.1f ms, SSIM %.1f ms, SSIM + MS-SSIM %.1f ms",
                     width, height, Threading.count, Stopwatch.median(psnr) * 1e3, Stopwatch.median(ssim) * 1e3, Stopwatch.median(both) * 1e3))
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
