import Foundation
import Testing
import Walloc

/// Files through the whole pipeline (prepare, encode, entropy-code, container, and back).
@Suite("Compression round trips")
struct RoundTripTests {
    static func compressor(_ path: String) throws -> Compressor {
        try Compressor.load(modelDirectory: Fixtures.root.appendingPathComponent(path))
    }

    /// Smooth image samples in [0, 1] with some texture, `[C, H, W]`.
    static func pixels(channels: Int, height: Int, width: Int, seed: UInt64) -> Tensor {
        let noise = randomTensor([channels, height, width], seed: seed)
        var t = Tensor(zeros: [channels, height, width])
        for c in 0..<channels {
            for y in 0..<height {
                for x in 0..<width {
                    let i = (c * height + y) * width + x
                    t.scalars[i] = min(1, max(0, 0.5 + 0.3 * sin(Float(x + 3 * c) / 7) * cos(Float(y) / 5) + 0.1 * noise.scalars[i]))
                }
            }
        }
        return t
    }

    /// What the codec alone gives: pad, encode, decode, crop.
    static func direct(_ codec: Codec, _ signal: Tensor) throws -> Tensor {
        let (padded, padding) = SignalPreparation.padToMultiple(signal, multiple: codec.config.downsampling)
        return SignalPreparation.crop(try codec.decode(try codec.encode(padded)), padding: padding)
    }

    @Test("Images of odd sizes, 1 to 5 channels, 8 and 16 bits: the bitstream adds no loss, all codings agree",
          arguments: [("reference/codec2d_light", 3, 8), ("reference/linear2d_gray", 1, 16), ("generated/codec2d_gray_j1", 1, 8),
                      ("generated/codec2d_5ch_full", 5, 16), ("generated/codec2d_rgb_j4", 3, 16), ("generated/linear2d_rgba_j3", 4, 8)])
    func images(model: String, channels: Int, bits: Int) throws {
        var c = try Self.compressor(model)
        for (h, w) in [(37, 53), (16, 16), (3, 70)] {
            let x = Self.pixels(channels: channels, height: h, width: w, seed: UInt64(h * w))
            // Through a real file of the right kind.
            let dir = try Fixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let url = dir.appendingPathComponent(channels <= 4 ? "x.png" : "x.tiff")
            try ImageIO.write(x, to: url, bitDepth: bits)
            let image = try ImageIO.read(url)
            #expect(image.bitDepth == bits)
            let expected = try Self.direct(c.codec, SignalPreparation.imageToSignal(image.pixels))
            var decodedByCoding = [Tensor]()
            let codings: [WLCHeader.Coding] = c.codec.config.latentBits <= 8 && c.codec.config.latentDim > 1 ? [.rans, .webp, .png] : [.rans]
            for coding in codings {
                c.coding = coding
                let (file, dropped) = try c.compress(image: image)
                #expect(!dropped)
                let bytes = file.encode()
                guard case .image(let out, let depth) = try c.decompress(try WLCFile.decode(bytes)) else {
                    Issue.record("not an image"); continue
                }
                #expect(depth == bits && out.shape == [channels, h, w], "\(model) \(h)x\(w) \(coding)")
                let signal = SignalPreparation.imageToSignal(out)
                #expect(signal.maxAbsDifference(expected.map { min(max($0, -0.5), 0.5) }) < 1e-5, "\(model) \(h)x\(w) \(coding)")
                decodedByCoding.append(out)
            }
            #expect(decodedByCoding.allSatisfy { $0 == decodedByCoding[0] })
        }
    }

    @Test("Audio: WAV, FLAC and OGG, mono to 6 channels, shorter than 2^J to several pieces long; levels restored",
          arguments: [("reference/codec1d_light", "wav"), ("generated/codec1d_mono_j2", "flac"), ("generated/codec1d_6ch_full", "wav"),
                      ("reference/codec1d_full", "ogg")])
    func audio(model: String, ext: String) throws {
        let c = try Self.compressor(model)
        let channels = c.codec.config.channels, f = c.codec.config.downsampling
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for length in [f / 2 + 1, 5 * f + 3, 9000 * f / 8 + 17] {
            var x = StreamingTests.signal(channels: channels, length: length, seed: UInt64(length))
            x = x.map { 0.3 * $0 + 0.05 }  // a level and a DC offset to restore
            let url = dir.appendingPathComponent("clip.\(ext)")
            try? FileManager.default.removeItem(at: url)
            try AudioIO.write(x, sampleRate: 22_050, to: url, bitDepth: ext == "flac" ? 24 : 16)
            let audio = try AudioIO.read(url)
            // Streaming from the file equals compressing it in memory.
            let fromFile = try c.compress(audioFile: url, chunk: 50)
            let inMemory = try c.compress(audio: audio)
            #expect(fromFile.header == inMemory.header, "\(model) \(length)")
            let a = try c.latents(of: fromFile), b = try c.latents(of: inMemory)
            #expect(zip(a.scalars, b.scalars).filter { $0 != $1 }.count <= max(1, a.count / 1000))
            #expect(fromFile.header.sampleRate == 22_050 && fromFile.header.originalShape == [channels, length])
            // Decoding to a file equals decoding in memory, at the original level.
            guard case .audio(let samples, let rate, _) = try c.decompress(inMemory) else { Issue.record("not audio"); continue }
            #expect(rate == 22_050 && samples.shape == [channels, length])
            let level = SignalPreparation.audioLevel(of: audio.samples)
            let expected = SignalPreparation.denormalize(try Self.direct(c.codec, SignalPreparation.normalize(audio.samples, level)), level)
            #expect(samples.maxAbsDifference(expected) < 1e-3 / level.gain, "\(model) \(length)")
            let out = dir.appendingPathComponent("out.wav")
            try? FileManager.default.removeItem(at: out)
            try c.decompress(inMemory, toAudioFile: out, bitDepth: 32, chunk: 70)
            let written = try AudioIO.read(out)
            #expect(written.samples.shape == [channels, length])
            #expect(written.samples.maxAbsDifference(samples) < 1e-3 / level.gain, "\(model) \(length)")
        }
    }

    @Test("Images with alpha into an RGB model drop it; grey goes through it; other channel counts are refused")
    func channelPolicy() throws {
        let c = try Self.compressor("reference/codec2d_light")
        let rgba = Image(pixels: Self.pixels(channels: 4, height: 16, width: 16, seed: 1), bitDepth: 8, isFloat: false, format: .png)
        #expect(try c.compress(image: rgba).droppedAlpha)
        let grey = Image(pixels: Self.pixels(channels: 1, height: 16, width: 16, seed: 1), bitDepth: 8, isFloat: false, format: .png)
        guard case .image(let decoded, _) = try c.decompress(try c.compress(image: grey).file) else { Issue.record("not an image"); return }
        #expect(decoded.shape == [1, 16, 16])
        let five = Image(pixels: Self.pixels(channels: 5, height: 16, width: 16, seed: 1), bitDepth: 8, isFloat: false, format: .tiff)
        #expect(throws: WallocError("the image has 5 channel(s), the model takes 3")) { try c.compress(image: five) }
        let grey2 = try Self.compressor("reference/linear2d_gray")
        #expect(throws: WallocError("the image has 3 channel(s), the model takes 1")) {
            try grey2.compress(image: Image(pixels: Self.pixels(channels: 3, height: 16, width: 16, seed: 1), bitDepth: 8, isFloat: false, format: .png))
        }
        let audio = try Self.compressor("reference/codec1d_light")
        #expect(throws: WallocError.self) { try audio.compress(image: rgba) }
    }

    @Test("Thousands of corrupted files through the decoder: every one rejected, none crashes")
    func corruptedStreams() throws {
        let c = try Self.compressor("reference/codec2d_light")
        let image = Image(pixels: Self.pixels(channels: 3, height: 45, width: 61, seed: 5), bitDepth: 8, isFloat: false, format: .png)
        let good = try c.compress(image: image).file
        let bytes = [UInt8](good.encode())
        var rng = SplitMix64(seed: 42)
        var rejected = 0
        let trials = 3000
        for trial in 0..<trials {
            var bad = bytes
            switch trial % 5 {
            case 0: bad = Array(bad.prefix(rng.below(bad.count)))
            case 1: bad[rng.below(bad.count)] ^= UInt8(1 << rng.below(8))
            case 2:
                for _ in 0...rng.below(8) { let i = rng.below(bad.count); bad[i] = bad[i] &+ UInt8(1 + rng.below(255)) }
            case 3: bad += (0..<(1 + rng.below(16))).map { _ in UInt8(rng.below(256)) }
            default:
                // Valid checksums around absurd or inconsistent headers.
                var f = good
                switch rng.below(4) {
                case 0: f.header.latentShape = [12, 1 + rng.below(1 << 20), 1 + rng.below(1 << 20)]
                case 1: f.header.originalShape = [3, 1 + rng.below(1 << 24), 1 + rng.below(1 << 24)]
                case 2: f.header.paddingBefore = [rng.below(1 << 20), 0]
                default: f.header.latentBits = 1 + rng.below(16); f.header.latentBits = f.header.latentBits == 8 ? 9 : f.header.latentBits
                }
                bad = [UInt8](f.encode())
            }
            do {
                _ = try c.decompress(try WLCFile.decode(Data(bad)))
                Issue.record("trial \(trial): a corrupted file decoded")
            } catch let e as WallocError {
                #expect(!e.message.isEmpty)
                rejected += 1
            }
        }
        #expect(rejected == trials)
    }
}

extension Tensor {
    func map(_ f: (Float) -> Float) -> Tensor { Tensor(shape: shape, scalars: scalars.map(f)) }
}
