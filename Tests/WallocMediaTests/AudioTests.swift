import Foundation
import Testing
import Walloc

@Suite("Audio I/O")
struct AudioTests {
    static let losslessCases: [(AudioFormat, Int)] = [(.wav, 16), (.wav, 24), (.wav, 32), (.flac, 16), (.flac, 24)]

    @Test("WAV 16/24/float and FLAC 16/24 are exact on the quantisation grid",
          arguments: losslessCases, [(1, 8000), (2, 44100), (6, 48000), (2, 8000), (6, 44100)])
    func lossless(encoding: (format: AudioFormat, bits: Int), layout: (channels: Int, rate: Int)) throws {
        let folder = try TemporaryFolder()
        let samples = MediaFixtures.quantizedAudio(channels: layout.channels, frames: 1001,
                                                   bits: encoding.bits == 32 ? 24 : encoding.bits)
        let url = folder.file("audio.\(encoding.format.rawValue)")
        try AudioIO.write(samples, sampleRate: layout.rate, to: url, bitDepth: encoding.bits)
        let audio = try AudioIO.read(url)
        #expect(audio.sampleRate == layout.rate)
        #expect(audio.samples.shape == [layout.channels, 1001])
        #expect(audio.samples == samples)
        #expect(try folder.contents() == [url.lastPathComponent])
    }

    @Test("Integer encodings round and clamp; float WAV keeps values outside [-1, 1]")
    func conversions() throws {
        let folder = try TemporaryFolder()
        let samples = Tensor(shape: [1, 6], scalars: [1.5, -2, .nan, 0.25 / 32768, 0.75 / 32768, -1])
        try AudioIO.write(samples, sampleRate: 8000, to: folder.file("a.wav"))
        #expect(try AudioIO.read(folder.file("a.wav")).samples.scalars == [32767 / 32768, -1, 0, 0, 1 / 32768, -1])
        let loud = Tensor(shape: [2, 2], scalars: [1.5, -3, 0.125, 1e-7])
        try AudioIO.write(loud, sampleRate: 8000, to: folder.file("f.wav"), bitDepth: 32)
        #expect(try AudioIO.read(folder.file("f.wav")).samples == loud)
        // A mono [L] tensor is accepted.
        try AudioIO.write(Tensor(shape: [3], scalars: [0.5, -0.5, 0]), sampleRate: 8000, to: folder.file("m.flac"))
        #expect(try AudioIO.read(folder.file("m.flac")).samples == Tensor(shape: [1, 3], scalars: [0.5, -0.5, 0]))
    }

    @Test("OGG/Vorbis keeps tones above 15 dB SNR", arguments: [(1, 8000), (2, 44100), (6, 48000)])
    func ogg(layout: (channels: Int, rate: Int)) throws {
        let folder = try TemporaryFolder()
        let frames = layout.rate / 2
        let samples = MediaFixtures.tones(channels: layout.channels, frames: frames, sampleRate: layout.rate)
        let url = folder.file("audio.ogg")
        try AudioIO.write(samples, sampleRate: layout.rate, to: url, quality: 0.8)
        let audio = try AudioIO.read(url)
        #expect(audio.sampleRate == layout.rate)
        #expect(audio.samples.shape == [layout.channels, frames])
        // Vorbis treats the 6th of 6 channels as LFE (low-passed), so it is left out of the bound.
        for c in 0..<min(layout.channels, 5) {
            #expect(snr(samples.slice(c), audio.samples.slice(c)) > 15, "channel \(c)")
        }
    }

    @Test("Streaming writer and reader equal whole-file I/O", arguments: [AudioFormat.wav, .flac, .ogg])
    func streaming(format: AudioFormat) throws {
        let folder = try TemporaryFolder()
        let samples = MediaFixtures.quantizedAudio(channels: 3, frames: 70_001, bits: 16)
        let whole = folder.file("whole.\(format.rawValue)"), streamed = folder.file("streamed.\(format.rawValue)")
        try AudioIO.write(samples, sampleRate: 44100, to: whole)

        let writer = try AudioWriter(url: streamed, channels: 3, sampleRate: 44100)
        var start = 0
        for size in [1, 999, 0, 40_000, 65_536] {
            let n = min(size, 70_001 - start)
            try writer.write(slice(samples, start, n))
            start += n
        }
        try writer.write(slice(samples, start, 70_001 - start))
        #expect(writer.framesWritten == 70_001)
        #expect(try !folder.contents().contains(streamed.lastPathComponent)) // not before finish()
        try writer.finish()
        expectWallocError { try writer.write(samples) }
        expectWallocError { try writer.finish() }

        let reference = try AudioIO.read(streamed)
        let wholeFile = try AudioIO.read(whole)
        if format == .ogg { // the Vorbis encoder output depends on how the input was chunked
            #expect(snr(wholeFile.samples, reference.samples) > 15)
        } else {
            #expect(reference.samples == wholeFile.samples)
            #expect(reference.samples == samples)
        }

        let reader = try AudioReader(url: streamed)
        #expect(reader.channels == 3 && reader.sampleRate == 44100 && reader.frames == 70_001)
        var pieces: [Tensor] = []
        while true {
            let piece = try reader.read(frames: 30_000)
            if piece.shape[1] == 0 { break }
            pieces.append(piece)
        }
        #expect(pieces.map { $0.shape[1] } == [30_000, 30_000, 10_001])
        var joined = [Float]()
        for c in 0..<3 { for p in pieces { joined += p.slice(c).scalars } }
        #expect(Tensor(shape: [3, 70_001], scalars: joined) == reference.samples)

        try reader.seek(frame: 12_345)
        #expect(try reader.read(frames: 100) == slice(reference.samples, 12_345, 100))
        try reader.seek(frame: 70_001)
        #expect(try reader.read(frames: 10).shape == [3, 0])
        expectWallocError { try reader.seek(frame: 70_002) }
        expectWallocError { try reader.seek(frame: -1) }
    }

    @Test("A writer released without finish() leaves nothing behind")
    func abandonedWriter() throws {
        let folder = try TemporaryFolder()
        do {
            let writer = try AudioWriter(url: folder.file("x.wav"), channels: 2, sampleRate: 8000)
            try writer.write(Tensor(zeros: [2, 100]))
            #expect(try folder.contents().isEmpty) // an unnamed O_TMPFILE file until finish()
            expectWallocError { try writer.write(Tensor(zeros: [3, 100])) }
        }
        #expect(try folder.contents().isEmpty)
    }

    @Test("Wrong extensions, bit depths and layouts are rejected and leave no file")
    func badRequests() throws {
        let folder = try TemporaryFolder()
        let samples = Tensor(zeros: [2, 10])
        expectWallocError { try AudioIO.write(samples, sampleRate: 8000, to: folder.file("x.mp3")) }
        expectWallocError { _ = try AudioFormat(fileExtension: "aiff") }
        #expect(try AudioFormat(fileExtension: ".FLAC") == .flac)
        expectWallocError { try AudioIO.write(samples, sampleRate: 8000, to: folder.file("x.wav"), bitDepth: 8) }
        expectWallocError { try AudioIO.write(samples, sampleRate: 8000, to: folder.file("x.flac"), bitDepth: 32) }
        expectWallocError { try AudioIO.write(samples, sampleRate: 8000, to: folder.file("x.wav"), quality: 0.5) }
        expectWallocError { try AudioIO.write(samples, sampleRate: 8000, to: folder.file("x.ogg"), quality: 2) }
        expectWallocError { try AudioIO.write(samples, sampleRate: 0, to: folder.file("x.wav")) }
        expectWallocError { try AudioIO.write(Tensor(zeros: [9, 10]), sampleRate: 8000, to: folder.file("x.flac")) }
        expectWallocError { try AudioIO.write(Tensor(zeros: [2, 2, 2]), sampleRate: 8000, to: folder.file("x.wav")) }
        expectWallocError { try AudioIO.write(samples, sampleRate: 8000, to: folder.file("missing/x.wav")) }
        #expect(try folder.contents().isEmpty)
        expectWallocError { _ = try AudioIO.read(folder.file("missing.wav")) }
        expectWallocError { _ = try AudioIO.read(folder.url) }
    }

    @Test("Corrupt and truncated audio files give a WallocError", arguments: [AudioFormat.wav, .flac, .ogg])
    func corrupt(format: AudioFormat) throws {
        let folder = try TemporaryFolder()
        let url = folder.file("good.\(format.rawValue)")
        try AudioIO.write(MediaFixtures.tones(channels: 2, frames: 20_000, sampleRate: 16000), sampleRate: 16000, to: url)
        let data = try Data(contentsOf: url)
        let bad = folder.file("bad.\(format.rawValue)")
        // Cuts inside the header are always errors.
        for cut in [0, 1, 4, 11, 20, 30] {
            try data.prefix(cut).write(to: bad)
            expectWallocError { _ = try AudioIO.read(bad) }
        }
        // Cuts inside the data: an error, or (WAV, whose header libsndfile corrects to the file
        // size) fewer frames; never a crash.
        for cut in [data.count / 3, data.count / 2, data.count - 7] {
            try data.prefix(cut).write(to: bad)
            do {
                let audio = try AudioIO.read(bad)
                #expect(format == .wav && audio.frames < 20_000)
            } catch is WallocError {}
        }
        var rng = SeededGenerator(seed: 7)
        for size in [16, 200, 5000] {
            try Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }).write(to: bad)
            expectWallocError { _ = try AudioIO.read(bad) }
        }
    }

    func slice(_ t: Tensor, _ start: Int, _ count: Int) -> Tensor {
        let (c, l) = (t.shape[0], t.shape[1])
        var out = [Float]()
        for ch in 0..<c { out += t.scalars[(ch * l + start)..<(ch * l + start + count)] }
        return Tensor(shape: [c, count], scalars: out)
    }
}
