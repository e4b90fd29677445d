import Foundation

/// Draws a workflow as SVG: each step a box, top to bottom in order; `if`, `switch` and
/// `parallel` open lanes side by side (then / else, each route, each branch) that join again
/// below. Every step is a `<g data-step="ID">`; given a run's steps, the ones it reached also
/// carry `data-status`. Served at `GET /v1/workflows/{id}/graph.svg`, drawn inline by the console,
/// and printed by `switchboard graph`.
public struct WorkflowGraph {
    public let workflow: Workflow
    /// The status of each step a run reached, by step id.
    public var statuses: [String: StepStatus] = [:]

    public init(workflow: Workflow, statuses: [String: StepStatus] = [:]) {
        self.workflow = workflow
        self.statuses = statuses
    }

    static let boxWidth = 200.0
    static let boxHeight = 46.0
    static let gap = 22.0
    static let laneGap = 26.0
    static let margin = 16.0

    /// A laid-out piece: its size and how to draw it at an origin.
    private struct Block {
        var width: Double
        var height: Double
        var draw: (_ x: Double, _ y: Double, _ out: inout String) -> Void
    }

    /// The SVG document (standalone, with its own styles).
    public var svg: String {
        let title = workflow.id
        let block = sequence(workflow.steps, label: nil)
        let width = max(block.width, Self.boxWidth) + 2 * Self.margin
        let height = block.height + 2 * Self.margin + 40
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" class="workflow-graph" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" role="img" aria-label="\(Self.escape("Workflow \(title)"))">
            <style>\(Self.style)</style>
            <text class="title" x="\(Self.margin)" y="\(Self.margin + 12)">\(Self.escape(title))</text>
            <circle class="terminal" cx="\(width / 2)" cy="\(Self.margin + 28)" r="5"/>

            """
        let top = Self.margin + 40
        out += Self.line(width / 2, Self.margin + 33, width / 2, top)
        block.draw((width - block.width) / 2, top, &out)
        out += "</svg>\n"
        return out
    }

    private func sequence(_ steps: [Step], label: String?) -> Block {
        let blocks = steps.map(block(for:))
        let width = max(blocks.map(\.width).max() ?? Self.boxWidth, Self.boxWidth)
        let labelHeight = label == nil ? 0.0 : 18.0
        let height = labelHeight + blocks.map(\.height).reduce(0, +) + Double(max(blocks.count - 1, 0)) * Self.gap
        return Block(width: width, height: max(height, labelHeight)) { x, y, out in
            var top = y
            let center = x + width / 2
            if let label {
                out += "<text class=\"lane-label\" x=\"\(center)\" y=\"\(y + 12)\" text-anchor=\"middle\">\(Self.escape(label))</text>\n"
                top += labelHeight
            }
            for (index, block) in blocks.enumerated() {
                if index > 0 { out += Self.arrow(center, top - Self.gap, top) }
                block.draw(center - block.width / 2, top, &out)
                top += block.height + Self.gap
            }
        }
    }

    private func block(for step: Step) -> Block {
        let main = body(for: step)
        guard case let .steps(handlers) = step.onError, !handlers.isEmpty else { return main }
        // The steps that run when this one fails, in a lane to its right.
        let lane = sequence(handlers, label: "on error")
        let width = main.width + Self.laneGap + lane.width
        return Block(width: width, height: max(main.height, lane.height)) { x, y, out in
            main.draw(x, y, &out)
            let laneX = x + main.width + Self.laneGap
            let fromX = x + main.width / 2 + Self.boxWidth / 2
            out += "<path class=\"edge error-edge\" d=\"M\(fromX) \(y + Self.boxHeight / 2) L\(laneX + lane.width / 2) \(y + Self.boxHeight / 2) "
                + "L\(laneX + lane.width / 2) \(y + 18)\" fill=\"none\" stroke-dasharray=\"3 3\"/>\n"
            lane.draw(laneX, y, &out)
        }
    }

    private func body(for step: Step) -> Block {
        switch step.kind {
        case let .condition(expression, then, otherwise):
            return branching(step, detail: "if " + expression.source,
                             lanes: [("then", then), ("else", otherwise)])
        case let .switch(routes):
            return branching(step, detail: "switch", lanes: routes.map { ($0.condition.map { "if " + $0.source } ?? "else", $0.steps) })
        case let .parallel(branches):
            return branching(step, detail: "parallel", lanes: branches.map { (nil, [$0]) })
        default:
            return box(step)
        }
    }

    /// A step that opens lanes: its box, the lanes side by side, and a join below.
    private func branching(_ step: Step, detail: String, lanes: [(String?, [Step])]) -> Block {
        let head = box(step, detail: detail)
        let laneBlocks = lanes.map { sequence($0.1, label: $0.0) }
        let lanesWidth = laneBlocks.map(\.width).reduce(0, +) + Double(max(laneBlocks.count - 1, 0)) * Self.laneGap
        let lanesHeight = laneBlocks.map(\.height).max() ?? 0
        let width = max(head.width, lanesWidth)
        let height = head.height + Self.gap + lanesHeight + Self.gap + 8
        return Block(width: width, height: height) { x, y, out in
            let center = x + width / 2
            head.draw(center - head.width / 2, y, &out)
            let laneTop = y + head.height + Self.gap
            let joinY = laneTop + lanesHeight + Self.gap
            var laneX = x + (width - lanesWidth) / 2
            for lane in laneBlocks {
                let laneCenter = laneX + lane.width / 2
                out += Self.path([(center, y + head.height), (center, laneTop - Self.gap / 2), (laneCenter, laneTop - Self.gap / 2),
                                  (laneCenter, laneTop)], arrow: true)
                lane.draw(laneX, laneTop, &out)
                out += Self.path([(laneCenter, laneTop + lane.height), (laneCenter, joinY), (center, joinY)], arrow: false)
                laneX += lane.width + Self.laneGap
            }
            out += "<circle class=\"join\" cx=\"\(center)\" cy=\"\(joinY)\" r=\"3\"/>\n"
            out += Self.line(center, joinY, center, y + height)
        }
    }

    private func box(_ step: Step, detail: String? = nil) -> Block {
        let detail = detail ?? Self.detail(step)
        let status = statuses[step.id]
        return Block(width: Self.boxWidth, height: Self.boxHeight) { x, y, out in
            var attributes = "class=\"step kind-\(step.kindName.replacingOccurrences(of: "_", with: "-"))\" data-step=\"\(Self.escape(step.id))\""
            if let status { attributes += " data-status=\"\(status.rawValue)\"" }
            out += "<g \(attributes)>"
            out += "<title>\(Self.escape("\(step.id): \(detail)"))</title>"
            out += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(Self.boxWidth)\" height=\"\(Self.boxHeight)\" rx=\"6\"/>"
            out += "<text class=\"id\" x=\"\(x + 10)\" y=\"\(y + 19)\">\(Self.escape(Self.clip(step.id, 26)))</text>"
            out += "<text class=\"detail\" x=\"\(x + 10)\" y=\"\(y + 36)\">\(Self.escape(Self.clip(detail, 32)))</text>"
            out += "</g>\n"
        }
    }

    /// A line of what a step does.
    static func detail(_ step: Step) -> String {
        switch step.kind {
        case let .action(action):
            switch action {
            case .approve: return "approve"
            case .decline: return "decline"
            case .markForReview: return "mark for review"
            case .tag: return "tag"
            case let .changeList(operation, list, _): return operation == .add ? "add to \(list)" : "remove from \(list)"
            }
        case let .connector(connector, operation, _): return "\(connector) · \(operation)"
        case let .wait(spec):
            switch spec {
            case let .duration(duration): return "wait \(ConfigDuration.format(duration))"
            case .review: return "wait for a review"
            case let .callback(connector, _): return "wait for \(connector)"
            }
        case let .output(fields): return "output " + fields.keys.sorted().joined(separator: ", ")
        case let .startWorkflow(spec):
            let when = spec.after.map { " after \(ConfigDuration.format($0))" } ?? (spec.at != nil ? " at a time" : "")
            return "start \(spec.workflow)\(when)\(spec.wait ? ", wait" : "")"
        case .condition, .switch, .parallel: return step.kindName
        }
    }

    static func clip(_ text: String, _ length: Int) -> String {
        text.count <= length ? text : String(text.prefix(length - 1)) + "…"
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double) -> String {
        "<line class=\"edge\" x1=\"\(x1)\" y1=\"\(y1)\" x2=\"\(x2)\" y2=\"\(y2)\"/>\n"
    }

    static func arrow(_ x: Double, _ y1: Double, _ y2: Double) -> String {
        "<line class=\"edge\" x1=\"\(x)\" y1=\"\(y1)\" x2=\"\(x)\" y2=\"\(y2 - 4)\"/>"
            + "<path class=\"head\" d=\"M\(x - 4) \(y2 - 7) L\(x + 4) \(y2 - 7) L\(x) \(y2) Z\"/>\n"
    }

    static func path(_ points: [(Double, Double)], arrow: Bool) -> String {
        let d = points.enumerated().map { "\($0.offset == 0 ? "M" : "L")\($0.element.0) \($0.element.1)" }.joined(separator: " ")
        var out = "<path class=\"edge\" d=\"\(d)\" fill=\"none\"/>"
        if arrow, let last = points.last {
            out += "<path class=\"head\" d=\"M\(last.0 - 4) \(last.1 - 7) L\(last.0 + 4) \(last.1 - 7) L\(last.0) \(last.1) Z\"/>"
        }
        return out + "\n"
    }

    static let style = """
        .workflow-graph{font-family:ui-sans-serif,system-ui,-apple-system,"Segoe UI",sans-serif}\
        .title{font-size:13px;font-weight:600;fill:#1f2933}\
        .step rect{fill:#fff;stroke:#9aa5b1;stroke-width:1}\
        .step .id{font-size:12px;font-weight:600;fill:#1f2933}\
        .step .detail{font-size:11px;fill:#52606d}\
        .kind-if rect,.kind-switch rect,.kind-parallel rect{fill:#f5f7fa}\
        .kind-wait rect{stroke-dasharray:4 3}\
        .kind-connector rect{fill:#f0f4ff}\
        .kind-start-workflow rect{fill:#f7f0ff}\
        .step[data-status] rect{stroke-width:2}\
        .step[data-status=completed] rect{stroke:#2f855a;fill:#f0fff4}\
        .step[data-status=waiting] rect{stroke:#b7791f;fill:#fffaf0}\
        .step[data-status=running] rect{stroke:#2b6cb0;fill:#ebf8ff}\
        .step[data-status=failed] rect{stroke:#c53030;fill:#fff5f5}\
        .step[data-status=cancelled] rect{stroke:#718096}\
        .edge{stroke:#9aa5b1;stroke-width:1.2;fill:none}.head{fill:#9aa5b1}\
        .join,.terminal{fill:#9aa5b1}.lane-label{font-size:11px;fill:#7b8794}
        """
}
