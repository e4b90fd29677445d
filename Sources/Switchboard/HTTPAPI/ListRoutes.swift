import CEL
import Foundation
import HTTPTypes
import Hummingbird

/// Lists and their items: `/v1/lists[/{name}[/items[/{item}]]]`.
extension Gateway {
    var listRoutes: [Route] {
        [
            Route(.get, "/v1/lists", "List lists", .scope("lists:read"), answers: [.json(200, .object(["data": .array(.ref("List"))]))]) { [self] _, context in
                return Response.json(["data": .array(try await store.lists().map(\.json))])
            },
            Route(.get, "/v1/lists/{name}", "Read a list", .scope("lists:read"), answers: [.json(200, .ref("List"))], problems: [404]) { [self] _, context in
                let name = try context.parameters.require("name")
                guard let list = try await store.list(name) else { throw Problem.notFound("no list '\(name)'") }
                return Response.json(list.json)
            },
            Route(.put, "/v1/lists/{name}", "Create or replace a list", .scope("lists:write"),
                  body: .json(.object(["kind": .oneOf(ListKind.allCases.map(\.rawValue)), "items": Self.listItemsSchema])),
                  answers: [.json(200, .ref("List"))
                      .link("list", to: "get_v1_lists_name", ["name": "$request.path.name"])
                      .link("add", to: "post_v1_lists_name_items", ["name": "$request.path.name"])
                      .link("remove", to: "delete_v1_lists_name_items_item", ["name": "$request.path.name", "item": "$response.body#/items/0"])
                      .link("delete", to: "delete_v1_lists_name", ["name": "$request.path.name"])],
                  problems: [422]) { [self] request, context in
                let name = try context.parameters.require("name")
                var request = request
                let body = try await request.jsonBody()
                guard let kindName = body["kind"]?.stringValue, let kind = ListKind(rawValue: kindName) else {
                    throw Problem(.unprocessableContent, "kind must be one of: ip, email, string",
                                  errors: [.init(path: "kind", message: "must be ip, email or string")])
                }
                let items = try Self.listItems(body, kind: kind)
                try await store.putList(ListRecord(name: name, kind: kind, items: items),
                                        audit: context.audit("list.replaced", target: "list:\(name)",
                                                             details: ["kind": .string(kind.rawValue), "items": .number(Double(items.count))]))
                try await lists.refresh(from: store)
                return Response.json(try await store.list(name)?.json ?? .null)
            },
            Route(.delete, "/v1/lists/{name}", "Delete a list", .scope("lists:write"), answers: [.noContent], problems: [404]) { [self] _, context in
                let name = try context.parameters.require("name")
                guard try await store.deleteList(name, audit: context.audit("list.deleted", target: "list:\(name)")) else {
                    throw Problem.notFound("no list '\(name)'")
                }
                try await lists.refresh(from: store)
                return Response(status: .noContent)
            },
            Route(.post, "/v1/lists/{name}/items", "Add items to a list", .scope("lists:write"),
                  body: .json(.object(["items": Self.listItemsSchema])), answers: [.json(200, .ref("List"))], problems: [404, 422]) { [self] request, context in
                let name = try context.parameters.require("name")
                guard let list = try await store.list(name) else {
                    throw Problem.notFound("no list '\(name)'; create it with PUT /v1/lists/\(name) and a kind")
                }
                var request = request
                let items = try Self.listItems(try await request.jsonBody(), kind: list.kind)
                _ = try await store.addListItems(name, items: items, audit: context.audit("list.items_added", target: "list:\(name)",
                                                                                          details: ["items": .array(items.map(JSON.string))]))
                try await lists.refresh(from: store)
                return Response.json(try await store.list(name)?.json ?? .null)
            },
            Route(.delete, "/v1/lists/{name}/items/{item}", "Remove an item from a list",
                  .scope("lists:write"), answers: [.noContent], problems: [404]) { [self] _, context in
                let name = try context.parameters.require("name")
                let item = try context.parameters.require("item").removingPercentEncoding ?? ""
                guard try await store.removeListItem(name, item: item, audit: context.audit("list.item_removed", target: "list:\(name)",
                                                                                           details: ["item": .string(item)])) else {
                    throw Problem.notFound("list '\(name)' has no item '\(item)'")
                }
                try await lists.refresh(from: store)
                return Response(status: .noContent)
            },
        ]
    }

    /// A list's items: addresses and CIDR ranges, email addresses or domains, or strings, by its kind.
    static let listItemsSchema = APISchema.array(.string).described("Each item must suit the list's kind (422 names those that do not).")

    static func listItems(_ body: JSON, kind: ListKind) throws -> [String] {
        guard case let .array(values)? = body["items"] else {
            throw Problem(.unprocessableContent, "items must be a list of strings",
                          errors: [.init(path: "items", message: "must be a list of strings")])
        }
        var items: [String] = []
        var errors: [Problem.FieldError] = []
        for (index, value) in values.enumerated() {
            guard case let .string(item) = value else {
                errors.append(.init(path: "items[\(index)]", message: "must be a string"))
                continue
            }
            if let problem = ListIndexSnapshot.problem(with: item, kind: kind) {
                errors.append(.init(path: "items[\(index)]", message: problem))
            } else {
                items.append(item)
            }
        }
        if !errors.isEmpty {
            throw Problem(.unprocessableContent, "\(errors.count) item(s) are not valid for a list of kind \(kind.rawValue)",
                          errors: errors)
        }
        return items
    }
}
