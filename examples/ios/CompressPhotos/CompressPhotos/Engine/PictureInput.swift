import CompressKit
import ImageIO
import UIKit

/// Pictures from the photo picker, the camera and Photos as the core takes them: unturned ARGB
/// pixels and the EXIF orientation.
enum PictureInput {
    /// A picture file's bytes (photo picker, Photos), decoded in full as the reference client does.
    static func decode(_ data: Data, name: String, maxShorterSide: Int? = nil) throws -> (image: ArgbImage, orientation: Int) {
        try PictureDecoder.decode(data: data, name: name, maxShorterSide: maxShorterSide)
    }

    /// A camera picture: its stored pixels and the orientation UIKit reports for them.
    static func decode(_ image: UIImage) throws -> (image: ArgbImage, orientation: Int) {
        guard let cgImage = image.cgImage else { throw CompressError("the camera picture has no bitmap") }
        let pixels = try PictureDecoder.argb(cgImage, name: "camera picture")
        return (pixels, exifOrientation(image.imageOrientation))
    }

    /// UIKit's orientation as the EXIF value (1...8) the core applies.
    static func exifOrientation(_ orientation: UIImage.Orientation) -> Int {
        switch orientation {
        case .up: return 1
        case .upMirrored: return 2
        case .down: return 3
        case .downMirrored: return 4
        case .leftMirrored: return 5
        case .right: return 6
        case .rightMirrored: return 7
        case .left: return 8
        @unknown default: return 1
        }
    }

    /// Interleaved RGB bytes of a square picture as a `UIImage`, to show what the model saw.
    static func image(fromRGB rgb: [UInt8], size: Int) -> UIImage? {
        var rgba = [UInt8](repeating: 255, count: size * size * 4)
        for i in 0..<(size * size) {
            rgba[4 * i] = rgb[3 * i]
            rgba[4 * i + 1] = rgb[3 * i + 1]
            rgba[4 * i + 2] = rgb[3 * i + 2]
        }
        guard let provider = CGDataProvider(data: Data(rgba) as CFData),
              let cgImage = CGImage(width: size, height: size, bitsPerComponent: 8, bitsPerPixel: 32, bytesPerRow: size * 4,
                                    space: CGColorSpace(name: CGColorSpace.sRGB) ?? CGColorSpaceCreateDeviceRGB(),
                                    bitmapInfo: CGBitmapInfo(rawValue: CGImageAlphaInfo.noneSkipLast.rawValue),
                                    provider: provider, decode: nil, shouldInterpolate: false, intent: .defaultIntent) else {
            return nil
        }
        return UIImage(cgImage: cgImage)
    }
}
