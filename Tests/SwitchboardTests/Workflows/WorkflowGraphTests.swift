import CEL
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import Switchboard

/// The workflow drawn as SVG: well-formed, every step once, no box over another, the run's path
/// marked, text escaped; served by the API and printed by `switchboard graph`.
@Suite("Workflow graphs")
struct WorkflowGraphTests {
    /// Every `data-step` and the boxes' rectangles of a drawing, after checking it is well-formed XML.
    static func inspect(_ svg: String) throws -> (steps: [String: String?], boxes: [(Double, Double)]) {
        let parser = XMLParser(data: Data(svg.utf8))
        final class Collector: NSObject, XMLParserDelegate {
            var steps: [String: String?] = [:]
            var duplicates: [String] = []
            var boxes: [(Double, Double)] = []
            var inStep = false
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                        attributes: [String: String] = [:]) {
                if name == "g", let step = attributes["data-step"] {
                    if steps[step] != nil { duplicates.append(step) }
                    steps[step] = attributes["data-status"]
                    inStep = true
                }
                if name == "rect", inStep, let x = Double(attributes["x"] ?? ""), let y = Double(attributes["y"] ?? "") { boxes.append((x, y)) }
            }
            func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
                if name == "g" { inStep = false }
            }
        }
        let collector = Collector()
        parser.delegate = collector
        try #require(parser.parse(), "not well-formed: \(parser.parserError.map { "\($0)" } ?? "")")
        #expect(collector.duplicates.isEmpty, "steps drawn twice: \(collector.duplicates)")
        return (collector.steps, collector.boxes)
    }

    static func overlapping(_ boxes: [(Double, Double)]) -> Bool {
        for (i, a) in boxes.enumerated() {
            for b in boxes[(i + 1)...] where abs(a.0 - b.0) < WorkflowGraph.boxWidth && abs(a.1 - b.1) < WorkflowGraph.boxHeight {
                return true
            }
        }
        return false
    }

    @Test("every shipped workflow: well-formed, each step once, no box over another")
    func shipped() throws {
        let (configuration, _) = try Configuration.loadValid(directory: Repository.root.path)
        for workflow in configuration.workflows {
            let (steps, boxes) = try Self.inspect(WorkflowGraph(workflow: workflow).svg)
            #expect(Set(steps.keys) == Set(workflow.stepsByID.keys), "\(workflow.id)")
            #expect(!Self.overlapping(boxes), "\(workflow.id): boxes overlap")
        }
    }

    @Test("a run's path is marked with each step's status")
    func marked() throws {
        let (configuration, _) = try Configuration.loadValid(directory: Repository.root.path)
        let workflow = try #require(configuration.workflow("review-minors"))
        let svg = WorkflowGraph(workflow: workflow, statuses: ["minor": .completed, "mark": .completed, "review": .waiting]).svg
        let (steps, _) = try Self.inspect(svg)
        #expect(steps["minor"] == "completed" && steps["review"] == "waiting")
        #expect(steps["approve"] == .some(nil), "a step the run did not reach has no status")
    }

    @Test("forty steps with branches and lanes stay readable; text is escaped")
    func large() throws {
        var steps = ""
        for n in 0 ..< 10 {
            steps += """
                  - id: check_\(n)
                    if: data.score > \(n)
                    then:
                      - { id: tag_\(n), action: tag, with: { tag: "t\(n)" } }
                      - { id: note_\(n), output: { step: \(n) } }
                    else:
                      - id: lanes_\(n)
                        parallel:
                          - { id: wait_\(n), wait: 1s }

                """
        }
        steps += "  - { id: done, if: \"data.name == '<script>alert(1)</script>'\", then: [ { id: approve_it, action: approve } ] }\n"
        let directory = try TemporaryDirectory()
        try directory.write("workflows/big.yaml", "id: big\ntrigger: { event: big }\nsteps:\n" + steps)
        let (configuration, problems) = Configuration.load(directory: directory.path, environment: EnvironmentInterpolator(environment: [:]))
        #expect(problems.isEmpty, "\(problems)")
        let workflow = try #require(configuration.workflow("big"))
        #expect(workflow.stepsByID.count >= 40)
        let svg = WorkflowGraph(workflow: workflow).svg
        let (drawn, boxes) = try Self.inspect(svg)
        #expect(drawn.count == workflow.stepsByID.count)
        #expect(!Self.overlapping(boxes))
        #expect(!svg.contains("<script>") && svg.contains("&lt;script&gt;"))
        let width = Double(svg.firstMatch(of: /width="(\d+)"/)?.1 ?? "0") ?? 0
        #expect(width < 700, "lanes side by side, not a sprawl: \(width) px")
    }

    @Test("GET /v1/workflows/{id}/graph.svg and switchboard graph draw the same")
    func served() async throws {
        let gateway = try await TestGateway()
        let served = try await gateway.test { api in try await api.request(.get, "/v1/workflows/decline-blocked-ip/graph.svg") }
        #expect(served.status == .ok)
        #expect(served.headers[.contentType] == "image/svg+xml")
        let printed = try await Binary.run(["graph", "decline-blocked-ip", "--config", Repository.root.path])
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(printed.stdout == served.body)
        #expect(try await gateway.test { api in try await api.request(.get, "/v1/workflows/nope/graph.svg") }.status == .notFound)
    }
}
