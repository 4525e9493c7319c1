import Foundation

/// One parsed JSON value. Numbers are kept as `Double`: every number a bundle holds (sizes, ids,
/// scores, embeddings) is exact in one.
public enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    public var numberValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }
}

/// A JSON object read from `source` with typed getters that throw a `CompressError` naming the
/// file and the key, so a malformed bundle file is refused with one clear message.
public struct JsonFields {
    public let values: [String: JSONValue]
    public let source: String
    private let place: String

    public init(_ values: [String: JSONValue], source: String, place: String = "") {
        self.values = values
        self.source = source
        self.place = place
    }

    private func location(_ key: String) -> String {
        place.isEmpty ? key : "\(place).\(key)"
    }

    private func failure(_ key: String, _ problem: String) -> CompressError {
        CompressError("\(source): \(location(key)) \(problem)")
    }

    public func has(_ key: String) -> Bool {
        guard let value = values[key] else { return false }
        return value != .null
    }

    private func element(_ key: String) throws -> JSONValue {
        guard let value = values[key], value != .null else { throw failure(key, "is missing") }
        return value
    }

    public func string(_ key: String) throws -> String {
        guard let value = try element(key).stringValue else { throw failure(key, "is not a string") }
        return value
    }

    public func stringOrNil(_ key: String) throws -> String? {
        if !has(key) { return nil }
        return try string(key)
    }

    public func int(_ key: String) throws -> Int {
        guard let number = try element(key).numberValue else { throw failure(key, "is not a number") }
        guard number == number.rounded(.towardZero), abs(number) <= 9.0e15 else { throw failure(key, "is not an integer") }
        return Int(number)
    }

    public func long(_ key: String) throws -> Int64 {
        try Int64(int(key))
    }

    public func double(_ key: String) throws -> Double {
        guard let number = try element(key).numberValue else { throw failure(key, "is not a number") }
        return number
    }

    public func boolean(_ key: String) throws -> Bool {
        guard let value = try element(key).boolValue else { throw failure(key, "is not true or false") }
        return value
    }

    public func obj(_ key: String) throws -> JsonFields {
        guard let value = try element(key).objectValue else { throw failure(key, "is not an object") }
        return JsonFields(value, source: source, place: location(key))
    }

    public func array(_ key: String) throws -> [JSONValue] {
        guard let value = try element(key).arrayValue else { throw failure(key, "is not a list") }
        return value
    }

    public func objects(_ key: String) throws -> [JsonFields] {
        try array(key).enumerated().map { index, item in
            guard let object = item.objectValue else { throw failure("\(key)[\(index)]", "is not an object") }
            return JsonFields(object, source: source, place: location("\(key)[\(index)]"))
        }
    }

    public func strings(_ key: String) throws -> [String] {
        try array(key).enumerated().map { index, item in
            guard let value = item.stringValue else { throw failure("\(key)[\(index)]", "is not a string") }
            return value
        }
    }

    public func doubles(_ key: String) throws -> [Double] {
        try array(key).enumerated().map { index, item in
            guard let value = item.numberValue else { throw failure("\(key)[\(index)]", "is not a number") }
            return value
        }
    }

    public func floats(_ key: String) throws -> [Float] {
        try doubles(key).map { Float($0) }
    }

    public func ints(_ key: String) throws -> [Int] {
        try array(key).enumerated().map { index, item in
            guard let value = item.numberValue, value == value.rounded(.towardZero), abs(value) <= 9.0e15 else {
                throw failure("\(key)[\(index)]", "is not an integer")
            }
            return Int(value)
        }
    }

    /// A list of equal-length number rows, as a row-major matrix.
    public func matrix(_ key: String) throws -> (width: Int, values: [Float]) {
        let rows = try array(key)
        guard let first = rows.first else { return (0, []) }
        guard let width = first.arrayValue?.count else { throw failure("\(key)[0]", "is not a list") }
        var values = [Float]()
        values.reserveCapacity(rows.count * width)
        for (r, row) in rows.enumerated() {
            guard let items = row.arrayValue, items.count == width else {
                throw failure("\(key)[\(r)]", "is not a list of \(width) numbers")
            }
            for (c, item) in items.enumerated() {
                guard let value = item.numberValue else { throw failure("\(key)[\(r)][\(c)]", "is not a number") }
                values.append(Float(value))
            }
        }
        return (width, values)
    }

    /// Parse `url` as a JSON object, or throw naming the file.
    public static func read(_ url: URL) throws -> JsonFields {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw CompressError("\(url.path): missing")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw CompressError("\(url.path): cannot be read (\(error.localizedDescription))")
        }
        return try parse(data, source: url.path)
    }

    public static func parse(_ data: Data, source: String) throws -> JsonFields {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw CompressError("\(source): not valid JSON (\(error.localizedDescription))")
        }
        guard let object = value.objectValue else { throw CompressError("\(source): not a JSON object") }
        return JsonFields(object, source: source)
    }
}
