import CEL
import Foundation
import HTTPTypes
import Testing
@testable import Switchboard

/// Examples 1 and 2 (README, "The three examples") through the HTTP API, one fixture per path.
@Suite("Examples 1 and 2 through the API")
struct ExampleWorkflowTests {
    struct Expectation: Sendable, CustomTestStringConvertible {
        let fixture: String
        let blockedIP: String?  // decision of decline-blocked-ip
        let minors: String?  // decision of review-minors
        let minorsStatus: String
        var testDescription: String { fixture }
    }

    static let cases: [Expectation] = [
        .init(fixture: "blocked-ip-exact", blockedIP: "declined", minors: nil, minorsStatus: "completed"),
        .init(fixture: "blocked-ip-cidr", blockedIP: "declined", minors: nil, minorsStatus: "completed"),
        .init(fixture: "blocked-ipv6", blockedIP: "declined", minors: nil, minorsStatus: "completed"),
        .init(fixture: "adult", blockedIP: nil, minors: nil, minorsStatus: "completed"),
        .init(fixture: "minor", blockedIP: nil, minors: "needs_review", minorsStatus: "waiting"),
        .init(fixture: "missing-birthdate", blockedIP: nil, minors: "needs_review", minorsStatus: "completed"),
        .init(fixture: "malformed-birthdate", blockedIP: nil, minors: "needs_review", minorsStatus: "completed"),
    ]

    @Test("fixture decisions", arguments: cases)
    func decisions(_ expectation: Expectation) async throws {
        let gateway = try await TestGateway()
        try await gateway.seedBlockedIPs()
        try await gateway.test { api in
            let reply = try await api.request(.post, "/v1/events", json: try Repository.fixture("events/inquiry-\(expectation.fixture).json"))
            #expect(reply.status == .accepted)
            for run in reply.json["runs"]?.array ?? [] {
                let id = run["id"]!.stringValue!
                if run["workflow"] == "decline-blocked-ip" {
                    let done = try await api.waitUntilFinished(id)
                    #expect(done["status"] == "completed")
                    #expect(done["decision"]?.stringValue == expectation.blockedIP)
                } else {
                    let settled = try await api.waitForRun(id) { $0.status != .pending }
                    #expect(settled["status"]?.stringValue == expectation.minorsStatus)
                    #expect(settled["decision"]?.stringValue == expectation.minors)
                }
            }
        }
    }

    @Test("an 18th birthday today counts as an adult; the day before it, a minor")
    func eighteenthBirthday() async throws {
        let gateway = try await TestGateway()
        let utc: Calendar = {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            return calendar
        }()
        let today = utc.dateComponents([.year, .month, .day], from: Date())
        @Sendable func birthdate(yearsAgo: Int, dayOffset: Int) -> String {
            var components = today
            components.year! -= yearsAgo
            let date = utc.date(byAdding: .day, value: dayOffset, to: utc.date(from: components)!)!
            let c = utc.dateComponents([.year, .month, .day], from: date)
            return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
        }
        try await gateway.test { api in
            for (index, (date, expected)) in [(birthdate(yearsAgo: 18, dayOffset: 0), JSON.null),
                                              (birthdate(yearsAgo: 18, dayOffset: 1), JSON.string("needs_review"))].enumerated()
            {
                var event = try Repository.fixture("events/inquiry-adult.json")
                if case var .object(o) = event {
                    o["id"] = .string("birthday-\(index)")
                    o["data"] = ["inquiry": ["id": "inq_b", "birthdate": .string(date), "ip_address": "192.0.2.1"]]
                    event = .object(o)
                }
                let reply = try await api.request(.post, "/v1/events", json: event)
                let run = (reply.json["runs"]?.array ?? []).first { $0["workflow"] == "review-minors" }!
                let settled = try await api.waitForRun(run["id"]!.stringValue!) { $0.status != .pending }
                #expect(settled["decision"] == expected, "birthdate \(date)")
            }
        }
    }

    @Test("a review decides a minor's run; a second review changes nothing")
    func review() async throws {
        // The run's Slack alert goes to the sandbox's stand-in, so the run can finish.
        try await SandboxHarness.run { harness in
            let api = harness.api
            let reply = try await api.request(.POST, "/v1/events", json: try Repository.fixture("events/inquiry-minor.json"))
            let id = (reply.body["runs"]?.array ?? []).first { $0["workflow"] == "review-minors" }!["id"]!.stringValue!
            let waiting = try await api.poll(run: id) { $0["status"] == "waiting" }
            #expect(waiting["tags"]?.stringList == ["minor"])

            let bad = try await api.request(.POST, "/v1/runs/\(id)/review", json: ["decision": "maybe"])
            #expect(bad.status == 422)

            let first = try await api.request(.POST, "/v1/runs/\(id)/review", json: ["decision": "approve", "reviewer": "ana@example.com"])
            #expect(first.status == 202)
            let done = try await api.poll(run: id) { $0["status"] == "completed" }
            #expect(done["decision"] == "approved")
            let review = (done["steps"]?.array ?? []).first { $0["id"] == "review" }
            #expect(review?["output"]?["reviewer"] == "ana@example.com")
            #expect((done["steps"]?.array ?? []).first { $0["id"] == "apply" }?["parent"] == "review_minor")

            let second = try await api.request(.POST, "/v1/runs/\(id)/review", json: ["decision": "decline"])
            #expect(second.status == 409)
            let after = try await api.request(.GET, "/v1/runs/\(id)").body
            #expect(after["decision"] == "approved")

            let unknown = try await api.request(.POST, "/v1/runs/run_nope/review", json: ["decision": "decline"])
            #expect(unknown.status == 404)
        }
    }
}
