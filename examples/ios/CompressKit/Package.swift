// swift-tools-version: 5.9
import PackageDescription

let package = Package(
    name: "CompressKit",
    platforms: [.iOS(.v17), .macOS(.v14)],
    products: [
        .library(name: "CompressKit", targets: ["CompressKit"]),
    ],
    targets: [
        .target(name: "CompressKit"),
        .testTarget(name: "CompressKitTests", dependencies: ["CompressKit"]),
    ]
)
