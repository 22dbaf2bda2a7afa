// Times one training step (forward + backward + clipping + AdamW), median of `steps` runs.
//     swift build -c release -Xswiftc -target-cpu -Xswiftc haswell
//     .build/release/walloc-train-bench [threads] [steps] [codec2d | codec1d | codec1d-post]
// codec2d (default): Codec2D, batch 8 of 3x128x128 crops, J=3, latent_dim=12, Nd=128, lightweight encoder.
// codec1d: Codec1D, batch 8 of 2x32768 segments, J=8, latent_dim=32, Nd=256, lightweight encoder,
// no post filter; codec1d-post: the same with the post filter. A fourth argument sets the precision of
// the training convolutions' products: fp32 (default) or bf16 (Kernels.setTrainingPrecision).
import Foundation
import Walloc
#if canImport(Glibc)
import Glibc
#endif

/// Process CPU time in seconds (all threads): steadier than wall time on a shared machine.
func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

let args = CommandLine.arguments
let threads = args.count > 1 ? Int(args[1]) ?? 2 : 2
let steps = args.count > 2 ? Int(args[2]) ?? 5 : 5
let which = args.count > 3 ? args[3] : "codec2d"
if args.count > 4 {
    guard let p = Kernels.Precision(rawValue: args[4]) else { fatalError("precision: fp32, bf16 or auto") }
    Kernels.setTrainingPrecision(p)
}
Threading.setCount(threads)
Allocator.retainFreedMemory()
do {
    var config = TrainingConfig()
    config.batchSize = 8; config.warmupSteps = 10
    var rng = SplitMix64(seed: 1)
    let model: ModelConfig
    let data: [Tensor]
    switch which {
    case "codec2d":
        model = ModelConfig(type: .codec2D, channels: 3, J: 3, Nd: 128, latentDim: 12, latentBits: 8, lightweightEncode: true)
        config.cropSize = 128
        data = (0..<4).map { _ in Tensor(shape: [3, 160, 160], scalars: (0..<(3 * 160 * 160)).map { _ in rng.uniform() - 0.5 }) }
    case "codec1d", "codec1d-post":
        model = ModelConfig(type: .codec1D, channels: 2, J: 8, Nd: 256, latentDim: 32, latentBits: 8, lightweightEncode: true,
                            postFilter: which == "codec1d-post")
        config.cropSize = 32768
        data = (0..<4).map { _ in Tensor(shape: [2, 40000], scalars: (0..<80000).map { _ in 0.5 * rng.uniform() - 0.25 }) }
    default:
        throw WallocError("unknown configuration '\(which)' (codec2d, codec1d or codec1d-post)")
    }
    var trainer = try Trainer(codec: try Codec(config: model, seed: 0), config: config, data: data)
    let batch = trainer.nextBatch()
    try trainer.step(batch: batch)  // warm-up
    var times = [Double](), cpu = [Double]()
    for _ in 0..<steps {
        let t0 = Date(), c0 = cpuSeconds()
        let r = try trainer.step(batch: batch)
        times.append(Date().timeIntervalSince(t0))
        cpu.append(cpuSeconds() - c0)
        print(String(format: "step %.3f s  cpu %.3f s  loss %.5f  psnr %.2f dB", times.last!, cpu.last!, r.loss, r.psnr))
    }
    times.sort()
    cpu.sort()
    print(String(format: "%@, threads %d: median %.3f s, min %.3f s per step; cpu median %.3f s", which, threads,
                 times[times.count / 2], times[0], cpu[cpu.count / 2]))
} catch {
    FileHandle.standardError.write("error: \(error)\n".data(using: .utf8)!)
    exit(1)
}
