import Foundation
import Testing
import Walloc

/// Bad inputs get a clear `WallocError` that names what is wrong.
@Suite("Clear errors on bad input")
struct ErrorTests {
    static let model = Fixtures.reference("codec2d_light")

    /// Copies the fixture model into a temporary directory for tampering.
    func copyModel() throws -> URL {
        let dir = try Fixtures.temporaryDirectory().appendingPathComponent("model")
        try FileManager.default.copyItem(at: Self.model, to: dir)
        return dir
    }

    func expectError(containing text: String, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected an error containing '\(text)'")
        } catch let e as WallocError {
            #expect(e.message.contains(text), "message was: \(e.message)")
        } catch {
            Issue.record("expected a WallocError, got \(error)")
        }
    }

    @Test("Missing or malformed model directories")
    func modelDirectories() throws {
        expectError(containing: "does not exist") { _ = try Codec.load(from: URL(fileURLWithPath: "/nonexistent/model")) }
        let dir = try copyModel()
        defer { try? FileManager.default.removeItem(at: dir.deletingLastPathComponent()) }
        let weights = dir.appendingPathComponent("model.safetensors")
        let config = dir.appendingPathComponent("config.json")
        let original = try Data(contentsOf: weights)
        let originalConfig = try Data(contentsOf: config)

        try Data(original.prefix(original.count / 2)).write(to: weights)
        expectError(containing: "model.safetensors") { _ = try Codec.load(from: dir) }
        try Data([1, 2, 3]).write(to: weights)
        expectError(containing: "model.safetensors") { _ = try Codec.load(from: dir) }
        try original.write(to: weights)

        try Data("{ not json".utf8).write(to: config)
        expectError(containing: "config.json") { _ = try Codec.load(from: dir) }
        // A config whose shapes do not match the weights: the message names the parameter.
        var json = try JSONSerialization.jsonObject(with: originalConfig) as! [String: Any]
        json["latent_dim"] = 10
        try JSONSerialization.data(withJSONObject: json).write(to: config)
        expectError(containing: "encoder.0.weight") { _ = try Codec.load(from: dir) }
        json["latent_dim"] = 12
        json["type"] = "Codec3D"
        try JSONSerialization.data(withJSONObject: json).write(to: config)
        expectError(containing: "Codec3D") { _ = try Codec.load(from: dir) }
        try FileManager.default.removeItem(at: config)
        expectError(containing: "config.json") { _ = try Codec.load(from: dir) }
    }

    @Test("Missing and unexpected parameters are named")
    func parameterKeys() throws {
        let codec = try Codec.load(from: Self.model)
        var params = [String: Tensor]()
        for (name, t) in codec.namedParameters() { params[name] = t }
        var missing = params
        missing.removeValue(forKey: "decoder.1.conv_out.bias")
        expectError(containing: "decoder.1.conv_out.bias") { _ = try Codec(config: codec.config, parameters: missing) }
        var extra = params
        extra["decoder.1.surprise"] = Tensor(zeros: [3])
        expectError(containing: "decoder.1.surprise") { _ = try Codec(config: codec.config, parameters: extra) }
        var reshaped = params
        reshaped["encoder.0.weight"] = Tensor(zeros: [12, 192])
        expectError(containing: "encoder.0.weight") { _ = try Codec(config: codec.config, parameters: reshaped) }
    }

    /// An `.npy` file with the given dtype descriptor and raw payload.
    static func npy(descr: String, shape: [Int], payload: [UInt8]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(contentsOf: payload)
        return data
    }

    @Test("npy files of the wrong dtype, truncated or not npy at all")
    func npyErrors() throws {
        expectError(containing: "'<f8'") { _ = try NPY.decode(Self.npy(descr: "<f8", shape: [2], payload: Array(repeating: 0, count: 16))) }
        expectError(containing: "'<i4'") { _ = try NPY.decode(Self.npy(descr: "<i4", shape: [2], payload: Array(repeating: 0, count: 8))) }
        expectError(containing: "'>f4'") { _ = try NPY.decode(Self.npy(descr: ">f4", shape: [2], payload: Array(repeating: 0, count: 8))) }
        expectError(containing: "holds 4 bytes") { _ = try NPY.decode(Self.npy(descr: "<f4", shape: [2], payload: [0, 0, 0, 0])) }
        expectError(containing: "bad magic") { _ = try NPY.decode(Data("hello world, not an array".utf8)) }
        // A good file decodes.
        let t = try NPY.decode(Self.npy(descr: "<f4", shape: [1, 2], payload: [0, 0, 128, 63, 0, 0, 0, 64]))
        #expect(t.shape == [1, 2] && t.scalars == [1, 2])
    }

    @Test("Signals and latents of the wrong shape or range")
    func signalAndLatentChecks() throws {
        let codec = try Codec.load(from: Self.model)
        expectError(containing: "3 channel") { _ = try codec.encode(Tensor(zeros: [1, 64, 64])) }
        expectError(containing: "multiple of 2^J = 8") { _ = try codec.encode(Tensor(zeros: [3, 60, 64])) }
        expectError(containing: "[C, H, W]") { _ = try codec.encode(Tensor(zeros: [64, 64])) }
        expectError(containing: "12 channels") { _ = try codec.decode(Tensor(zeros: [11, 4, 4])) }
        var y = Tensor(zeros: [12, 4, 4])
        y.scalars[5] = 128
        expectError(containing: "128") { _ = try codec.decode(y) }
        y.scalars[5] = 0.5
        expectError(containing: "integer") { _ = try codec.decode(y) }
        y.scalars[5] = .nan
        expectError(containing: "nan") { _ = try codec.decode(y) }
    }
}
