import COpus
import COpusShims
import CSampleRate
import Foundation
import WallocTensor

/// The Opus baseline: libopusenc encodes (VBR at a target bitrate), libopusfile decodes (always
/// at 48 kHz), libsamplerate brings the result back to the input's rate.
enum OpusCodec {
    static func roundTrip(_ samples: Tensor, sampleRate: Int, kbps: Int) throws -> (data: Data, decoded: Tensor, encodeSeconds: Double, decodeSeconds: Double) {
        guard samples.rank == 2, samples.shape[1] > 0 else { throw WallocError("opus: expected [C, L] samples, got \(samples.shape)") }
        let c = samples.shape[0], l = samples.shape[1]
        guard (1...8).contains(c) else { throw WallocError("opus: 1 to 8 channels, got \(c)") }
        guard (8000...192_000).contains(sampleRate) else { throw WallocError("opus: sample rate \(sampleRate) Hz is outside 8-192 kHz") }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let data = try encode(interleave(samples), channels: c, frames: l, sampleRate: sampleRate, bitrate: kbps * 1000)
        let t1 = DispatchTime.now().uptimeNanoseconds
        let decoded48k = try decode(data, channels: c)
        let resampled = try resample(decoded48k, channels: c, from: 48_000, to: sampleRate)
        let decoded = try AudioBaseline.fit(deinterleave(resampled, channels: c), to: samples.shape)
        let t2 = DispatchTime.now().uptimeNanoseconds
        return (data, decoded, Double(t1 - t0) / 1e9, Double(t2 - t1) / 1e9)
    }

    static func encode(_ pcm: [Float], channels: Int, frames: Int, sampleRate: Int, bitrate: Int) throws -> Data {
        var out: UnsafeMutablePointer<UInt8>?
        var length = 0
        let status = pcm.withUnsafeBufferPointer { p in
            walloc_opus_encode(p.baseAddress, Int32(frames), Int32(channels), Int32(sampleRate), Int32(bitrate), &out, &length)
        }
        guard status == 0, let out else { throw WallocError("opus: encoding failed (libopusenc error \(status))") }
        defer { walloc_opus_free(out) }
        return Data(bytes: out, count: length)
    }

    /// Interleaved 48 kHz samples.
    static func decode(_ data: Data, channels: Int) throws -> [Float] {
        var bytes = [UInt8](data)
        var error: Int32 = 0
        guard let file = bytes.withUnsafeMutableBufferPointer({ op_open_memory($0.baseAddress, $0.count, &error) }) else {
            throw WallocError("opus: cannot open the stream (libopusfile error \(error))")
        }
        defer { op_free(file) }
        guard Int(op_channel_count(file, -1)) == channels else { throw WallocError("opus: decoded channel count differs") }
        var pcm = [Float]()
        var buffer = [Float](repeating: 0, count: 5760 * channels)
        while true {
            let n = buffer.withUnsafeMutableBufferPointer { op_read_float(file, $0.baseAddress, Int32($0.count), nil) }
            if n == 0 { break }
            guard n > 0 else { throw WallocError("opus: decoding failed (libopusfile error \(n))") }
            pcm.append(contentsOf: buffer[0..<(Int(n) * channels)])
        }
        return pcm
    }

    /// Interleaved samples from one rate to another (libsamplerate, best sinc).
    static func resample(_ pcm: [Float], channels: Int, from: Int, to: Int) throws -> [Float] {
        if from == to { return pcm }
        let frames = pcm.count / channels
        let ratio = Double(to) / Double(from)
        let capacity = Int((Double(frames) * ratio).rounded(.up)) + 16
        var out = [Float](repeating: 0, count: capacity * channels)
        let status: Int32 = pcm.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var job = SRC_DATA()
                job.data_in = src.baseAddress
                job.data_out = dst.baseAddress
                job.input_frames = frames
                job.output_frames = capacity
                job.src_ratio = ratio
                let r = src_simple(&job, Int32(SRC_SINC_BEST_QUALITY), Int32(channels))
                return r == 0 ? Int32(job.output_frames_gen) : -r - 1
            }
        }
        guard status >= 0 else { throw WallocError("opus: resampling failed (libsamplerate error \(-status - 1))") }
        return Array(out[0..<(Int(status) * channels)])
    }

    static func interleave(_ x: Tensor) -> [Float] {
        let c = x.shape[0], l = x.shape[1]
        var out = [Float](repeating: 0, count: c * l)
        for ch in 0..<c { for i in 0..<l { out[i * c + ch] = x.scalars[ch * l + i] } }
        return out
    }

    static func deinterleave(_ pcm: [Float], channels c: Int) -> Tensor {
        let l = pcm.count / c
        var out = Tensor(zeros: [c, l])
        for ch in 0..<c { for i in 0..<l { out.scalars[ch * l + i] = pcm[i * c + ch] } }
        return out
    }
}
