import Foundation

/// A decoded picture as a platform decoder hands it over: `width` x `height` pixels, row-major,
/// each `0xAARRGGBB` with straight (not premultiplied) alpha, not yet turned by its EXIF orientation.
public struct ArgbImage {
    public let width: Int
    public let height: Int
    public let pixels: [UInt32]

    public init(width: Int, height: Int, pixels: [UInt32]) throws {
        if width <= 0 || height <= 0 {
            throw CompressError("a picture of \(width)x\(height) pixels has nothing to show")
        }
        if pixels.count != width * height {
            throw CompressError("a \(width)x\(height) picture needs \(width * height) pixels, got \(pixels.count)")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public subscript(x: Int, y: Int) -> UInt32 {
        pixels[y * width + x]
    }

    /// The picture as it is meant to be seen for EXIF orientation `orientation` (1...8), the same
    /// turns and flips as Pillow's `ImageOps.exif_transpose`.
    public func oriented(_ orientation: Int) throws -> ArgbImage {
        let w = width
        let h = height
        switch orientation {
        case 1: return self
        case 2: return try build(w, h) { x, y in self[w - 1 - x, y] } // mirror left-right
        case 3: return try build(w, h) { x, y in self[w - 1 - x, h - 1 - y] } // turn 180
        case 4: return try build(w, h) { x, y in self[x, h - 1 - y] } // mirror top-bottom
        case 5: return try build(h, w) { x, y in self[y, x] } // transpose
        case 6: return try build(h, w) { x, y in self[y, h - 1 - x] } // turn 90 clockwise
        case 7: return try build(h, w) { x, y in self[w - 1 - y, h - 1 - x] } // transverse
        case 8: return try build(h, w) { x, y in self[w - 1 - y, x] } // turn 90 counter-clockwise
        default: throw CompressError("EXIF orientation \(orientation) is not one of 1...8")
        }
    }

    /// Interleaved R, G, B bytes of the picture composited on white, with Pillow's
    /// `alpha_composite` integer arithmetic (7 extra bits, divisions by 255 rounded).
    public func rgbOnWhite() -> [UInt8] {
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<pixels.count {
            let p = pixels[i]
            let a = p >> 24
            var r = (p >> 16) & 0xff
            var g = (p >> 8) & 0xff
            var b = p & 0xff
            if a == 0 {
                r = 255
                g = 255
                b = 255
            } else if a != 255 {
                r = Self.overWhite(r, a)
                g = Self.overWhite(g, a)
                b = Self.overWhite(b, a)
            }
            rgb[3 * i] = UInt8(r)
            rgb[3 * i + 1] = UInt8(g)
            rgb[3 * i + 2] = UInt8(b)
        }
        return rgb
    }

    private static func overWhite(_ c: UInt32, _ a: UInt32) -> UInt32 {
        // Pillow: coef1 = a * 255 * 255 * 128 / (255 * 255) = a * 128 for an opaque white backdrop
        let t = (c * a * 128 + 255 * (255 - a) * 128) + (0x80 << 7)
        return (((t >> 8) + t) >> 8) >> 7
    }

    private func build(_ w: Int, _ h: Int, _ source: (Int, Int) -> UInt32) throws -> ArgbImage {
        var out = [UInt32](repeating: 0, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                out[y * w + x] = source(x, y)
            }
        }
        return try ArgbImage(width: w, height: h, pixels: out)
    }
}
