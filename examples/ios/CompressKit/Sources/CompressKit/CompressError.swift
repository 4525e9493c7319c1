import Foundation

/// A bundle, file or input the core refuses; the message names the file and the problem.
public struct CompressError: Error, LocalizedError, CustomStringConvertible, Equatable {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var errorDescription: String? { message }
    public var description: String { message }
}
