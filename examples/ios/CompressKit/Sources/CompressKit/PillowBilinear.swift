import Foundation

/// Pillow's `Image.resize(..., BILINEAR)` for 8-bit RGB (libImaging/Resample.c): a triangle filter
/// whose support grows with the shrink factor (antialiasing), weights in 22-bit fixed point, one
/// horizontal then one vertical pass, each rounded and clipped to 8 bits. Ported operation by
/// operation so that the bytes equal Pillow's.
public enum PillowBilinear {
    private static let precisionBits = 32 - 8 - 2

    private struct Coefficients {
        let ksize: Int
        let bounds: [Int]
        let weights: [Int]
    }

    private static func triangle(_ value: Double) -> Double {
        let x = value < 0.0 ? -value : value
        return x < 1.0 ? 1.0 - x : 0.0
    }

    private static func coefficients(inSize: Int, outSize: Int) -> Coefficients {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = scale < 1.0 ? 1.0 : scale
        let support = 1.0 * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds = [Int](repeating: 0, count: outSize * 2)
        var weights = [Int](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        let one = Double(1 << precisionBits)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1.0 / filterScale
            var xmin = Int(center - support + 0.5) // C's (int) cast: truncation toward zero
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            var ww = 0.0
            for x in 0..<xmax {
                let w = triangle((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            for x in 0..<ksize {
                let normalized = x < xmax ? (ww != 0.0 ? k[x] / ww : k[x]) : 0.0
                weights[xx * ksize + x] = normalized < 0 ? Int(-0.5 + normalized * one) : Int(0.5 + normalized * one)
            }
            bounds[xx * 2] = xmin
            bounds[xx * 2 + 1] = xmax
        }
        return Coefficients(ksize: ksize, bounds: bounds, weights: weights)
    }

    private static func clip8(_ value: Int) -> UInt8 {
        if value >= (1 << precisionBits << 8) { return 255 }
        if value <= 0 { return 0 }
        return UInt8(value >> precisionBits)
    }

    /// Resize interleaved RGB bytes `rgb` of `width` x `height` to `outWidth` x `outHeight`.
    public static func resize(_ rgb: [UInt8], width: Int, height: Int, outWidth: Int, outHeight: Int) -> [UInt8] {
        if outWidth == width && outHeight == height { return rgb }
        let horizontal = coefficients(inSize: width, outSize: outWidth)
        let vertical = coefficients(inSize: height, outSize: outHeight)
        let needHorizontal = outWidth != width
        let needVertical = outHeight != height
        let half = 1 << (precisionBits - 1)
        var source = rgb
        let firstRow = vertical.bounds[0]
        let lastRow = vertical.bounds[outHeight * 2 - 2] + vertical.bounds[outHeight * 2 - 1]
        var verticalBounds = vertical.bounds
        if needHorizontal {
            // only the rows the vertical pass reads, as Pillow does
            for i in 0..<outHeight {
                verticalBounds[i * 2] -= firstRow
            }
            let rows = lastRow - firstRow
            var out = [UInt8](repeating: 0, count: outWidth * rows * 3)
            for yy in 0..<rows {
                let rowStart = (yy + firstRow) * width * 3
                for xx in 0..<outWidth {
                    let xmin = horizontal.bounds[xx * 2]
                    let xmax = horizontal.bounds[xx * 2 + 1]
                    let kOffset = xx * horizontal.ksize
                    var s0 = half
                    var s1 = half
                    var s2 = half
                    for x in 0..<xmax {
                        let w = horizontal.weights[kOffset + x]
                        let p = rowStart + (x + xmin) * 3
                        s0 += Int(source[p]) * w
                        s1 += Int(source[p + 1]) * w
                        s2 += Int(source[p + 2]) * w
                    }
                    let o = (yy * outWidth + xx) * 3
                    out[o] = clip8(s0)
                    out[o + 1] = clip8(s1)
                    out[o + 2] = clip8(s2)
                }
            }
            source = out
        }
        if !needVertical { return source }
        let sourceWidth = outWidth
        let bounds = needHorizontal ? verticalBounds : vertical.bounds
        var out = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        for yy in 0..<outHeight {
            let ymin = bounds[yy * 2]
            let ymax = bounds[yy * 2 + 1]
            let kOffset = yy * vertical.ksize
            for xx in 0..<sourceWidth {
                var s0 = half
                var s1 = half
                var s2 = half
                for y in 0..<ymax {
                    let w = vertical.weights[kOffset + y]
                    let p = ((y + ymin) * sourceWidth + xx) * 3
                    s0 += Int(source[p]) * w
                    s1 += Int(source[p + 1]) * w
                    s2 += Int(source[p + 2]) * w
                }
                let o = (yy * outWidth + xx) * 3
                out[o] = clip8(s0)
                out[o + 1] = clip8(s1)
                out[o + 2] = clip8(s2)
            }
        }
        return out
    }
}
