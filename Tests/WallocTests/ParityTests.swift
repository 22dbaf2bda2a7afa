import Foundation
import Testing
import Walloc

/// End-to-end agreement with the reference implementation on every fixture case.
@Suite("Reference parity")
struct ParityTests {
    /// The shared reference fixtures, then the extra configurations made by scripts/make_fixtures.py
    /// (other J, channel counts, latent sizes and bits).
    static let cases = ["codec2d_light", "codec2d_full", "codec1d_light", "codec1d_full", "linear2d_gray"].map { "reference/\($0)" }
        + ["codec2d_gray_j1", "codec2d_5ch_full", "codec2d_rgb_j4", "codec1d_mono_j2", "codec1d_6ch_full", "linear2d_rgba_j3"].map { "generated/\($0)" }

    static func npy(_ path: String) throws -> Tensor { try NPY.read(Fixtures.root.appendingPathComponent(path)) }

    @Test("Bands, latents, decoded bands and output match the reference", arguments: cases)
    func parity(name: String) throws {
        let codec = try Codec.load(from: Fixtures.root.appendingPathComponent(name))
        let input = try Self.npy("\(name)/input.npy")

        let bands = try codec.analysis(input)
        let refBands = try Self.npy("\(name)/wpt.npy")
        #expect(bands.shape == refBands.shape)
        #expect(relativeError(bands, refBands) < 1e-4)

        let latentFloat = codec.encodeBands(bands)
        let refLatentFloat = try Self.npy("\(name)/latent_float.npy")
        #expect(latentFloat.shape == refLatentFloat.shape)
        #expect(relativeError(latentFloat, refLatentFloat) < 1e-4)

        let latent = try codec.encode(input)
        let refLatent = try Self.npy("\(name)/latent.npy")
        #expect(latent.shape == refLatent.shape)
        var offByOne = 0, worse = 0
        for (a, b) in zip(latent.scalars, refLatent.scalars) where a != b {
            if abs(a - b) == 1 { offByOne += 1 } else { worse += 1 }
        }
        #expect(worse == 0)
        #expect(Double(offByOne) <= 0.001 * Double(latent.count))

        let decoded = codec.decodeBands(refLatent)
        let refDecoded = try Self.npy("\(name)/decoded_bands.npy")
        #expect(decoded.shape == refDecoded.shape)
        #expect(relativeError(decoded, refDecoded) < 1e-3)

        let output = try codec.decode(refLatent)
        let refOutput = try Self.npy("\(name)/output.npy")
        #expect(output.shape == refOutput.shape)
        #expect(output.maxAbsDifference(refOutput) < 2e-3)
        print("\(name): bands \(relativeError(bands, refBands)) latentFloat \(relativeError(latentFloat, refLatentFloat)) offByOne \(offByOne)/\(latent.count) decoded \(relativeError(decoded, refDecoded)) output \(output.maxAbsDifference(refOutput))")
    }
}
