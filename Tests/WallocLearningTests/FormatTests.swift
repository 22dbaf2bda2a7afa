import Foundation
import Testing
import Walloc

@Suite("Safetensors integer types, audio resampling, serial kernels")
struct FormatTests {
    @Test("integer tensors are written in their type, byte for byte as the format lays them out, and read back")
    func integers() throws {
        let file = Safetensors(
            tensors: ["a": Tensor(shape: [2, 2], scalars: [-128, 127, 0, -1]), "b": Tensor(shape: [3], scalars: [-32768, 300, 32767]),
                      "c": Tensor(shape: [2], scalars: [-5, 16_000_000]), "d": Tensor(shape: [2], scalars: [0, 255]),
                      "e": Tensor(shape: [1], scalars: [1.5]), "f": Tensor(shape: [1], scalars: [-7])],
            dtypes: ["a": .i8, "b": .i16, "c": .i64, "d": .u8, "f": .i32],
            metadata: ["names": #"["x","y"]"#])
        let data = try file.encode()
        // Header: 8-byte length, JSON, padded with spaces so the data starts 8-byte aligned.
        let n = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        #expect((8 + n) % 8 == 0)
        let header = String(decoding: data[8..<(8 + n)], as: UTF8.self)
        #expect(header.hasPrefix(#"{"__metadata__":{"names":"[\"x\",\"y\"]"},"a":{"dtype":"I8","shape":[2,2],"data_offsets":[0,4]},"#))
        #expect(header.contains(#""b":{"dtype":"I16","shape":[3],"data_offsets":[4,10]}"#))
        #expect(header.contains(#""c":{"dtype":"I64","shape":[2],"data_offsets":[10,26]}"#))
        #expect(header.contains(#""d":{"dtype":"U8","shape":[2],"data_offsets":[26,28]}"#))
        #expect(header.contains(#""e":{"dtype":"F32","shape":[1],"data_offsets":[28,32]}"#))
        #expect(header.contains(#""f":{"dtype":"I32","shape":[1],"data_offsets":[32,36]}"#))
        #expect(data.count == 8 + n + 36)
        let body = Array(data[(8 + n)...])
        #expect(Array(body[0..<4]) == [0x80, 0x7F, 0x00, 0xFF])
        #expect(Array(body[4..<10]) == [0x00, 0x80, 0x2C, 0x01, 0xFF, 0x7F])
        #expect(Array(body[10..<18]) == [0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(Array(body[26..<28]) == [0, 255])
        let back = try Safetensors.decode(data)
        #expect(back.tensors == file.tensors)
        #expect(back.dtypes == ["a": .i8, "b": .i16, "c": .i64, "d": .u8, "e": .f32, "f": .i32])
        #expect(back.metadata == file.metadata)
        // Reading only the header.
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("x.safetensors")
        try data.write(to: url)
        let h = try Safetensors.readHeader(url)
        #expect(h.dataStart == 8 + n && h.entries["c"] == .init(dtype: .i64, shape: [2], offsets: 10..<26) && h.metadata["names"] == #"["x","y"]"#)
        // Reading the file (each tensor straight from the file) gives what decoding its bytes gives.
        let read = try Safetensors.read(url)
        #expect(read.tensors == file.tensors && read.dtypes == back.dtypes && read.metadata == file.metadata)
    }

    @Test("reading a file: float32 and integer types equal decoding; bad values, truncation and missing files are refused")
    func fileReading() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let values = Tensor(shape: [3, 1000], scalars: (0..<3000).map { Float($0) * 0.37 - 500 })
        let file = Safetensors(tensors: ["w": values, "h": Tensor(shape: [4], scalars: [5, -2, 32767, 0]),
                                         "b": Tensor(shape: [2], scalars: [255, 3])],
                               dtypes: ["h": .i16, "b": .u8])
        let url = dir.appendingPathComponent("m.safetensors")
        let data = try file.encode()
        try data.write(to: url)
        let read = try Safetensors.read(url)
        #expect(read.tensors == (try Safetensors.decode(data)).tensors)
        #expect(read.tensors["w"] == values && read.tensors["h"]!.scalars == [5, -2, 32767, 0] && read.tensors["b"]!.scalars == [255, 3])
        #expect(read.dtypes == ["w": .f32, "h": .i16, "b": .u8])
        // An I64 beyond 2^24, as in decoding.
        var big = try Safetensors(tensors: ["a": Tensor(shape: [1], scalars: [1])], dtypes: ["a": .i64]).encode()
        big[big.count - 4] = 1
        try big.write(to: url)
        #expect(throws: WallocError.self) { try Safetensors.read(url) }
        // Truncated data: the header no longer fits the file.
        try data.prefix(data.count - 4).write(to: url)
        #expect(throws: WallocError.self) { try Safetensors.read(url) }
        // A missing file and a directory get FileIO's messages.
        let missing = dir.appendingPathComponent("none.safetensors")
        #expect { try Safetensors.read(missing) } throws: { ($0 as? WallocError)?.message.contains("no such file") == true }
        #expect { try Safetensors.read(dir) } throws: { ($0 as? WallocError)?.message.contains("is a directory") == true }
    }

    @Test("values an integer type cannot hold are refused, on writing and reading")
    func refusals() throws {
        #expect(throws: WallocError.self) { try Safetensors(tensors: ["a": Tensor(shape: [1], scalars: [128])], dtypes: ["a": .i8]).encode() }
        #expect(throws: WallocError.self) { try Safetensors(tensors: ["a": Tensor(shape: [1], scalars: [0.5])], dtypes: ["a": .i16]).encode() }
        #expect(throws: WallocError.self) { try Safetensors(tensors: ["a": Tensor(shape: [1], scalars: [-1])], dtypes: ["a": .u8]).encode() }
        // An I64 beyond 2^24 cannot be held exactly as float32.
        var data = try Safetensors(tensors: ["a": Tensor(shape: [1], scalars: [1])], dtypes: ["a": .i64]).encode()
        data[data.count - 4] = 1
        #expect(throws: WallocError.self) { try Safetensors.decode(data) }
    }

    @Test("large tensors convert in parallel pieces exactly; the first bad value is named; parts and data metadata")
    func largeTensors() throws {
        let n = 2_500_000  // three pieces of 2^20 values
        let values = Tensor(shape: [n], scalars: (0..<n).map { Float(($0 * 7919) % 65536 - 32768) })
        let file = Safetensors(tensors: ["x": values], dtypes: ["x": .i16])
        let (header, body) = try file.encodeParts { ["bytes": String($0.count)] }
        #expect(body.count == 2 * n)
        let back = try Safetensors.decode(header + body)
        #expect(back.tensors["x"] == values && back.metadata["bytes"] == String(2 * n))
        #expect(try Safetensors.decode(try file.encode()).tensors["x"] == values)
        for i in [0, 1_048_575, 1_048_576, n - 1] {
            #expect(body[body.startIndex + 2 * i] == UInt8(truncatingIfNeeded: Int(values.scalars[i])), "\(i)")
        }
        var bad = values
        bad.scalars[2_300_000] = 0.5
        bad.scalars[1_500_000] = 40000
        do {
            _ = try Safetensors(tensors: ["x": bad], dtypes: ["x": .i16]).encode()
            Issue.record("out-of-range values were written")
        } catch let e as WallocError {
            #expect(e.message.contains("index 1500000"))
        }
    }

    @Test("low-pass resampling keeps what lies below the new Nyquist frequency and removes what lies above")
    func resample() {
        let n = 4096, m = 256  // 16x fewer samples: the new Nyquist frequency is 1/32 cycles per input sample
        func sine(_ f: Double) -> Tensor {
            Tensor(shape: [1, n], scalars: (0..<n).map { Float(sin(2 * Double.pi * f * Double($0))) })
        }
        // 1/128 cycles per sample: a quarter of the new band; output sample j sits at 16j + 7.5.
        let low = Resample.lowpass(sine(1.0 / 128), length: m)
        var err: Float = 0
        for j in 40..<(m - 40) { err = max(err, abs(low.scalars[j] - Float(sin(2 * Double.pi / 128 * (16 * Double(j) + 7.5))))) }
        #expect(err < 0.02)
        // 1/20 cycles per sample: above the new Nyquist (1/32), so it must not alias into the output.
        let high = Resample.lowpass(sine(1.0 / 20), length: m)
        #expect(high.scalars[40..<(m - 40)].map(abs).max()! < 0.02)
        // A constant passes unchanged away from the ends.
        let dc = Resample.lowpass(Tensor(repeating: 0.3, shape: [2, n]), length: m)
        #expect(dc.scalars[100] == dc.scalars[100] && abs(dc.scalars[100] - 0.3) < 1e-5 && abs(dc.scalars[m + 128] - 0.3) < 1e-5)
        #expect(dc.shape == [2, 256])
    }

    @Test("Threading.serially runs the kernels on the calling thread")
    func serially() {
        #expect(Threading.serially { Threading.count } == 1)
        let outside = Threading.count
        #expect(outside == Threading.count)
        var seen = [Int](repeating: 0, count: 8)
        Threading.serially {
            seen.withUnsafeMutableBufferPointer { b in parallelFor(8) { b[$0] = Threading.count } }
        }
        #expect(seen == [Int](repeating: 1, count: 8))
    }
}
