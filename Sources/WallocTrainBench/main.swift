// Times one Codec2D training step (forward + backward + AdamW) on the benchmark configuration:
// batch 8 of 3x128x128 crops, J=3, latent_dim=12, Nd=128, lightweight encoder.
//     swift build -c release -Xswiftc -target-cpu -Xswiftc haswell
//     .build/release/walloc-train-bench [threads] [steps]
import Foundation
import Walloc

let args = CommandLine.arguments
let threads = args.count > 1 ? Int(args[1]) ?? 2 : 2
let steps = args.count > 2 ? Int(args[2]) ?? 5 : 5
Threading.setCount(threads)
Allocator.retainFreedMemory()
do {
    let model = ModelConfig(type: .codec2D, channels: 3, J: 3, Nd: 128, latentDim: 12, latentBits: 8, lightweightEncode: true)
    var config = TrainingConfig()
    config.batchSize = 8; config.cropSize = 128; config.warmupSteps = 10
    var rng = SplitMix64(seed: 1)
    let data = (0..<4).map { _ in Tensor(shape: [3, 160, 160], scalars: (0..<(3 * 160 * 160)).map { _ in rng.uniform() - 0.5 }) }
    var trainer = try Trainer(codec: try Codec(config: model, seed: 0), config: config, data: data)
    let batch = trainer.nextBatch()
    try trainer.step(batch: batch)  // warm-up
    var times = [Double]()
    for _ in 0..<steps {
        let t0 = Date()
        let r = try trainer.step(batch: batch)
        times.append(Date().timeIntervalSince(t0))
        print(String(format: "step %.3f s  loss %.5f  psnr %.2f dB", times.last!, r.loss, r.psnr))
    }
    times.sort()
    print(String(format: "threads %d: median %.3f s, min %.3f s per step", threads, times[times.count / 2], times[0]))
} catch {
    FileHandle.standardError.write("error: \(error)\n".data(using: .utf8)!)
    exit(1)
}
