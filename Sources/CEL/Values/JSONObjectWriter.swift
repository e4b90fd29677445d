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
public struct JSONObjectWriter {
    private var out: [UInt8]
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
        // The inner writer takes this one's buffer for its time, so nothing is copied.
        var inner = JSONObjectWriter(buffer: [])
        swap(&inner.out, &out)
        inner.out.append(UInt8(ascii: "{"))
        body(&inner)
        inner.out.append(UInt8(ascii: "}"))
        swap(&inner.out, &out)
    }

    /// A member whose value is an array of objects, one written by `body` per element.
    public mutating func member<Elements: Sequence>(_ name: String, objects elements: Elements,
                                                    _ body: (inout JSONObjectWriter, Elements.Element) -> Void)
    {
        key(name)
        var inner = JSONObjectWriter(buffer: [])
        swap(&inner.out, &out)
        inner.out.append(UInt8(ascii: "["))
        var first = true
        for element in elements {
            if !first { inner.out.append(UInt8(ascii: ",")) }
            first = false
            inner.out.append(UInt8(ascii: "{"))
            inner.empty = true
            body(&inner, element)
            inner.out.append(UInt8(ascii: "}"))
        }
        inner.out.append(UInt8(ascii: "]"))
        swap(&inner.out, &out)
    }

    private init(buffer: [UInt8]) {
        out = buffer
    }

    /// The object's text.
    public var text: String {
        var bytes = out
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
