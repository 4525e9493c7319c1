import Foundation

/// A decoded picture to the image model's input as the manifest's `image` rule says: EXIF
/// orientation, transparency on white, Pillow's bilinear resize (shorter side to S then a centre
/// crop, or a squash), and float32 NCHW `[1, 3, S, S]` RGB of byte / 255.
public struct ImagePreprocessor {
    public static let shorterSideCenterCrop = "shorter_side_center_crop"
    public static let squash = "squash"

    private let rule: ImageRule

    public init(rule: ImageRule) throws {
        let manifest = BundleManifest.manifestFile
        if rule.resize != Self.shorterSideCenterCrop && rule.resize != Self.squash {
            throw CompressError("\(manifest): image.resize '\(rule.resize)' is not one this app knows (\(Self.shorterSideCenterCrop), \(Self.squash))")
        }
        if rule.interpolation != "bilinear" {
            throw CompressError("\(manifest): image.interpolation '\(rule.interpolation)' is not 'bilinear'")
        }
        if rule.size < 1 {
            throw CompressError("\(manifest): image.size \(rule.size) is not a size")
        }
        self.rule = rule
    }

    public var size: Int { rule.size }

    /// The input shape of the image model: `[1, 3, S, S]`.
    public var shape: [Int] { [1, 3, size, size] }

    /// Interleaved RGB bytes of the S x S picture the model sees (what a Core ML `ImageType` takes).
    public func modelPicture(_ image: ArgbImage, orientation: Int = 1) throws -> [UInt8] {
        let upright = try image.oriented(orientation)
        let rgb = upright.rgbOnWhite()
        let width = upright.width
        let height = upright.height
        let s = rule.size
        if rule.resize == Self.squash {
            return PillowBilinear.resize(rgb, width: width, height: height, outWidth: s, outHeight: s)
        }
        let newWidth: Int
        let newHeight: Int
        if width <= height {
            newWidth = s
            newHeight = Int(Double(s) * Double(height) / Double(width))
        } else {
            newWidth = Int(Double(s) * Double(width) / Double(height))
            newHeight = s
        }
        let resized = PillowBilinear.resize(rgb, width: width, height: height, outWidth: newWidth, outHeight: newHeight)
        // Python's round(): halves go to the even neighbour
        let left = Int((Double(newWidth - s) / 2.0).rounded(.toNearestOrEven))
        let top = Int((Double(newHeight - s) / 2.0).rounded(.toNearestOrEven))
        var out = [UInt8](repeating: 0, count: s * s * 3)
        for y in 0..<s {
            let sy = y + top
            for x in 0..<s {
                let sx = x + left
                let o = (y * s + x) * 3
                if sx >= 0 && sx < newWidth && sy >= 0 && sy < newHeight {
                    let p = (sy * newWidth + sx) * 3
                    out[o] = resized[p]
                    out[o + 1] = resized[p + 1]
                    out[o + 2] = resized[p + 2]
                } // outside the picture Pillow's crop fills black (0), as here
            }
        }
        return out
    }

    /// The model input: float32 `[1, 3, S, S]`, channel-major, byte / 255.
    public func pixels(_ image: ArgbImage, orientation: Int = 1) throws -> [Float] {
        try Self.tensor(fromPicture: modelPicture(image, orientation: orientation), size: rule.size)
    }

    /// Interleaved RGB bytes of an S x S picture to float32 NCHW, byte / 255.
    public static func tensor(fromPicture picture: [UInt8], size: Int) -> [Float] {
        let plane = size * size
        var out = [Float](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            for c in 0..<3 {
                out[c * plane + i] = Float(picture[3 * i + c]) / 255.0
            }
        }
        return out
    }
}
