import Foundation
import Testing
import Walloc

/// End-to-end agreement with the reference implementation on every fixture case.
@Suite("Reference parity")
struct ParityTests {
    static let cases = ["codec2d_light", "codec2d_full", "codec1d_light", "codec1d_full", "linear2d_gray"]

    @Test("Bands, latents, decoded bands and output match the reference", arguments: cases)
    func parity(name: String) throws {
        let codec = try Codec.load(from: Fixtures.reference(name))
        let input = try Fixtures.npy("\(name)/input.npy")

        let bands = try codec.analysis(input)
        let refBands = try Fixtures.npy("\(name)/wpt.npy")
        #expect(bands.shape == refBands.shape)
        #expect(relativeError(bands, refBands) < 1e-4)

        let latentFloat = codec.encodeBands(bands)
        let refLatentFloat = try Fixtures.npy("\(name)/latent_float.npy")
        #expect(latentFloat.shape == refLatentFloat.shape)
        #expect(relativeError(latentFloat, refLatentFloat) < 1e-4)

        let latent = try codec.encode(input)
        let refLatent = try Fixtures.npy("\(name)/latent.npy")
        #expect(latent.shape == refLatent.shape)
        var offByOne = 0, worse = 0
        for (a, b) in zip(latent.scalars, refLatent.scalars) where a != b {
            if abs(a - b) == 1 { offByOne += 1 } else { worse += 1 }
        }
        #expect(worse == 0)
        #expect(Double(offByOne) <= 0.001 * Double(latent.count))

        let decoded = codec.decodeBands(refLatent)
        let refDecoded = try Fixtures.npy("\(name)/decoded_bands.npy")
        #expect(decoded.shape == refDecoded.shape)
        #expect(relativeError(decoded, refDecoded) < 1e-3)

        let output = try codec.decode(refLatent)
        let refOutput = try Fixtures.npy("\(name)/output.npy")
        #expect(output.shape == refOutput.shape)
        #expect(output.maxAbsDifference(refOutput) < 2e-3)
        print("\(name): bands \(relativeError(bands, refBands)) latentFloat \(relativeError(latentFloat, refLatentFloat)) offByOne \(offByOne)/\(latent.count) decoded \(relativeError(decoded, refDecoded)) output \(output.maxAbsDifference(refOutput))")
    }
}
