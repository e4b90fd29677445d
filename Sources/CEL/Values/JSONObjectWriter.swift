/// Writes a JSON object as text member by member, for records whose shape the caller knows: no
/// ``JSON`` tree, no dictionary and no sort in between. The text is what ``JSON/text`` gives for the
/// same object when members are written in key order (``JSON/text`` sorts keys), which is the
/// caller's to keep; a key written twice appears twice.
///
/// ```swift
/// var writer = JSONObjectWriter()
/// writer.member("size", 914)
/// writer.member("url", "https://example.com/hook")
/// writer.text  // {"size":914,"url":"https://example.com/hook"}
/// ```
public struct JSONObjectWriter: NestedJSONWriter {
    fileprivate var out: [UInt8]
    private var empty = true

    public init(capacity: Int = 256) {
        out = []
        out.reserveCapacity(capacity)
        out.append(UInt8(ascii: "{"))
    }

    private mutating func key(_ key: String) {
        if !empty { out.append(UInt8(ascii: ",")) }
        empty = false
        JSONWriter.writeString(key, into: &out)
        out.append(UInt8(ascii: ":"))
    }

    public mutating func member(_ name: String, _ value: String) {
        key(name)
        JSONWriter.writeString(value, into: &out)
    }

    public mutating func member(_ name: String, _ value: Int) {
        key(name)
        out.append(contentsOf: String(value).utf8)
    }

    public mutating func member(_ name: String, _ value: Bool) {
        key(name)
        out.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func member(_ name: String, _ value: JSON) {
        key(name)
        JSONWriter.write(value, into: &out)
    }

    /// A member whose value is an object written by `body`.
    public mutating func member(_ name: String, object body: (inout JSONObjectWriter) -> Void) {
        key(name)
        writeNested(&out, "{", "}", body)
    }

    /// A member whose value is an array of objects, one written by `body` per element.
    public mutating func member<Elements: Sequence>(_ name: String, objects elements: Elements,
                                                    _ body: (inout JSONObjectWriter, Elements.Element) -> Void)
    {
        member(name, array: { array in
            for element in elements { array.element(object: { body(&$0, element) }) }
        })
    }

    /// A member whose value is an array written by `body`.
    public mutating func member(_ name: String, array body: (inout JSONArrayWriter) -> Void) {
        key(name)
        writeNested(&out, "[", "]", body)
    }

    /// The object's text.
    public var text: String {
        var bytes = out
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Writes a JSON array as text element by element; the array counterpart of ``JSONObjectWriter``.
///
/// ```swift
/// var writer = JSONArrayWriter()
/// writer.element("a")
/// writer.element(object: { $0.member("n", 1) })
/// writer.text  // ["a",{"n":1}]
/// ```
public struct JSONArrayWriter: NestedJSONWriter {
    fileprivate var out: [UInt8]
    private var empty = true

    public init(capacity: Int = 64) {
        out = []
        out.reserveCapacity(capacity)
        out.append(UInt8(ascii: "["))
    }

    private mutating func separate() {
        if !empty { out.append(UInt8(ascii: ",")) }
        empty = false
    }

    public mutating func element(_ value: String) {
        separate()
        JSONWriter.writeString(value, into: &out)
    }

    /// An element that is an object written by `body`.
    public mutating func element(object body: (inout JSONObjectWriter) -> Void) {
        separate()
        writeNested(&out, "{", "}", body)
    }

    /// An element that is an array written by `body`.
    public mutating func element(array body: (inout JSONArrayWriter) -> Void) {
        separate()
        writeNested(&out, "[", "]", body)
    }

    /// The array's text.
    public var text: String {
        var bytes = out
        bytes.append(UInt8(ascii: "]"))
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A writer that can write a value nested in another's text.
fileprivate protocol NestedJSONWriter {
    /// A writer with nothing written, that writes into `out` once given a buffer.
    init(lending out: [UInt8])
    var out: [UInt8] { get set }
}

extension JSONObjectWriter {
    init(lending out: [UInt8]) {
        self.out = out
    }
}

extension JSONArrayWriter {
    init(lending out: [UInt8]) {
        self.out = out
    }
}

/// Writes a nested value between `open` and `close`: the nested writer borrows `out` for the
/// time of `body` (swapped in and back), so nothing is copied.
private func writeNested<Writer: NestedJSONWriter>(_ out: inout [UInt8], _ open: Unicode.Scalar, _ close: Unicode.Scalar,
                                                   _ body: (inout Writer) -> Void)
{
    var inner = Writer(lending: [])
    swap(&inner.out, &out)
    inner.out.append(UInt8(ascii: open))
    body(&inner)
    inner.out.append(UInt8(ascii: close))
    swap(&inner.out, &out)
}
