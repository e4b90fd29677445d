import CEL
import Foundation
import HTTPTypes
import Testing
@testable import Switchboard

@Suite("Lists API and inList")
struct ListsAPITests {
    @Test("create, read, add, remove and delete a list")
    func lifecycle() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let put = try await api.request(.put, "/v1/lists/blocked-ips", json: ["kind": "ip", "items": ["203.0.113.7", "198.51.100.0/24"]])
            #expect(put.status == .ok)
            #expect(put.json == ["name": "blocked-ips", "kind": "ip", "items": ["203.0.113.7", "198.51.100.0/24"]])

            let added = try await api.request(.post, "/v1/lists/blocked-ips/items", json: ["items": ["2001:db8::/32"]])
            #expect(added.json["items"]?.stringList == ["203.0.113.7", "198.51.100.0/24", "2001:db8::/32"])

            let removed = try await api.request(.delete, "/v1/lists/blocked-ips/items/198.51.100.0%2F24")
            #expect(removed.status == .noContent)
            #expect(try await api.request(.get, "/v1/lists/blocked-ips").json["items"]?.stringList == ["203.0.113.7", "2001:db8::/32"])

            #expect(try await api.request(.delete, "/v1/lists/blocked-ips/items/10.0.0.1").status == .notFound)
            #expect(try await api.request(.get, "/v1/lists").json["data"]?.array.count == 1)
            #expect(try await api.request(.delete, "/v1/lists/blocked-ips").status == .noContent)
            #expect(try await api.request(.get, "/v1/lists/blocked-ips").status == .notFound)
        }
    }

    @Test("invalid items and kinds get 422 naming each")
    func invalidItems() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let reply = try await api.request(.put, "/v1/lists/x", json: ["kind": "ip", "items": ["10.0.0.1", "not-an-ip", "10.0.0.0/99", 7]])
            #expect(reply.status == .unprocessableContent)
            let paths = (reply.json["errors"]?.array ?? []).compactMap { $0["path"]?.stringValue }
            #expect(paths == ["items[1]", "items[2]", "items[3]"])
            let kind = try await api.request(.put, "/v1/lists/x", json: ["kind": "phone", "items": []])
            #expect(kind.status == .unprocessableContent)
            let missing = try await api.request(.post, "/v1/lists/nope/items", json: ["items": ["a"]])
            #expect(missing.status == .notFound)
        }
    }

    @Test("a list created through the API changes the next run's decision")
    func inListThroughAPI() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            var event = try Repository.fixture("events/inquiry-adult.json")
            let before = try await api.request(.post, "/v1/events", json: event)
            let first = (before.json["runs"]?.array ?? []).first { $0["workflow"] == "decline-blocked-ip" }!
            #expect(try await api.waitUntilFinished(first["id"]!.stringValue!)["decision"] == .null)

            try await api.request(.put, "/v1/lists/blocked-ips", json: ["kind": "ip", "items": ["192.0.2.0/24"]])
            if case var .object(o) = event { o["id"] = "adult-again"; event = .object(o) }
            let after = try await api.request(.post, "/v1/events", json: event)
            let second = (after.json["runs"]?.array ?? []).first { $0["workflow"] == "decline-blocked-ip" }!
            #expect(try await api.waitUntilFinished(second["id"]!.stringValue!)["decision"] == "declined")
        }
    }
}

@Suite("List matching")
struct ListIndexTests {
    @Test("ip lists match exact addresses and CIDR ranges, IPv4 and IPv6")
    func ipLists() {
        let index = ListIndexSnapshot(lists: [ListRecord(name: "ips", kind: .ip, items: ["203.0.113.7", "198.51.100.0/24", "2001:db8:bad::/48", "::1"])])
        #expect(index.contains(list: "ips", "203.0.113.7"))
        #expect(!index.contains(list: "ips", "203.0.113.8"))
        #expect(index.contains(list: "ips", "198.51.100.255"))
        #expect(!index.contains(list: "ips", "198.51.101.0"))
        #expect(index.contains(list: "ips", "2001:db8:bad:1::1"))
        #expect(index.contains(list: "ips", "::1"))
        #expect(!index.contains(list: "ips", "not an ip"))
        #expect(!index.contains(list: "missing", "203.0.113.7"))
    }

    @Test("email lists match addresses and whole domains, case-insensitively")
    func emailLists() {
        let index = ListIndexSnapshot(lists: [ListRecord(name: "e", kind: .email, items: ["Bad@Example.com", "spam.test", "@junk.io"])])
        #expect(index.contains(list: "e", "bad@example.COM"))
        #expect(!index.contains(list: "e", "good@example.com"))
        #expect(index.contains(list: "e", "anyone@SPAM.test"))
        #expect(index.contains(list: "e", "x@junk.io"))
    }

    @Test("string lists match exactly")
    func stringLists() {
        let index = ListIndexSnapshot(lists: [ListRecord(name: "s", kind: .string, items: ["Acme"])])
        #expect(index.contains(list: "s", "Acme"))
        #expect(!index.contains(list: "s", "acme"))
    }

    @Test("a lookup in a 10,000-item list is not linear: it probes once per prefix length")
    func largeList() {
        var items: [String] = []
        for i in 0 ..< 5_000 { items.append("10.\(i / 256).\(i % 256).1") }
        for i in 0 ..< 5_000 { items.append("172.\(16 + i / 4096).\((i / 16) % 256).\((i % 16) * 16)/28") }
        let index = ListIndexSnapshot(lists: [ListRecord(name: "big", kind: .ip, items: items)])
        #expect(index.contains(list: "big", "10.19.135.1"))
        #expect(index.contains(list: "big", "172.16.0.17"))
        #expect(!index.contains(list: "big", "8.8.8.8"))
        if case let .ip(set)? = index.entries["big"] { #expect(set.v4Prefixes == [28]) }
    }
}
