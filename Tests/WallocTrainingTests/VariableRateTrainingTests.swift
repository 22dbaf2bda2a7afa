import Foundation
import Testing
import Walloc

/// A signal whose log-mel spectrogram was computed with PyTorch (torch.stft, center=True,
/// reflect padding, Hann window, HTK mel filters with peak 1, log10(mel + 1e-5)).
private func synthetic(_ f: (Double) -> Double, length: Int = 6000) -> Tensor {
    Tensor(shape: [1, length], scalars: (0..<length).map { Float(f(Double($0))) })
}

@Suite("Variable-rate training: log-mel loss, log-MSE, quality bottleneck")
struct VariableRateTrainingTests {
    init() { TestSetup.singleThreaded }

    static let x = synthetic { t in
        0.3 * sin(2 * .pi * 440 * t / 16000) + 0.1 * sin(2 * .pi * 3000 * t / 16000 + 0.5) + 0.05 * pow(sin(t * 0.37), 3)
    }
    static let y = synthetic { t in 0.25 * sin(2 * .pi * 440 * t / 16000 + 0.1) + 0.02 * cos(t * 1.9) }

    @Test("Log-mel spectrogram and distance match PyTorch")
    func logMelMatchesTorch() throws {
        let s = LogMelSpectrogram(sampleRate: 16000, nFFT: 512, hop: 128, mels: 80)
        let a = s.forward(Self.x)
        #expect(a.frames == 47)
        // [frames, mels] layout: element (mel m, frame f) is at f·80 + m.
        for (m, f, expected) in [(0, 0, 0.93617), (10, 5, -3.08636), (40, 20, -4.99985), (79, 46, -1.76392)] {
            #expect(abs(Double(a.logMel[f * 80 + m]) - expected) < 2e-3, "mel \(m), frame \(f): \(a.logMel[f * 80 + m])")
        }
        let b = s.forward(Self.y)
        let distance = zip(a.logMel, b.logMel).map { Double(abs($0 - $1)) }.reduce(0, +) / Double(a.logMel.count)
        #expect(abs(distance - 0.825278) < 2e-3)
    }

    @Test("Log-mel backward matches finite differences")
    func logMelGradient() {
        let s = LogMelSpectrogram(sampleRate: 16000, nFFT: 64, hop: 16, mels: 12, floor: 1e-3)
        let x = random([2, 200], seed: 5)
        let out = s.forward(x, tape: true)
        let r = random([out.logMel.count], seed: 6).scalars
        let g = s.backward(out.tape!, r)
        func loss(_ x: Tensor) -> Double { zip(s.forward(x).logMel, r).map { Double($0) * Double($1) }.reduce(0, +) }
        let eps: Float = 1e-3
        for i in [0, 3, 31, 100, 199, 250, 399] {
            var p = x, m = x
            p.scalars[i] += eps; m.scalars[i] -= eps
            let numeric = (loss(p) - loss(m)) / Double(2 * eps)
            #expect(abs(numeric - Double(g[i])) <= 2e-2 * max(abs(numeric), 0.05), "sample \(i): \(numeric) vs \(g[i])")
        }
    }

    @Test("log-MSE and normalised MSE gradients match finite differences")
    func distortionGradients() {
        let a = random([3, 50], seed: 1), b = random([3, 50], seed: 2, scale: 0.8)
        for distortion in [TrainingObjective.Distortion.logMSE, .normalizedMSE, .mse] {
            let objective = TrainingObjective(distortion: distortion)
            let (_, g) = objective.distortionAndGradient(a, b)
            for i in [0, 17, 60, 149] {
                var p = a, m = a
                p.scalars[i] += 1e-3; m.scalars[i] -= 1e-3
                let numeric = (Double(objective.distortionAndGradient(p, b).0) - Double(objective.distortionAndGradient(m, b).0)) / 2e-3
                #expect(abs(numeric - Double(g.scalars[i])) <= 2e-2 * abs(numeric) + 1e-5, "\(distortion) [\(i)]: \(numeric) vs \(g.scalars[i])")
            }
        }
    }

    @Test("Variable-rate Codec2D: decoder, skip and quality-channel gradients match finite differences", arguments: [false, true])
    func codec2DGradients(refine: Bool) throws {
        let rate = RateConfig(maxStep: 2, minStep: 0.05, defaultQuality: 50, stepScaledOutput: true)
        let config = ModelConfig(type: .codec2D, channels: 1, J: 1, Nd: 32, latentDim: 3, latentBits: 10,
                                 lightweightEncode: true, linearSkip: true, rate: rate, refineLatents: refine)
        var codec = try Codec(config: config, seed: 4)
        codec.visitParameters(prefix: "") { name, t in
            if name == "latent_scale" { t.scalars = [1.5, 0.7, 2] }
            if name == "band_scale" { t.scalars = [1, 0.5, 0.25, 2] }
        }
        #expect((codec.bandScale == nil) == refine)
        codec.parametersDidChange()
        let x = random([2, 1, 8, 8], seed: 7)
        let quantization = TrainingQuantization.qualities([20, 80])
        let objective = TrainingObjective(distortion: .logMSE)
        let (_, grads) = try codec.lossAndGradients(batch: x, quantization: quantization, objective: objective)
        #expect(grads["latent_scale"] == nil && grads["band_scale"] == nil)
        #expect(grads["decoder.1.conv_in.weight"]!.shape == [32, 4, 3, 3])  // 3 latents + the quality channel
        for name in ["skip.weight", "decoder.1.conv_in.weight", "decoder.1.conv_out.weight", "decoder.1.conv_out.bias"] {
            let g = try #require(grads[name])
            let i = g.scalars.indices.max { abs(g.scalars[$0]) < abs(g.scalars[$1]) }!
            func loss(_ e: Float) throws -> Double {
                var m = codec
                m.visitParameters(prefix: "") { n, t in if n == name { t.scalars[i] += e } }
                m.parametersDidChange()
                return Double(try m.lossAndGradients(batch: x, quantization: quantization, objective: objective).0.loss)
            }
            let numeric = (try loss(1e-2) - loss(-1e-2)) / 2e-2
            #expect(abs(numeric - Double(g.scalars[i])) <= 3e-2 * abs(numeric) + 1e-5, "\(name)[\(i)]: \(numeric) vs \(g.scalars[i])")
        }
    }

    @Test("A training pass at an integer quality sees exactly what decoding at that quality gives")
    func trainingMatchesInference() throws {
        for (scaled, refine) in [(false, false), (true, false), (true, true)] {
            let rate = RateConfig(maxStep: 2, minStep: 0.05, defaultQuality: 50, stepScaledOutput: scaled)
            let config = ModelConfig(type: .codec2D, channels: 3, J: 1, Nd: 32, latentDim: 5, latentBits: 10,
                                     lightweightEncode: true, linearSkip: true, rate: rate, refineLatents: refine)
            let codec = try Codec(config: config, seed: 12)
            let x = random([1, 3, 8, 8], seed: 13)
            for q in [3, 77] {
                let train = try codec.lossAndGradients(batch: x, quantization: .qualities([Float(q)]), objective: TrainingObjective()).0
                let eval = try codec.withQuality(q).evaluationLosses(x)
                #expect(abs(train.mse - eval.mse) <= 1e-5 * eval.mse, "q\(q), scaled \(scaled): \(train.mse) vs \(eval.mse)")
            }
        }
    }

    @Test("With rate.rd_lambda, training and validation quantise as files are written (rate-distortion optimised levels)")
    func trainingUsesRateDistortionLevels() throws {
        let rate = RateConfig(maxStep: 2, minStep: 0.05, defaultQuality: 50, stepScaledOutput: true, deadzone: 0.1, rdLambda: 0.5)
        let config = ModelConfig(type: .codec2D, channels: 3, J: 1, Nd: 32, latentDim: 5, latentBits: 10,
                                 lightweightEncode: true, linearSkip: true, rate: rate, refineLatents: true)
        var plainConfig = config
        plainConfig.rate?.rdLambda = 0
        let codec = try Codec(config: config, seed: 12), plain = try Codec(config: plainConfig, seed: 12)
        let x = random([1, 3, 16, 16], seed: 13)
        let signal = x.reshaped([3, 16, 16])
        var differs = false
        for q in [3, 40, 90] {
            let c = try codec.withQuality(q)
            let train = try codec.lossAndGradients(batch: x, quantization: .qualities([Float(q)]), objective: TrainingObjective()).0
            let eval = try c.evaluationLosses(x)
            // What a file holds: the encoder's real latents through the rate-distortion quantiser.
            let levels = try RateDistortionQuantizer.quantize(try c.encode(signal, rounded: false), bits: 10, lambda: 0.5,
                                                             initialDeadzone: 0.1)
            let xHat = try c.synthesis(c.decodeBands(levels.reshaped([1] + levels.shape)))
            let fileMSE = zip(xHat.scalars, x.scalars).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Float(x.count)
            #expect(abs(train.mse - fileMSE) <= 1e-5 * fileMSE && abs(eval.mse - fileMSE) <= 1e-5 * fileMSE, "q\(q): \(train.mse), \(eval.mse), \(fileMSE)")
            let plainTrain = try plain.lossAndGradients(batch: x, quantization: .qualities([Float(q)]), objective: TrainingObjective()).0
            differs = differs || plainTrain.mse != train.mse
        }
        #expect(differs)
    }

    @Test("Spectral envelope: bands grouped by frequency (inverse Gray code), levels in dB steps over a clipped window")
    func envelope() throws {
        #expect((0..<8).map(SpectralEnvelope.inverseGray) == [0, 1, 3, 2, 7, 6, 4, 5])
        let e = SpectralEnvelope(config: EnvelopeConfig(groups: 4, window: 4, stepDB: 3, firstBand: 4), channels: 1, bandsPerChannel: 32)
        #expect(e.groupSizes.reduce(0, +) == 32 && e.groupSizes[0] == 4)
        // Energy 1 in band 0 (group 0) over positions 0..<6, nothing elsewhere.
        var x = Tensor(zeros: [1, 32, 10])
        for t in 0..<6 { x.scalars[t] = 1 }
        let v = e.values(x)
        #expect(v.shape == [1, 4, 12])
        // Group 0 holds 4 bands: mean square 1/4 = -6.02 dB -> -2 steps of 3 dB where the window is inside the burst.
        #expect(v.scalars[1 + 2] == -2)  // position 2: window 0..<4
        #expect(v.scalars[0] == v.scalars[1])  // the padding slot repeats its neighbour
        #expect(v.scalars[12 + 5] == (Float(10 * log10(1e-10)) / 3).rounded())  // silent group: the floor
        // Position 6: window 4..<8 holds 2 burst positions -> mean square 1/8 -> -9.03 dB -> -3 steps.
        #expect(v.scalars[1 + 6] == -3)
    }

    @Test("Variable-rate Codec1D with the log-mel term: decoder gradients match finite differences")
    func codec1DGradients() throws {
        let rate = RateConfig(maxStep: 1, minStep: 0.02, defaultQuality: 50, stepScaledOutput: true)
        let config = ModelConfig(type: .codec1D, channels: 2, J: 2, Nd: 8, latentDim: 4, latentBits: 10,
                                 lightweightEncode: true, postFilter: false, linearSkip: true, rate: rate,
                                 envelope: EnvelopeConfig(groups: 2, window: 8, stepDB: 1.5, firstBand: 1))
        let codec = try Codec(config: config, seed: 9)
        let x = random([2, 2, 256], seed: 11)
        let quantization = TrainingQuantization.qualities([10, 90])
        let objective = TrainingObjective(distortion: .logMSE, spectral: SpectralLoss(weight: 0.5, fftSizes: [64], sampleRate: 8000, mels: 16))
        let (losses, grads) = try codec.lossAndGradients(batch: x, quantization: quantization, objective: objective)
        #expect(losses.spectral > 0)
        for name in ["skip.weight", "decoder.1.conv1.weight_v", "decoder.1.conv2.weight_v"] {
            let g = try #require(grads[name])
            let i = g.scalars.indices.max { abs(g.scalars[$0]) < abs(g.scalars[$1]) }!
            func loss(_ e: Float) throws -> Double {
                var m = codec
                m.visitParameters(prefix: "") { n, t in if n == name { t.scalars[i] += e } }
                m.parametersDidChange()
                return Double(try m.lossAndGradients(batch: x, quantization: quantization, objective: objective).0.loss)
            }
            let numeric = (try loss(3e-3) - loss(-3e-3)) / 6e-3
            #expect(abs(numeric - Double(g.scalars[i])) <= 5e-2 * abs(numeric) + 1e-4, "\(name)[\(i)]: \(numeric) vs \(g.scalars[i])")
        }
    }
}
