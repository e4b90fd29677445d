import CEL
import Foundation
import Testing

/// One case of fixtures/conformance/cel/*.jsonl (cel-spec's simple tests, see its README).
struct ConformanceCase: CustomTestStringConvertible, Sendable {
    let name: String
    let expr: String
    let vars: [String: JSON]
    let expect: JSON?
    let expectError: Bool
    let disableCheck: Bool

    var testDescription: String { name }

    static let directory: URL = {
        if let dir = ProcessInfo.processInfo.environment["SWITCHBOARD_CEL_CONFORMANCE_DIR"] {
            return URL(fileURLWithPath: dir)
        }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fixtures/conformance/cel")
    }()

    static let all: [ConformanceCase] = {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var cases: [ConformanceCase] = []
        for file in files.sorted() where file.hasSuffix(".jsonl") {
            let text = (try? String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") where !line.isEmpty {
                guard let json = try? JSON.parse(Data(line.utf8)), case let .object(o) = json else { continue }
                var vars: [String: JSON] = [:]
                if case let .object(v) = o["vars"] ?? .null { vars = v }
                cases.append(ConformanceCase(
                    name: o["name"]?.stringValue ?? "?", expr: o["expr"]?.stringValue ?? "",
                    vars: vars, expect: o["expect"], expectError: o["expect_error"] == .bool(true),
                    disableCheck: o["disable_check"] == .bool(true)))
            }
        }
        return cases
    }()

    /// Cases that cannot pass, by name, each with the reason. At most 1% of the total.
    static let excluded: [String: String] = [:]
}

@Suite("CEL conformance (cel-spec simple tests)")
struct ConformanceTests {
    @Test("all conformance files are present")
    func filesPresent() {
        #expect(ConformanceCase.all.count == 1167, "expected 1,167 cases in \(ConformanceCase.directory.path)")
        #expect(ConformanceCase.excluded.count * 100 <= ConformanceCase.all.count)
    }

    @Test("conformance case", arguments: ConformanceCase.all)
    func conformance(_ testCase: ConformanceCase) throws {
        if ConformanceCase.excluded[testCase.name] != nil { return }
        var env = CELEnvironment(variables: Array(testCase.vars.keys))
        env.checksReferences = !testCase.disableCheck
        var vars: [String: CELValue] = [:]
        for (name, typed) in testCase.vars { vars[name] = try TypedJSON.decode(typed) }
        let result: Result<CELValue, CELError> = Result { () throws(CELError) in
            try env.compile(testCase.expr).evaluate(vars)
        }
        if testCase.expectError {
            if case let .success(value) = result {
                Issue.record("\(testCase.expr): expected an error, got \(TypedJSON.encode(value).text)")
            }
            return
        }
        let expected = try TypedJSON.decode(testCase.expect ?? ["bool": true])
        switch result {
        case let .success(value):
            #expect(TypedJSON.matches(value, expected),
                    "\(testCase.expr): got \(TypedJSON.encode(value).text), expected \(TypedJSON.encode(expected).text)")
        case let .failure(error):
            Issue.record("\(testCase.expr): unexpected error \(error)")
        }
    }
}
