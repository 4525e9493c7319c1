#if canImport(ImageIO) && canImport(CoreGraphics) && canImport(Accelerate)
import Accelerate
import CoreGraphics
import Foundation
import ImageIO

/// Picture files and `CGImage`s to `ArgbImage` on Apple platforms, for `ImagePreprocessor`.
///
/// ImageIO hands over the stored pixels unturned and the EXIF orientation separately, as Pillow
/// does before `exif_transpose`; vImage converts them to straight-alpha ARGB in the picture's own
/// RGB colour space, so no colour management changes a value (Pillow applies none either).
public enum PictureDecoder {
    /// The first picture of a file and its EXIF orientation (1...8; 1 when it records none).
    public static func decode(contentsOf url: URL) throws -> (image: ArgbImage, orientation: Int) {
        guard let source = CGImageSourceCreateWithURL(url as CFURL, nil) else {
            throw CompressError("\(url.path): cannot be opened as a picture")
        }
        return try decode(source, name: url.path, maxShorterSide: nil)
    }

    /// A picture file held in memory. With `maxShorterSide`, a larger picture is first decoded
    /// smaller by ImageIO (its shorter side at least `maxShorterSide`), as a photo index does to
    /// spare memory; the exact pipeline leaves it nil.
    public static func decode(data: Data, name: String, maxShorterSide: Int? = nil) throws -> (image: ArgbImage, orientation: Int) {
        guard let source = CGImageSourceCreateWithData(data as CFData, nil) else {
            throw CompressError("\(name): cannot be opened as a picture")
        }
        return try decode(source, name: name, maxShorterSide: maxShorterSide)
    }

    private static func decode(_ source: CGImageSource, name: String, maxShorterSide: Int?) throws -> (image: ArgbImage, orientation: Int) {
        guard CGImageSourceGetCount(source) > 0 else { throw CompressError("\(name): holds no picture") }
        let properties = CGImageSourceCopyPropertiesAtIndex(source, 0, nil) as? [CFString: Any] ?? [:]
        let orientation = (properties[kCGImagePropertyOrientation] as? NSNumber)?.intValue ?? 1
        let width = (properties[kCGImagePropertyPixelWidth] as? NSNumber)?.intValue ?? 0
        let height = (properties[kCGImagePropertyPixelHeight] as? NSNumber)?.intValue ?? 0
        let image: CGImage?
        if let maxShorterSide, width > 0, height > 0, min(width, height) > maxShorterSide {
            let longer = Double(max(width, height)) * Double(maxShorterSide) / Double(min(width, height))
            let options: [CFString: Any] = [
                kCGImageSourceCreateThumbnailFromImageAlways: true,
                kCGImageSourceThumbnailMaxPixelSize: Int(longer.rounded(.up)),
                kCGImageSourceCreateThumbnailWithTransform: false, // the orientation is applied by ArgbImage
                kCGImageSourceShouldCacheImmediately: true,
            ]
            image = CGImageSourceCreateThumbnailAtIndex(source, 0, options as CFDictionary)
        } else {
            image = CGImageSourceCreateImageAtIndex(source, 0, [kCGImageSourceShouldCacheImmediately: true] as CFDictionary)
        }
        guard let image else { throw CompressError("\(name): cannot be decoded") }
        let pixels = try argb(image, name: name)
        return (pixels, (1...8).contains(orientation) ? orientation : 1)
    }

    /// The pixels of `image` as straight-alpha `0xAARRGGBB`, unturned.
    public static func argb(_ image: CGImage, name: String = "picture") throws -> ArgbImage {
        let colorSpace: CGColorSpace
        if let own = image.colorSpace, own.model == .rgb {
            colorSpace = own
        } else if let own = image.colorSpace, own.model == .indexed, let base = own.baseColorSpace, base.model == .rgb {
            colorSpace = base
        } else {
            colorSpace = CGColorSpace(name: CGColorSpace.sRGB) ?? CGColorSpaceCreateDeviceRGB()
        }
        let bitmapInfo = CGBitmapInfo(rawValue: CGImageAlphaInfo.first.rawValue | CGBitmapInfo.byteOrder32Big.rawValue)
        guard let format = vImage_CGImageFormat(bitsPerComponent: 8, bitsPerPixel: 32, colorSpace: colorSpace, bitmapInfo: bitmapInfo) else {
            throw CompressError("\(name): no 8-bit ARGB format for its colour space")
        }
        let buffer: vImage_Buffer
        do {
            buffer = try vImage_Buffer(cgImage: image, format: format)
        } catch {
            throw CompressError("\(name): cannot be converted to ARGB (\(error.localizedDescription))")
        }
        defer { buffer.free() }
        let width = Int(buffer.width)
        let height = Int(buffer.height)
        let rowBytes = buffer.rowBytes
        let bytes = buffer.data.assumingMemoryBound(to: UInt8.self)
        var pixels = [UInt32](repeating: 0, count: width * height)
        for y in 0..<height {
            let row = bytes + y * rowBytes
            for x in 0..<width {
                let p = row + x * 4
                pixels[y * width + x] = UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3])
            }
        }
        return try ArgbImage(width: width, height: height, pixels: pixels)
    }
}
#endif
