import CEL
import Foundation
import Testing

@Suite("JSON")
struct JSONTests {
    @Test("parses every JSON form and writes it back with sorted keys")
    func roundTrip() throws {
        let text = #"{"b": [1, -2.5, 1e3, true, false, null], "a": "x\"\\\/\n\u00e9\ud83d\ude00", "c": {}}"#
        let value = try JSON.parse(text)
        #expect(value["a"] == .string("x\"\\/\né😀"))
        #expect(value["b"] == [1, -2.5, 1000, true, false, .null])
        #expect(value.text == #"{"a":"x\"\\/\né😀","b":[1,-2.5,1000,true,false,null],"c":{}}"#)
        #expect(try JSON.parse(value.text) == value)
    }

    @Test("an object written member by member is the text of the same JSON value")
    func objectWriter() throws {
        var writer = JSONObjectWriter(capacity: 4)  // grows past its first capacity
        writer.member("a \"key\"", "x\n\u{1}é😀")
        writer.member("b", -12)
        writer.member("c", true)
        writer.member("d", object: { inner in
            inner.member("e", false)
            inner.member("f", object: { _ in })
        })
        writer.member("g", [1.5, "z", .null] as JSON)
        writer.member("h", objects: [1, 2]) { object, n in
            object.member("n", n)
            object.member("s", "\(n)")
        }
        writer.member("i", objects: [Int]()) { _, _ in }
        writer.member("j", array: { array in
            array.element("x")
            array.element(object: { $0.member("y", 1) })
            array.element(array: { inner in inner.element("z") })
            array.element(array: { _ in })
        })
        let expected: JSON = ["a \"key\"": "x\n\u{1}é😀", "b": -12, "c": true, "d": ["e": false, "f": [:]],
                              "g": [1.5, "z", .null], "h": [["n": 1, "s": "1"], ["n": 2, "s": "2"]], "i": [],
                              "j": ["x", ["y": 1], ["z"], []]]
        #expect(writer.text == expected.text)
        #expect(JSONObjectWriter().text == "{}")
        #expect(JSONArrayWriter().text == "[]")
    }

    @Test("strings are escaped where they must be, at their start, end and between plain runs")
    func escapes() throws {
        let cases: [(String, String)] = [
            ("", #""""#), ("plain", #""plain""#), ("\"", #""\"""#), ("a\tb\rc\u{1}", #""a\tb\rc\u0001""#),
            ("\\\\", #""\\\\""#), ("\u{1f}é\n", #""\u001fé\n""#),
        ]
        for (string, text) in cases {
            #expect(JSON.string(string).text == text)
            #expect(try JSON.parse(text) == .string(string))
        }
    }

    @Test("errors carry line and column", arguments: [
        ("{\"a\": 1,\n \"b\": oops}", 2, 7, "unexpected character 'o'"),
        ("[1, 2", 1, 6, "unexpected end of the JSON text, expected ',' or ']'"),
        ("{\"a\" 1}", 1, 6, "expected ':' after an object key"),
        ("01", 1, 2, "unexpected text after the JSON value"),
        ("\"\\ud800\"", 1, 8, "unpaired surrogate in a \\u escape"),
        ("tru", 1, 1, "unexpected end of the JSON text"),
        ("", 1, 1, "unexpected end of the JSON text"),
    ])
    func errors(_ text: String, _ line: Int, _ column: Int, _ message: String) {
        do {
            _ = try JSON.parse(text)
            Issue.record("parsed \(text)")
        } catch {
            #expect(error.line == line)
            #expect(error.column == column)
            #expect(error.message == message)
        }
    }

    @Test("deep nesting is an error, not a crash")
    func depth() {
        #expect(throws: JSONParseError.self) { try JSON.parse(String(repeating: "[", count: 100_000)) }
    }

    @Test("JSON maps onto CEL as cel-go does: numbers are doubles")
    func celMapping() throws {
        let value = CELValue(json: try JSON.parse(#"{"n": 2, "l": [1, "a"]}"#))
        let program = try CELEnvironment(variables: ["v"]).compile("v.n * 1.5 == 3.0 && size(v.l) == 2 && int(v.n) + 1 == 3")
        #expect(try program.evaluate(["v": value]) == .bool(true))
    }
}
