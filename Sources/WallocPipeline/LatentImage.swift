import Foundation
import WallocTensor
import WallocMedia

/// The reference's way of storing latents (`latent_to_pil`): 8-bit latents tiled into a lossless
/// image. Latent channel `c·n² + i·n + j` becomes the tile at row `i`, column `j` of image
/// channel `c`, samples shifted by `2^(bits−1)`. Three image channels when the latent count is
/// `3n²`, otherwise one, with zero channels added up to the next `n²` (as the reference's
/// examples pad them).
public enum LatentImage {
    /// Image channels and tiles per side for `latentChannels`.
    static func layout(_ latentChannels: Int) -> (channels: Int, side: Int) {
        let third = latentChannels / 3
        let r = Int(Double(third).squareRoot().rounded())
        if latentChannels % 3 == 0, r * r == third { return (3, r) }
        let side = Int(Double(latentChannels).squareRoot().rounded(.up))
        return (1, side)
    }

    /// libwebp's strongest lossless settings (quality 100, method 6, as `cwebp -lossless -z 9`).
    public static let strongestWebP = (quality: 100, method: 6)
    /// PIL's defaults for lossless WebP (quality 80, method 4), what the reference gets from
    /// `Image.save(..., lossless=True)`.
    public static let pillowWebP = (quality: 80, method: 4)

    /// Lossless WebP or PNG bytes of integer latents `[N, h, w]` with `bits <= 8`. WebP uses
    /// `webp` (quality, method): libwebp's strongest setting unless told otherwise.
    public static func encode(_ latents: Tensor, bits: Int, format: ImageFormat,
                              webp: (quality: Int, method: Int) = strongestWebP) throws -> Data {
        guard latents.rank == 3 else { throw WallocError("latent images need 2D latents [N, h, w], got \(latents.shape)") }
        guard bits <= 8 else { throw WallocError("latent images hold at most 8-bit latents; this model's are \(bits)-bit") }
        guard format == .webp || format == .png else { throw WallocError("latent images are WebP or PNG") }
        let n = latents.shape[0], h = latents.shape[1], w = latents.shape[2]
        let (c, side) = layout(n)
        let perChannel = side * side
        let H = side * h, W = side * w
        let shift = Float(1 << (bits - 1))
        var pixels = Tensor(zeros: [c, H, W])
        for k in 0..<(c * perChannel) {
            let ch = k / perChannel, tile = k % perChannel, ti = tile / side, tj = tile % side
            for y in 0..<h {
                for x in 0..<w {
                    let v = k < n ? latents.scalars[(k * h + y) * w + x] : 0
                    pixels.scalars[(ch * H + ti * h + y) * W + tj * w + x] = (v + shift) / 255
                }
            }
        }
        if format == .webp && c == 1 {
            // WebP holds colour only: a grey latent image goes in as three equal channels (as PIL does).
            pixels = Tensor(shape: [3, H, W], scalars: pixels.scalars + pixels.scalars + pixels.scalars)
        }
        if format == .webp {
            return try ImageIO.encode(pixels, format: .webp, bitDepth: 8, quality: webp.quality, lossless: true, method: webp.method)
        }
        return try ImageIO.encode(pixels, format: format, bitDepth: 8)
    }

    /// Inverse of `encode` for latents of `shape` `[N, h, w]`.
    public static func decode(_ data: Data, shape: [Int], bits: Int) throws -> Tensor {
        guard shape.count == 3, bits <= 8 else { throw WallocError("latent images hold 2D latents of at most 8 bits") }
        let n = shape[0], h = shape[1], w = shape[2]
        let (c, side) = layout(n)
        // The size from the header first: a few hundred bytes can declare millions of pixels,
        // which took half a second to decode before the shape check refused them (fuzzing).
        if let size = ImageIO.headerSize(data), size.width != side * w || size.height != side * h {
            throw WallocError("corrupt stream: the latent image is \(size.width)x\(size.height) pixels, expected \(side * w)x\(side * h)")
        }
        let image = try ImageIO.decode(data, name: "latent image")
        var pixels = image.pixels
        if c == 1 && pixels.rank == 3 && pixels.shape[0] == 3 { pixels = pixels.slice(0).reshaped([1] + Array(pixels.shape.dropFirst())) }
        guard pixels.shape == [c, side * h, side * w] else {
            throw WallocError("corrupt stream: the latent image is \(pixels.shape), expected \([c, side * h, side * w])")
        }
        let H = side * h, W = side * w, perChannel = side * side
        let shift = Float(1 << (bits - 1))
        var out = Tensor(zeros: shape)
        for k in 0..<n {
            let ch = k / perChannel, tile = k % perChannel, ti = tile / side, tj = tile % side
            for y in 0..<h {
                for x in 0..<w {
                    out.scalars[(k * h + y) * w + x] = (pixels.scalars[(ch * H + ti * h + y) * W + tj * w + x] * 255).rounded() - shift
                }
            }
        }
        return out
    }
}
