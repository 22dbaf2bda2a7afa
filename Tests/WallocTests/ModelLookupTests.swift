import Foundation
import Testing
import Walloc

/// `walloc decode` without `--model` finds a file's model by its fingerprint; `walloc models` lists them.
@Suite("Models found by fingerprint")
struct ModelLookupTests {
    @Test("a file made with a model in WALLOC_MODELS or the user's folder decodes without --model; otherwise a clear error")
    func lookup() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let models = dir.appendingPathComponent("models"), xdg = dir.appendingPathComponent("xdg"), empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: models, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Fixtures.reference("codec2d_light"), to: models.appendingPathComponent("mine"))
        try FileManager.default.createDirectory(at: xdg.appendingPathComponent("walloc"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: models, to: xdg.appendingPathComponent("walloc/models"))
        let png = dir.appendingPathComponent("p.png").path, wlc = dir.appendingPathComponent("p.wlc").path
        try ImageIO.write(WLCLatentsTests.picture(h: 32, w: 40, seed: 5), to: URL(fileURLWithPath: png), format: .png)
        var r = try CLI.run(["encode", png, "-o", wlc, "--model", models.appendingPathComponent("mine").path])
        #expect(r.status == 0, "\(r.stderr)")
        let withModel = dir.appendingPathComponent("a.png").path
        r = try CLI.run(["decode", wlc, "-o", withModel, "--model", models.appendingPathComponent("mine").path])
        #expect(r.status == 0, "\(r.stderr)")
        let fingerprint = try Codec.load(from: models.appendingPathComponent("mine")).fingerprintHex

        // Not installed anywhere: the message names the fingerprint (the 8 bytes the file keeps) and the folders searched.
        let none = ["XDG_DATA_HOME": empty.path, "WALLOC_MODELS": ""]
        r = try CLI.run(["decode", wlc, "-o", dir.appendingPathComponent("b.png").path], environment: none)
        #expect(r.status == 1 && r.stderr.contains(String(fingerprint.prefix(16))) && r.stderr.contains(empty.path) && r.stderr.contains("WALLOC_MODELS"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("b.png").path))

        // In WALLOC_MODELS (several folders, colon-separated), and in the user's folder.
        for env in [["XDG_DATA_HOME": empty.path, "WALLOC_MODELS": empty.path + ":" + models.path], ["XDG_DATA_HOME": xdg.path, "WALLOC_MODELS": ""]] {
            let out = dir.appendingPathComponent("c.png").path
            r = try CLI.run(["decode", wlc, "-o", out, "--force"], environment: env)
            #expect(r.status == 0, "\(env): \(r.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data(contentsOf: URL(fileURLWithPath: withModel)))
            r = try CLI.run(["latents", wlc, "-o", dir.appendingPathComponent("y.npy").path, "--force"], environment: env)
            #expect(r.status == 0, "\(env): \(r.stderr)")
        }

        // walloc models lists it with the defaults.
        r = try CLI.run(["models", "--json"], environment: ["XDG_DATA_HOME": empty.path, "WALLOC_MODELS": models.path])
        #expect(r.status == 0, "\(r.stderr)")
        let listed = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let entries = try #require(listed["models"] as? [[String: Any]])
        #expect(entries.contains { $0["name"] as? String == "mine" && $0["fingerprint"] as? String == fingerprint && $0["modality"] as? String == "image" })
        #expect(entries.contains { $0["name"] as? String == "image" && $0["default_quality"] as? Int == 60 })
        #expect((listed["folders"] as? [String])?.first == models.path)
        r = try CLI.run(["models"], environment: ["XDG_DATA_HOME": empty.path, "WALLOC_MODELS": models.path])
        #expect(r.status == 0 && r.stdout.contains("mine") && r.stdout.contains("fixed rate") && r.stdout.contains(fingerprint))
    }
}
