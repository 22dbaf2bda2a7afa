import Foundation
import Walloc

/// The audio task: one spoken word (espeak-ng, random accent, voice variant, rate and pitch)
/// placed at a random time in a stereo clip of background music (Wesnoth tracks the default
/// audio model held out), at a random speech-to-music ratio; the class is the word.
struct SpeechDataset {
    var seconds = 1.0
    var sampleRate = 44100
    /// Words that differ in one consonant: what tells them apart lies mostly above 1.4 kHz.
    var words = ["sip", "ship", "chip", "tip", "dip", "zip", "lip", "nip", "hip", "kip"]
    var minSNR = -3.0, maxSNR = 9.0
    var seed: UInt64 = 1
    var music = "/usr/share/games/wesnoth/1.16/data/core/music"
    static let musicTracks = ["heroes_rite", "knolls", "the_deep_path", "wanderer"]
    static let accents = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]

    /// espeak-ng's voice variants (`espeak-ng --voices=variant`).
    static func variants() throws -> [String] {
        let text = try run("espeak-ng", ["--voices=variant"]).output
        let names = text.split(separator: "\n").dropFirst().compactMap { line -> String? in
            guard let file = line.split(separator: " ", omittingEmptySubsequences: true).first(where: { $0.hasPrefix("!v/") }) else { return nil }
            return String(file.dropFirst(3))
        }
        guard !names.isEmpty else { throw WallocError("espeak-ng lists no voice variants") }
        return names.sorted()
    }

    @discardableResult
    static func run(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [program] + arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch {
            throw WallocError("cannot run \(program) (\(error.localizedDescription)); install espeak-ng (scripts/install-deps.sh --experiments)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw WallocError("\(program) \(arguments.joined(separator: " ")) failed (status \(p.terminationStatus)); is espeak-ng installed? (scripts/install-deps.sh --experiments)")
        }
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Writes `OUT/train/<word>/<n>.flac` and `OUT/test/<word>/<n>.flac` (16-bit stereo). Training
    /// clips take their music from the first 70% of each track, test clips from the rest.
    func generate(out: URL, train: Int, test: Int, progress: (Int, Int) -> Void) throws {
        let variants = try SpeechDataset.variants()
        let tracks = SpeechDataset.musicTracks.map { URL(fileURLWithPath: music + "/" + $0 + ".ogg") }
        for t in tracks where !FileManager.default.fileExists(atPath: t.path) {
            throw WallocError("\(t.path): missing; install wesnoth-1.16-music (scripts/install-deps.sh --experiments)")
        }
        let frames = try tracks.map { try AudioReader(url: $0).frames }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("walloc-speech-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        for split in ["train", "test"] {
            for w in words { try FileManager.default.createDirectory(at: out.appendingPathComponent(split).appendingPathComponent(w), withIntermediateDirectories: true) }
        }
        let length = Int((seconds * Double(sampleRate)).rounded())
        let total = train + test
        var done = 0
        for (split, count, tag) in [("train", train, UInt64(1)), ("test", test, UInt64(2))] {
            let workers = max(1, Threading.count)
            var start = 0
            while start < count {
                let chunk = min(count - start, 32 * workers)
                var errors = [Error?](repeating: nil, count: workers)
                errors.withUnsafeMutableBufferPointer { eb in
                    parallelFor(workers) { w in
                        do {
                            let lo = start + w * chunk / workers, hi = start + (w + 1) * chunk / workers
                            for i in lo..<hi {
                                var rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ tag &* 0x1_0000_0001 &+ UInt64(i))
                                let label = rng.below(words.count)
                                let voice = SpeechDataset.accents[rng.below(SpeechDataset.accents.count)] + "+" + variants[rng.below(variants.count)]
                                let rate = 120 + rng.below(101), pitch = 20 + rng.below(61)
                                let wav = scratch.appendingPathComponent("\(split)-\(i).wav")
                                try SpeechDataset.run("espeak-ng", ["-v", voice, "-s", String(rate), "-p", String(pitch), "-w", wav.path, words[label]])
                                let speech = try AudioIO.read(wav)
                                try? FileManager.default.removeItem(at: wav)
                                let track = rng.below(tracks.count)
                                let n = frames[track]
                                let (lo, hi) = split == "train" ? (0, Int(Double(n) * 0.7) - length) : (Int(Double(n) * 0.7), n - length)
                                let at = lo + rng.below(max(1, hi - lo))
                                let clip = try Threading.serially {
                                    let reader = try AudioReader(url: tracks[track])
                                    try reader.seek(frame: at)
                                    return mix(speech: speech, music: try reader.read(frames: length), length: length, rng: &rng)
                                }
                                let url = out.appendingPathComponent(split).appendingPathComponent(words[label]).appendingPathComponent(String(format: "%06d.flac", i))
                                try AudioIO.write(clip, sampleRate: sampleRate, to: url, bitDepth: 16)
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

    /// Speech trimmed of silence, resampled to the clip rate, panned and placed at a random time
    /// over the music at a random speech-to-music ratio; peak at 0.9.
    func mix(speech: Audio, music: Tensor, length: Int, rng: inout SplitMix64) -> Tensor {
        var s = Array(speech.samples.scalars.prefix(speech.frames))
        let peak = s.map(abs).max() ?? 0
        if let first = s.firstIndex(where: { abs($0) > 0.02 * peak }), let last = s.lastIndex(where: { abs($0) > 0.02 * peak }) {
            s = Array(s[first...last])
        }
        if speech.sampleRate != sampleRate {
            s = SpeechDataset.resample(s, from: speech.sampleRate, to: sampleRate)
        }
        if s.count > length { s = Array(s.prefix(length)) }
        let offset = rng.below(length - s.count + 1)
        let m = music.shape[0] == 1 ? Tensor(shape: [2, length], scalars: music.scalars + music.scalars) : music
        func rms(_ v: ArraySlice<Float>) -> Double { (v.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(1, v.count))).squareRoot() }
        let speechRMS = rms(s[...]), musicRMS = rms(m.scalars[0..<(2 * length)])
        let snr = minSNR + Double(rng.uniform()) * (maxSNR - minSNR)
        let gain = speechRMS > 0 ? Float(max(musicRMS, 1e-4) * pow(10, snr / 20) / speechRMS) : 0
        let theta = Float.pi / 8 + rng.uniform() * Float.pi / 4
        let pan = [cos(theta) * Float(2).squareRoot(), sin(theta) * Float(2).squareRoot()]
        var out = Tensor(zeros: [2, length])
        for c in 0..<2 {
            for t in 0..<length { out.scalars[c * length + t] = m.scalars[c * length + t] }
            for (t, v) in s.enumerated() { out.scalars[c * length + offset + t] += gain * pan[c] * v }
        }
        let top = out.scalars.map(abs).max() ?? 0
        if top > 0 { for i in 0..<out.count { out.scalars[i] *= 0.9 / top } }
        return out
    }

    /// Band-limited interpolation (Hann-windowed sinc, 16 zero crossings) from one rate to a higher one.
    static func resample(_ x: [Float], from: Int, to: Int) -> [Float] {
        let n = Int((Double(x.count) * Double(to) / Double(from)).rounded())
        let step = Double(from) / Double(to), zeros = 16
        var out = [Float](repeating: 0, count: n)
        var a = from, b = to
        while b != 0 { (a, b) = (b, a % b) }
        let period = to / a
        var cache = [Int: [Float]]()
        for j in 0..<n {
            let t = Double(j) * step
            let base = Int(t.rounded(.down))
            let phase = j % period
            if cache[phase] == nil {
                let frac = t - Double(base)
                cache[phase] = (-zeros...zeros).map { k in
                    let u = Double(k) - frac
                    let sinc = u == 0 ? 1 : sin(Double.pi * u) / (Double.pi * u)
                    let w = abs(u) < Double(zeros) ? 0.5 * (1 + cos(Double.pi * u / Double(zeros))) : 0
                    return Float(sinc * w)
                }
            }
            let w = cache[phase]!
            var s: Float = 0
            for (i, k) in (-zeros...zeros).enumerated() {
                let idx = base + k
                if idx >= 0 && idx < x.count { s += w[i] * x[idx] }
            }
            out[j] = s
        }
        return out
    }
}
